#!/usr/bin/env bash
# habackup's agents under Home Assistant's own backup manager (tests/homeassistant), on every
# Home Assistant release the project supports testing:
#
#   HA 2025.4.4   Python 3.13.0 (pyenv)
#   HA 2026.2.3   Python 3.13.5 (pyenv; built from source once per machine, 9-12 min)
#   HA 2026.10.4  Python 3.14   (a Debian forky chroot, built once per machine, ~3 min; root)
#
# HABACKUP_HA_VERSIONS picks some ("2026.10.4", "2025.4.4 2026.10.4"; "none" runs nothing and
# says so). Extra arguments go to pytest. Whatever is built is cached outside the repo in
# ${HABACKUP_CACHE:-~/.cache/habackup} (see scripts/ha-env/). Every selected version runs even
# when an earlier one failed; the exit status is non-zero if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ha-env/common.sh

ALL="2025.4.4 2026.2.3 2026.10.4"
read -r -a versions <<<"${HABACKUP_HA_VERSIONS:-$ALL}"
if [[ ${versions[*]} == none ]]; then
    say "Home Assistant tests NOT RUN: HABACKUP_HA_VERSIONS=none"
    exit 0
fi

say "Home Assistant ${versions[*]}: what is missing is built once per machine and cached in $HA_CACHE"
say "(Python 3.13.5 from source ~10 min, a Debian chroot with Python 3.14 ~1.5 min, a venv per release ~2 min)."

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# The test servers (moto, wsgidav, Azurite) run once for every release, from the main test venv
# (the Home Assistant venvs and the chroot have neither them nor Node.js); the tests find them
# through HABACKUP_TEST_SERVERS. They listen on 127.0.0.1, which the chroot shares.
VENV=${HABACKUP_VENV:-.venv}
[[ -x $VENV/bin/python ]] || die "no $VENV: run ./scripts/test.sh first (it builds the test venv and the servers)"
"$VENV/bin/python" tests/serve.py "$logs/servers.json" >"$logs/servers.log" 2>&1 &
servers=$!
trap 'kill "$servers" 2>/dev/null || true; wait "$servers" 2>/dev/null || true; rm -rf "$logs"' EXIT
for _ in $(seq 1200); do
    [[ -f $logs/servers.json ]] && break
    kill -0 "$servers" 2>/dev/null || { cat "$logs/servers.log" >&2; die "the test servers did not start"; }
    sleep 0.1
done
[[ -f $logs/servers.json ]] || { cat "$logs/servers.log" >&2; die "the test servers did not start within 120 s"; }
HABACKUP_TEST_SERVERS=$(cat "$logs/servers.json")
export HABACKUP_TEST_SERVERS
summary=()
failed=0
for version in "${versions[@]}"; do
    start=$SECONDS
    status=0
    scripts/ha-env/run-version.sh "$version" "$@" 2>&1 | tee "$logs/$version" || status=$?
    # pytest's closing line ("== 14 passed in 40.2s =="), or the set-up's last words.
    result=$(grep -E '^=* ?[0-9]+ (passed|failed|errors?|skipped)|no tests ran' "$logs/$version" | tail -1 | tr -d '=' | xargs || true)
    [[ -n $result ]] || result="set-up failed: $(grep -v '^\s*$' "$logs/$version" | tail -1)"
    ((status == 0)) || failed=1
    summary+=("$(printf '  HA %-10s %s  %s (%d s in all)' "$version" "$( ((status == 0)) && echo ok || echo FAILED)" "$result" $((SECONDS - start)))")
done

step "Home Assistant tests"
printf '%s\n' "${summary[@]}"
exit $failed
