#!/usr/bin/env bash
# Set up .venv if needed, check style, then run the test suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m slow`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
.venv/bin/ruff check src tests benchmarks validation
# Two processes, one a core: compiling each model (most of the suite's time) is
# single-threaded. A file's tests stay in one process (its fixtures are made once).
# Pass `-n 0` to run in this process (e.g. for a debugger).
.venv/bin/python -m pytest -n 2 --dist loadfile "$@"
