#!/usr/bin/env bash
# Fit the dashboard trend model to MOPAC's published PAS dashboard (read in place from
# ../shared/data, never copied) and write figures/dashboard/: once on every quarter
# (the latest-year findings) and once with the last four quarters held out (the checks).
# Each fit takes about 12 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PB=.venv/bin/pas-bayes
DATA=${DASHBOARD_DIR:-../shared/data/pas_dashboard}
STAMP=$(date +%Y%m%d-%H%M%S)
for variant in full holdout4; do
  extra=()
  [[ $variant == holdout4 ]] && extra=(--holdout 4)
  run=runs/dashboard_confidence-$variant-$STAMP
  $PB dashboard "$DATA/PAS_borough_quarterly_2014Q4_2023Q4.csv" \
      --london "$DATA/PAS_Total_MPS_quarterly_2014Q4_2023Q4.csv" \
      --spec models/dashboard_confidence.toml "${extra[@]}" --out "$run" --no-progress
  $PB diagnose "$run" || true   # shown, never hidden; the report repeats it
  $PB plot "$run" --out "figures/dashboard/$variant" --force
  $PB effects "$run" --out "figures/dashboard/$variant/associations.csv" --force
  $PB report "$run" --out "figures/dashboard/$variant/report.html" --force
done
