#!/usr/bin/env bash
# Regenerate every figure, table and the report of a fitted run into one folder:
#   bash models/figures.sh RUN OUT_DIR
# scripts/main.sh calls this on a fresh fit of the bundled synthetic survey to make figures/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run="$1"; out="$2"
pas="$root/.venv/bin/pas-bayes"
boundaries="$root/../shared/data/geography/London_Boroughs.gpkg"
extra=()
if [ -f "$boundaries" ]; then extra=(--boundaries "$boundaries"); fi
"$pas" effects "$run" --out "$out/effects.csv" --force
"$pas" rankings "$run" --out "$out/borough_rankings.csv" --force
"$pas" rankings "$run" --wards --out "$out/ward_rankings.csv" --force
"$pas" gaps "$run" --out "$out/demographic_gaps_table.csv" --force
"$pas" scenario "$run" --driver visibility --to 0.4 --out "$out/scenario_london_visibility_40pct.csv" --force
"$pas" plot "$run" --out "$out" "${extra[@]}" --force
"$pas" report "$run" --out "$out/report.html" "${extra[@]}" --force
