#!/usr/bin/env bash
# Usage: scripts/ha-env/run-version.sh HA_VERSION [pytest args]
#
# tests/homeassistant under one Home Assistant release: finds or builds its Python, builds its
# venv from tests/homeassistant/requirements-HA_VERSION.txt when the pins changed (cached in
# $HABACKUP_CACHE, keyed by the pin file's hash), puts the repo's habackup on its path and runs
# pytest. scripts/ha-test.sh runs this once per version.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/ha-env/common.sh

VERSION=${1:?usage: run-version.sh HA_VERSION [pytest args]}
shift
REQUIREMENTS=tests/homeassistant/requirements-$VERSION.txt
[[ -f $REQUIREMENTS ]] || die "no $REQUIREMENTS: Home Assistant $VERSION is not one the tests know"

# The oldest Python each release accepts (its Requires-Python), and where it comes from.
case $VERSION in
2025.4.4) PYTHON_MIN=3.13.0 ;;
2026.2.3) PYTHON_MIN=3.13.2 ;;
2026.10.4) PYTHON_MIN=3.14.2 ;;
*) die "no Python known for Home Assistant $VERSION (add it to scripts/ha-env/run-version.sh)" ;;
esac

step "Home Assistant $VERSION: Python >= $PYTHON_MIN"
if [[ $PYTHON_MIN == 3.14.* ]]; then
    ROOT=$(scripts/ha-env/chroot.sh path)
    PYTHON=python3.14
    RUN=(scripts/ha-env/chroot.sh run "$PWD")
    VENVS=/opt/habackup-venvs # inside the chroot
else
    ROOT=''
    PYTHON=$(scripts/ha-env/python.sh "$PYTHON_MIN" "for Home Assistant $VERSION")
    # Tests may mount a small tmpfs (disk full): in a mount namespace of their own it can never
    # outlive the run. Without root, a user namespace grants the mount.
    if [[ $(id -u) == 0 ]]; then
        RUN=(unshare --mount --propagation private --)
    else
        RUN=(unshare --user --map-root-user --mount --propagation private --)
    fi
    VENVS=$HA_CACHE/venvs
fi
python_version=$("${RUN[@]}" "$PYTHON" -c 'import sys; print(sys.version.split()[0])')
say "    $PYTHON (Python $python_version)${ROOT:+ in the chroot $ROOT}"

# One venv per pin file, interpreter and recipe (below); the name changes with any of them, so a
# stale one is never used. Built at its final path (a venv's scripts name it), complete once its
# stamp is written.
RECIPE=2 # bump when the venv is built differently
# The last release before the supported range, for the test that the adapter refuses it: only
# its wheel (pure Python, imported from the zip), not installed.
OLD_HOME_ASSISTANT=2025.3.4
KEY=$( (cat "$REQUIREMENTS"; echo "$PYTHON $python_version $RECIPE $OLD_HOME_ASSISTANT") | sha256sum | cut -c1-12)
VENV=$VENVS/ha-$VERSION-$KEY
HOST_VENV=$ROOT$VENV
if [[ ! -f $HOST_VENV/$HA_STAMP ]]; then
    lock "venv-ha-$VERSION"
    if [[ ! -f $HOST_VENV/$HA_STAMP ]]; then
        step "installing Home Assistant $VERSION and its test tools ($(grep -c '^[^#]' "$REQUIREMENTS") pinned packages, about 2 minutes, again only when $REQUIREMENTS changes)"
        say "    into $HOST_VENV"
        command -v gcc >/dev/null || [[ -n $ROOT ]] || die "gcc not found: some of Home Assistant $VERSION's test requirements build from source"
        rm -rf "$HOST_VENV"
        timed "venv and pip install" "${RUN[@]}" sh -ec '
            "$1" -m venv "$2"
            "$2/bin/python" -m pip install -q --upgrade pip
            "$2/bin/python" -m pip install -q -r "$3"
            "$2/bin/python" -m pip download -q --no-deps --only-binary=:all: \
                "homeassistant==$4" -d "$2/old-homeassistant"
        ' sh "$PYTHON" "$VENV" "$REQUIREMENTS" "$OLD_HOME_ASSISTANT"
        touch "$HOST_VENV/$HA_STAMP"
        # Venvs of this version built from older pins are dead weight now.
        for old in "$ROOT$VENVS"/ha-"$VERSION"-*; do
            [[ $old == "$HOST_VENV" ]] || rm -rf "$old"
        done
    fi
    unlock
fi

# habackup from the repo: the extension `maturin develop` left in python/habackup is abi3, so it
# loads in every venv (and in the chroot, where the checkout is mounted at the same path).
compgen -G "python/habackup/_core*.so" >/dev/null \
    || die "no development build in python/habackup: run ./scripts/test.sh first, or VIRTUAL_ENV=\$PWD/.venv .venv/bin/maturin develop"
site_packages=$("${RUN[@]}" "$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$PWD/python" >"$ROOT$site_packages/habackup.pth"
"${RUN[@]}" "$VENV/bin/python" -c 'import habackup, habackup.homeassistant, homeassistant.const as c; print(f"    habackup {habackup.__version__} from {habackup.__path__[0]}, Home Assistant {c.__version__}")' >&2

# The whole suite unless the arguments name test files or ids.
paths=(tests/homeassistant)
for arg in "$@"; do
    [[ $arg == tests/* ]] && paths=()
done
step "pytest on Home Assistant $VERSION"
exec "${RUN[@]}" "$VENV/bin/python" -m pytest -p no:sugar -p no:cacheprovider "${paths[@]}" "$@"
