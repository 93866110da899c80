#!/usr/bin/env bash
# Set up .venv if needed, then fit the confidence model on the bundled synthetic
# survey, check it, and write its figures and effects table to figures/.
# Each run gets a new folder under runs/; earlier runs are never overwritten.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
spec="${1:-models/confidence.toml}"
name="$(basename "$spec" .toml)"
run="runs/${name}-$(date +%Y%m%d-%H%M%S)"
.venv/bin/pas-bayes fit "$spec" --out "$run"
# The diagnostics table is printed whatever it says; a failed check is reported, not hidden.
.venv/bin/pas-bayes diagnose "$run" || echo "Some diagnostics failed: read the table above before using the estimates." >&2
.venv/bin/pas-bayes effects "$run" --out "figures/$name/effects.csv" --force
.venv/bin/pas-bayes plot "$run" --out "figures/$name" --force
echo "Run folder: $run    Figures: figures/$name/"
