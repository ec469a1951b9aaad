#!/usr/bin/env bash
# Installs the test servers that do not come from PyPI:
# - OpenSSH's sshd and Samba's smbd from Debian's packages (plus the sftp and smbclient
#   clients that benches/network_stores.py compares against), and the Unix user
#   `habackup-test` they log in as, for tests/net_servers.py (root with apt only; elsewhere
#   those tests skip and say why);
# - Azurite, Microsoft's Azure Storage emulator, into .cache/node (gitignored), used by
#   tests/servers.py's `azurite_server`.
# Idempotent: a second run only checks what is installed.
# (moto and wsgidav, the S3 and WebDAV servers, come from requirements-test.txt.)
set -euo pipefail
cd "$(dirname "$0")/.."

NET_USER=habackup-test
if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    if [[ ! -x /usr/sbin/sshd || ! -x /usr/sbin/smbd || ! -x /usr/bin/smbclient || ! -x /usr/bin/sftp ]]; then
        echo "install-test-servers: apt-get install openssh-server openssh-client samba smbclient"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            openssh-server openssh-client samba smbclient >/dev/null
    fi
    # Debian's postinst may start the system daemons where an init system runs; the tests
    # start their own on free ports and need nothing else.
    if ! id "$NET_USER" >/dev/null 2>&1; then
        echo "install-test-servers: adding the system user $NET_USER (no login shell)"
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$NET_USER"
    fi
    echo "install-test-servers: $(/usr/sbin/sshd -V 2>&1 | head -1), $(/usr/sbin/smbd --version)"
else
    echo "install-test-servers: not root with apt: the SFTP and SMB tests will skip" >&2
fi

# 3.35.0 is the newest Azurite that runs on Node 20 (3.36 wants >= 21, 3.37 wants >= 22).
AZURITE_VERSION=3.35.0
PREFIX=.cache/node

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    # As root with apt (CI, a fresh machine), install Debian's; otherwise leave it to the user.
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "install-test-servers: node/npm missing; apt-get install nodejs npm"
        apt-get update -qq && apt-get install -y -qq nodejs npm
    else
        echo "install-test-servers: node/npm not found; the Azure tests will be skipped" >&2
        exit 0
    fi
fi

installed=$(node -p "require('./$PREFIX/node_modules/azurite/package.json').version" 2>/dev/null || true)
if [[ $installed == "$AZURITE_VERSION" && -x $PREFIX/node_modules/.bin/azurite-blob ]]; then
    echo "install-test-servers: azurite $installed already in $PREFIX"
    exit 0
fi

echo "install-test-servers: npm install azurite@$AZURITE_VERSION into $PREFIX (node $(node -v))"
mkdir -p "$PREFIX"
# A package.json of our own keeps npm from walking up and treating the repo as the project.
[[ -f $PREFIX/package.json ]] || echo '{"name": "habackup-test-servers", "private": true}' >"$PREFIX/package.json"
npm install --prefix "$PREFIX" --no-audit --no-fund --no-save --loglevel=error \
    "azurite@$AZURITE_VERSION"
echo "install-test-servers: $("$PREFIX/node_modules/.bin/azurite-blob" --version 2>/dev/null || echo '?') installed"
