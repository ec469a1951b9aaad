#!/usr/bin/env bash
# Says, before anything is built, how much disk the test run needs and whether it is there.
# Running out does not fail cleanly: whichever step is writing at that moment fails with
# "No space left on device" twenty minutes in (a server answers 500, pytest cannot make a temp
# dir), which reads like a bug in habackup. What is already built (target/, the cache) is not
# counted again. HABACKUP_DISK_CHECK=0 only prints the figures.
#
# The figures are a fresh clone's peaks, measured with `df` and `du` every 5 s through
# ./scripts/test.sh (2026-11-29: 6.4 GiB, 2.8 GiB, 3.0 GiB), rounded up:
#   target/ and .venv from nothing ..... 7 GiB (dev build, clippy, tests, the manylinux wheel)
#   under TMPDIR at once ............... 4 GiB (1 GiB transfers, the test servers' folders)
#   the Home Assistant cache ........... 4 GiB (a Python 3.13.5, a Debian chroot, three venvs)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ha-env/common.sh

BUILD_GIB=7
TMP_GIB=4
HA_GIB=4
TMP=${TMPDIR:-/tmp}

# need[device] in KiB, and the folders that make it up, for one line per file system.
declare -A need where
add() { # add PATH GIB WHAT
    local path=$1 gib=$2 what=$3 dev
    while [[ ! -e $path ]]; do path=$(dirname "$path"); done
    dev=$(df -P "$path" | awk 'NR == 2 { print $6 }')
    need[$dev]=$((${need[$dev]:-0} + gib * 1024 * 1024))
    where[$dev]="${where[$dev]:+${where[$dev]}, }$what $gib GiB"
}

[[ -d target/debug ]] || add target "$BUILD_GIB" "target/"
add "$TMP" "$TMP_GIB" "tests in $TMP"
[[ ${HABACKUP_HA_VERSIONS:-} == none || -d $HA_CACHE/venvs ]] || add "$HA_CACHE" "$HA_GIB" "Home Assistant in $HA_CACHE"

short=0
for dev in "${!need[@]}"; do
    free=$(df -Pk "$dev" | awk 'NR == 2 { print $4 }')
    line=$(awk -v dev="$dev" -v free="$free" -v need="${need[$dev]}" -v what="${where[$dev]}" \
        'BEGIN { printf "%s: %.1f GiB free, the run needs about %d GiB (%s)", dev, free / 1048576, need / 1048576, what }')
    if ((free < need[$dev])); then
        say "NOT ENOUGH DISK: $line"
        short=1
    else
        say "$line"
    fi
done
if ((short)) && [[ ${HABACKUP_DISK_CHECK:-1} != 0 ]]; then
    say "Free some space first: with less, the run fails part-way with 'No space left on device'."
    say "(HABACKUP_DISK_CHECK=0 runs anyway.)"
    exit 1
fi
