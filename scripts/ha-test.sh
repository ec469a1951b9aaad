#!/usr/bin/env bash
# habackup's agents under Home Assistant's own backup manager (tests/homeassistant). Home Assistant
# 2025.4 needs Python 3.13, so these run in a venv of their own (.venv-ha); without a python3.13
# they are skipped, plainly. Extra arguments go to pytest. Re-running reuses .venv-ha.
#
# habackup comes from the repo: the extension that `maturin develop` (scripts/test.sh) left in
# python/habackup is abi3, so it loads on 3.13 as is and nothing is rebuilt. Without one, or with
# HABACKUP_HA_WHEEL=1, a wheel is built for .venv-ha's Python (reusing target/) and installed.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${HABACKUP_HA_VENV:-.venv-ha}
REQUIREMENTS=tests/homeassistant/requirements.txt

step() { printf '\n==> %s\n' "$*"; }

is_python313() {
    [[ -n $1 ]] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null
}

# A pyenv shim named python3.13 exists even when 3.13 is not the active version, so every
# candidate is run before it is trusted.
find_python313() {
    local candidates=("${HA_PYTHON:-}" "$(command -v python3.13 || true)")
    if command -v pyenv >/dev/null; then
        candidates+=("$(pyenv which python3.13 2>/dev/null || true)")
        candidates+=($(ls -d "$(pyenv root)"/versions/3.13*/bin/python3.13 2>/dev/null | sort -V -r))
    fi
    candidates+=($(ls -d "$HOME"/.pyenv/versions/3.13*/bin/python3.13 2>/dev/null | sort -V -r))
    local candidate
    for candidate in "${candidates[@]}"; do
        if is_python313 "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if ! PYTHON313=$(find_python313); then
    echo "Home Assistant tests SKIPPED: python3.13 not found"
    exit 0
fi

step "Home Assistant test environment ($VENV, $("$PYTHON313" --version))"
if ! is_python313 "$VENV/bin/python"; then
    rm -rf "$VENV"
    "$PYTHON313" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
fi
# pip only runs again when the pins change.
stamp="$VENV/.requirements.sha256"
wanted=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$wanted" ]]; then
    "$VENV/bin/python" -m pip install -q -r "$REQUIREMENTS"
    echo "$wanted" >"$stamp"
fi

step "habackup into $VENV"
site_packages=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [[ -z ${HABACKUP_HA_WHEEL:-} ]] && ls python/habackup/_core*.so >/dev/null 2>&1; then
    if compgen -G "$site_packages/habackup-*.dist-info" >/dev/null; then
        "$VENV/bin/python" -m pip uninstall -q -y habackup
    fi
    echo "$PWD/python" >"$site_packages/habackup.pth"
    echo "using the development build in python/habackup"
else
    rm -f "$site_packages/habackup.pth"
    maturin=.venv/bin/maturin
    if [[ ! -x $maturin ]]; then
        "$VENV/bin/python" -m pip install -q "$(grep '^maturin==' requirements-test.txt)"
        maturin=$VENV/bin/maturin
    fi
    wheels=target/wheels-ha
    rm -rf "$wheels"
    "$maturin" build -q -i "$VENV/bin/python" --out "$wheels"
    "$VENV/bin/python" -m pip install -q --force-reinstall --no-deps "$wheels"/habackup-*.whl
fi
"$VENV/bin/python" -c 'import habackup, habackup.homeassistant; print("habackup", habackup.__version__)'

step "pytest tests/homeassistant"
"$VENV/bin/python" -m pytest -p no:sugar -p no:cacheprovider tests/homeassistant "$@"
