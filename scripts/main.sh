#!/usr/bin/env bash
# Set up .venv if needed, then fit the confidence model on the bundled synthetic
# survey, check it, and write its effects, figures and policy report to figures/.
# Each run gets a new folder under runs/; earlier runs are never overwritten.
#   bash scripts/main.sh [models/trust.toml]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
spec="${1:-models/confidence.toml}"
name="$(basename "$spec" .toml)"
run="runs/${name}-$(date +%Y%m%d-%H%M%S)"
# fit ends by printing the diagnostics table (pas-bayes diagnose RUN prints it again, exit 1 on a failure).
.venv/bin/pas-bayes fit "$spec" --out "$run"
bash models/figures.sh "$run" "figures/$name"
echo "Run folder: $run    Figures and report: figures/$name/"
