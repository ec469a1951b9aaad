#!/usr/bin/env bash
# The whole test suite from nothing: a venv with the test tools, a dev build of the extension,
# then lints, cargo tests, pytest, and the Home Assistant suite on three Home Assistant releases.
# Re-running reuses .venv and target/; what the Home Assistant suite needs (a Python 3.13.5, a
# Python 3.14 chroot, one venv per release: about 20 minutes the first time on a machine) is
# cached in ${HABACKUP_CACHE:-~/.cache/habackup}. HABACKUP_HA_VERSIONS picks releases
# ("2026.10.4", or "none"). Extra arguments go to the main pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${HABACKUP_VENV:-.venv}

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup)" >&2; exit 1; }
rustup component add clippy rustfmt >/dev/null 2>&1 || true
if ! command -v tar >/dev/null || ! command -v gzip >/dev/null; then
    apt-get update -qq && apt-get install -y -qq tar gzip
fi

step "disk space"
./scripts/check-disk.sh

step "python test environment ($VENV)"
[[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -r requirements-test.txt

step "test servers (Azurite from npm; moto and wsgidav come from PyPI above)"
./scripts/install-test-servers.sh

step "build the extension (dev profile)"
VIRTUAL_ENV=$PWD/$VENV "$VENV/bin/maturin" develop -q

step "rust: fmt, clippy"
cargo fmt --all -- --check
cargo clippy -q --all-targets -- -D warnings
cargo clippy -q --all-targets --features python -- -D warnings

step "python: ruff, mypy --strict, stubtest"
"$VENV/bin/ruff" check python tests benches custom_components scripts
"$VENV/bin/mypy" --strict python/habackup
"$VENV/bin/python" -m mypy.stubtest habackup

step "cargo test"
cargo test -q

step "manylinux2014 wheel (zig): loads on glibc 2.17 (scripts/check_wheel.py), works (scripts/smoke_wheel.py)"
# The wheel-check profile (Cargo.toml) is unoptimised: this checks what the wheel links, not how
# fast it runs, and builds from nothing in a few CPU-minutes (into target/<triple>/wheel-check).
WHEELS=target/wheels-manylinux
rm -rf "$WHEELS" target/wheel-smoke
PATH=$PWD/$VENV/bin:$PATH "$VENV/bin/maturin" build -q --zig --compatibility manylinux2014 \
    --profile wheel-check --strip --out "$WHEELS"
WHEEL=$(echo "$WHEELS"/habackup-*.whl)
"$VENV/bin/python" scripts/check_wheel.py "$WHEEL" --tag manylinux_2_17
"$VENV/bin/python" -m pip install -q --no-deps --target target/wheel-smoke "$WHEEL"
PYTHONPATH=target/wheel-smoke "$VENV/bin/python" scripts/smoke_wheel.py --installed-in target/wheel-smoke

step "pytest"
"$VENV/bin/python" -m pytest -p no:cacheprovider "$@"

step "Home Assistant tests on ${HABACKUP_HA_VERSIONS:-2025.4.4 2026.2.3 2026.10.4} (scripts/ha-test.sh)"
./scripts/ha-test.sh
