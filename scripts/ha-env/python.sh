#!/usr/bin/env bash
# Usage: scripts/ha-env/python.sh MIN_VERSION [FOR_WHAT]
#
# Prints the path of a CPython of MIN_VERSION's series (3.13) no older than MIN_VERSION, the
# oldest one found: pyenv's versions, then python3.13 on PATH. When there is none, builds
# Python 3.13.5 with pyenv, once per machine (9 to 12 minutes on 2 cores). python.org is out of
# reach here, so the source comes from Debian trixie, whose python3.13_3.13.5.orig.tar.xz is
# byte-identical to python.org's Python-3.13.5.tar.xz (pyenv checks the same sha256). It is
# fetched with a private apt state in a temp dir: the system's apt config is never touched.
set -euo pipefail
source "$(dirname "$0")/common.sh"

MIN=${1:?usage: python.sh MIN_VERSION [FOR_WHAT] (e.g. 3.13.2 "for Home Assistant 2026.2.3")}
FOR_WHAT=${2:-}
SERIES=${MIN%.*}
BUILD_VERSION=3.13.5
BUILD_SHA256=93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640
[[ $SERIES == 3.13 ]] || die "python.sh only knows how to provide Python 3.13, not $MIN"

# The micro version of a working interpreter of this series, or nothing.
micro_of() {
    [[ -x $1 ]] || return 1
    "$1" -c "import sys, ssl, sqlite3, ctypes, lzma, venv
if '%d.%d' % sys.version_info[:2] != '$SERIES': sys.exit(1)
print(sys.version_info[2])" 2>/dev/null
}

find_python() {
    local want=${MIN##*.} best='' best_micro='' candidate micro
    local candidates=()
    if command -v pyenv >/dev/null; then
        # Not free-threaded builds (3.13.5t); not pyenv's shims, which run whatever is active.
        for candidate in "$(pyenv root)"/versions/"$SERIES".*/bin/python"$SERIES"; do
            [[ $candidate == */versions/*t/bin/* ]] || candidates+=("$candidate")
        done
    fi
    candidate=$(PATH=$(tr ':' '\n' <<<"$PATH" | grep -v '/shims$' | paste -sd:) command -v "python$SERIES" || true)
    [[ -n $candidate ]] && candidates+=("$candidate")
    for candidate in "${candidates[@]}"; do
        micro=$(micro_of "$candidate") || continue
        if ((micro >= want)) && [[ -z $best_micro || $micro -lt $best_micro ]]; then
            best=$candidate best_micro=$micro
        fi
    done
    [[ -n $best ]] && echo "$best"
}

TMP=''
trap '[[ -z $TMP ]] || rm -rf "$TMP"' EXIT

fetch_source() {
    local tarball=$1 tmp
    TMP=$(mktemp -d)
    tmp=$TMP
    mkdir -p "$tmp"/{lists/partial,archives/partial,parts,src}
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
        >"$tmp/sources.list"
    local apt_opts=(
        -o "Dir::Etc::SourceList=$tmp/sources.list" -o "Dir::Etc::SourceParts=$tmp/parts"
        -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp" -o "Dir::Cache::Archives=$tmp/archives"
        -o APT::Sandbox::User=root -qq
    )
    say "    fetching python3.13 $BUILD_VERSION's source from Debian trixie (private apt state in $tmp)"
    apt-get "${apt_opts[@]}" update
    (cd "$tmp/src" && apt-get "${apt_opts[@]}" source --download-only "python3.13/trixie")
    local orig=$tmp/src/python3.13_$BUILD_VERSION.orig.tar.xz
    [[ -f $orig ]] || die "Debian trixie no longer has python3.13 $BUILD_VERSION's source ($(ls "$tmp/src"))"
    [[ $(sha256sum "$orig" | cut -d' ' -f1) == "$BUILD_SHA256" ]] \
        || die "$orig is not python.org's Python-$BUILD_VERSION.tar.xz (sha256 differs)"
    cp "$orig" "$tarball.partial"
    mv "$tarball.partial" "$tarball"
}

build_python() {
    command -v pyenv >/dev/null \
        || die "no Python >= $MIN found and pyenv is not installed to build Python $BUILD_VERSION"
    lock "python-$BUILD_VERSION"
    local prefix building
    prefix=$(pyenv root)/versions/$BUILD_VERSION
    building=$HA_CACHE/python-$BUILD_VERSION.building
    if [[ -e $building ]]; then
        # A build that was killed half way: its prefix may run but lack modules or headers.
        say "    removing the half-built $prefix left by an interrupted run"
        rm -rf "$prefix"
        rm -f "$building"
    fi
    if micro_of "$prefix/bin/python$SERIES" >/dev/null; then
        return 0 # another run built it while we waited for the lock
    fi
    step "building Python $BUILD_VERSION from source${FOR_WHAT:+ $FOR_WHAT} with pyenv (9 to 12 minutes, once per machine)"
    local cache tarball
    cache=$(pyenv root)/cache
    tarball=$cache/Python-$BUILD_VERSION.tar.xz
    mkdir -p "$cache"
    if [[ ! -f $tarball || $(sha256sum "$tarball" | cut -d' ' -f1) != "$BUILD_SHA256" ]]; then
        timed "source from Debian" fetch_source "$tarball"
    fi
    touch "$building"
    # -f: a prefix that is there but failed micro_of above is broken; build it anew.
    timed "pyenv install $BUILD_VERSION" env PYTHON_BUILD_CACHE_PATH="$cache" \
        pyenv install -f "$BUILD_VERSION" >&2
    micro_of "$prefix/bin/python$SERIES" >/dev/null || die "pyenv built $prefix, but it does not run"
    rm -f "$building"
}

if python=$(find_python); then
    echo "$python"
    exit 0
fi
say "    no Python $SERIES >= $MIN here: Python $BUILD_VERSION will be built"
build_python
find_python || die "built Python $BUILD_VERSION but cannot find it"
