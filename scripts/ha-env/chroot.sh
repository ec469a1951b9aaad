#!/usr/bin/env bash
# Python 3.14 for Home Assistant 2026.3 and newer, in a Debian chroot (needs root).
#
#   scripts/ha-env/chroot.sh path              builds the chroot if missing; prints its path
#   scripts/ha-env/chroot.sh run DIR CMD...    runs CMD in the chroot, in DIR
#
# Debian's python3.14 binaries need a newer glibc than this machine's, and python.org is out of
# reach, so the interpreter comes with its own Debian: debootstrap (minbase) of forky, which
# is steadier than sid, about 1.5 minutes once per machine, cached in $HABACKUP_CACHE. `run`
# works in a private mount namespace: /proc, /dev and DIR (bind-mounted at the same path, so
# paths in .pth files and pytest's output match the host's) are unmounted by a trap, and even a
# killed run leaves no mount behind. habackup's extension is abi3: the one built on the host
# loads in the chroot unchanged.
set -euo pipefail
source "$(dirname "$0")/common.sh"

SUITE=forky
MIRROR=http://deb.debian.org/debian
PACKAGES=python3.14,python3.14-venv,ca-certificates
NAME=debian-$SUITE-python3.14-$(echo "$SUITE $PACKAGES" | sha256sum | cut -c1-8)
ROOT=$HA_CACHE/$NAME
# The host's: the package index is reached through a CA only the host bundle holds.
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

TMP=''
trap '[[ -z $TMP ]] || rm -rf "$TMP"' EXIT

need_root() {
    [[ $(id -u) == 0 ]] || die "a Python 3.14 chroot needs root ($1); run as root, or leave out HA 2026.10.4 (HABACKUP_HA_VERSIONS)"
}

# Sets DEBOOTSTRAP (a command) and DEBOOTSTRAP_SCRIPTS: the host's, or Debian's package unpacked
# in a temp dir (not installed: the system is left as it is).
find_debootstrap() {
    if command -v debootstrap >/dev/null; then
        DEBOOTSTRAP=(debootstrap)
        DEBOOTSTRAP_SCRIPTS=/usr/share/debootstrap/scripts
        return
    fi
    TMP=$(mktemp -d)
    (cd "$TMP" && apt-get download -qq -o APT::Sandbox::User=root debootstrap >&2) \
        || die "debootstrap is not installed and 'apt-get download debootstrap' failed (apt-get update?)"
    dpkg -x "$TMP"/debootstrap_*.deb "$TMP/x"
    DEBOOTSTRAP=(env "DEBOOTSTRAP_DIR=$TMP/x/usr/share/debootstrap" "$TMP/x/usr/sbin/debootstrap")
    DEBOOTSTRAP_SCRIPTS=$TMP/x/usr/share/debootstrap/scripts
}

build() {
    need_root "debootstrap"
    lock "$NAME"
    [[ -f $ROOT/$HA_STAMP ]] && return 0 # built by another run while we waited
    step "building a Debian $SUITE chroot with Python 3.14 for Home Assistant 2026.3 and newer (about 1.5 minutes, once per machine)"
    say "    in $ROOT"
    remove_entry "$ROOT"
    local partial=$ROOT.partial script=()
    remove_entry "$partial"
    find_debootstrap
    # An older debootstrap (bookworm's) has no script for forky; sid's is the same.
    [[ -e $DEBOOTSTRAP_SCRIPTS/$SUITE ]] || script=("$DEBOOTSTRAP_SCRIPTS/sid")
    local log=$HA_CACHE/$NAME.log
    timed "debootstrap" logged "$log" "${DEBOOTSTRAP[@]}" --variant=minbase --include="$PACKAGES" \
        "$SUITE" "$partial" "$MIRROR" "${script[@]}"
    rm -f "$log"
    chroot "$partial" python3.14 -c 'import sys; assert sys.version_info >= (3, 14, 2), sys.version' \
        || die "the chroot's python3.14 is older than 3.14.2"
    touch "$partial/$HA_STAMP"
    mv "$partial" "$ROOT"
    unlock
}

ensure() {
    [[ -f $ROOT/$HA_STAMP ]] || build
}

run() {
    local dir
    dir=$(realpath "${1:?usage: chroot.sh run DIR CMD...}")
    shift
    need_root "chroot"
    ensure
    # Refreshed on every run (the host's may change), atomically: another run may be reading.
    local file
    for file in /etc/resolv.conf "$CA_BUNDLE"; do
        cp "$file" "$ROOT$file.$$" && mv "$ROOT$file.$$" "$ROOT$file"
    done
    mkdir -p "$ROOT$dir"
    # PIP_FIND_LINKS names a host folder; PATH is the chroot's own.
    unshare --mount --propagation private -- bash -euo pipefail -c '
        root=$1 dir=$2
        shift 2
        trap "umount -l \"\$root\$dir\" \"\$root/dev\" \"\$root/proc\" 2>/dev/null || true" EXIT
        mount -t proc proc "$root/proc"
        mount --rbind /dev "$root/dev"
        mount --bind "$dir" "$root$dir"
        chroot "$root" /usr/bin/env -u PIP_FIND_LINKS HOME=/root \
            PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            /bin/sh -c "cd \"\$0\" && exec \"\$@\"" "$dir" "$@"
    ' bash "$ROOT" "$dir" "$@"
}

case ${1:-} in
path) ensure && echo "$ROOT" ;;
run) shift && run "$@" ;;
*) die "usage: chroot.sh path | chroot.sh run DIR CMD..." ;;
esac
