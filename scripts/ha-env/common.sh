# Sourced by scripts/ha-test.sh and scripts/ha-env/*.sh: the cache, locks and timed steps.
#
# What these scripts build (a Python, a Debian chroot, one venv per Home Assistant version) is
# cached outside the repo, so a fresh clone on the same machine reuses it:
# ${HABACKUP_CACHE:-$HOME/.cache/habackup}. An entry counts only once complete: it is built under
# a temporary name and renamed, or carries a stamp written last; anything else is thrown away and
# rebuilt. Builds of one entry are serialised with flock, so concurrent runs (several checkouts
# on one machine) wait for each other instead of building twice.

HA_CACHE=${HABACKUP_CACHE:-$HOME/.cache/habackup}
HA_STAMP=.habackup-complete

# Messages go to stderr: some scripts print their result (a path) on stdout.
say() { printf '%s\n' "$*" >&2; }
step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'ha-test: %s\n' "$*" >&2; exit 1; }

# `timed LABEL CMD...`: runs CMD and says how long it took, so a slow first run explains itself.
# Never call it as a condition (`timed ... || x`): bash would then ignore errexit inside CMD.
timed() {
    local label=$1 start=$SECONDS
    shift
    "$@"
    say "    ($label: $((SECONDS - start)) s)"
}

# `lock NAME`: holds $HA_CACHE/.locks/NAME until `unlock` or until the calling process exits.
lock() {
    mkdir -p "$HA_CACHE/.locks"
    local file=$HA_CACHE/.locks/$1
    exec {HA_LOCK_FD}>"$file"
    if ! flock -n "$HA_LOCK_FD"; then
        say "    waiting for another run that is building $1 ($file)"
        flock "$HA_LOCK_FD"
    fi
}
unlock() { exec {HA_LOCK_FD}>&-; }

# Every mount point at or below $1, deepest first (/proc/self/mountinfo escapes spaces as \040).
mounts_under() {
    local dir
    dir=$(realpath -m "$1")
    awk -v dir="$dir" '{ p = $5; gsub(/\\040/, " ", p); if (p == dir || index(p, dir "/") == 1) print p }' \
        /proc/self/mountinfo | sort -r
}

# `logged LOG CMD...`: CMD's output into LOG; on failure its tail on stderr, and exit.
logged() {
    local log=$1
    shift
    if ! "$@" >"$log" 2>&1; then
        tail -20 "$log" >&2
        die "$(basename "$1") failed (whole log: $log)"
    fi
}

# rm -rf for a cache entry that may hold mount points (a chroot whose run was killed): unmount
# first and refuse if anything is still mounted, since a bind mount of the checkout shares its
# filesystem and `rm --one-file-system` would walk into it.
remove_entry() {
    local dir=$1 mount
    [[ -e $dir ]] || return 0
    while read -r mount; do
        [[ -n $mount ]] && umount -l "$mount" 2>/dev/null || true
    done < <(mounts_under "$dir")
    if [[ -n $(mounts_under "$dir") ]]; then
        die "$dir still has mounts ($(mounts_under "$dir" | tr '\n' ' ')); not removing it"
    fi
    rm -rf --one-file-system "$dir"
}
