#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv.
#
# Finds a Python >= 3.12 itself: first on PATH (python3.13, python3.12, python3,
# python), then in pyenv's versions. PyMC 6 and ArviZ 1 need 3.12; with an older
# interpreter pip would quietly install the old majors, so we refuse instead.
# Re-installs only when pyproject.toml changed since the last set-up.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.pas_bayes-installed"

good_python() {
    # A candidate counts only if it actually runs (pyenv shims can exist and fail).
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

find_python() {
    local c
    for c in python3.13 python3.12 python3 python; do
        if command -v "$c" >/dev/null 2>&1 && good_python "$(command -v "$c")"; then
            command -v "$c"; return 0
        fi
    done
    local roots=()
    if command -v pyenv >/dev/null 2>&1; then roots+=("$(pyenv root)"); fi
    roots+=("${PYENV_ROOT:-$HOME/.pyenv}")
    for r in "${roots[@]}"; do
        for c in $(ls -d "$r"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do
            if good_python "$c"; then echo "$c"; return 0; fi
        done
    done
    return 1
}

if [ ! -x "$venv/bin/python" ] || ! good_python "$venv/bin/python"; then
    if ! py="$(find_python)"; then
        echo "pas_bayes set-up: no Python >= 3.12 found on PATH or in pyenv." >&2
        echo "Install Python 3.12 or newer (e.g. 'pyenv install 3.12') and run this again." >&2
        exit 2
    fi
    echo "pas_bayes set-up: creating .venv with $py ($("$py" --version))" >&2
    rm -rf "$venv"
    "$py" -m venv "$venv"
fi

want="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "pas_bayes set-up: installing the package and its test tools into .venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root[test]"
    echo "$want" > "$stamp"
fi
