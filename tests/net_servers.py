"""OpenSSH's sshd and Samba's smbd on 127.0.0.1, as pytest fixtures for the SFTP and SMB agents.

Registered from conftest.py beside ``servers``. Both come from Debian's packages
(``scripts/install-test-servers.sh`` installs them and creates the Unix user ``habackup-test``
they log in as) and run as root, which they need to switch to that user. Every session gets:

- a fresh data folder owned by the user, which both servers serve and the tests read directly;
- a random password (set with chpasswd and smbpasswd), an Ed25519 client key in
  ``authorized_keys``, and a new Ed25519 host key for sshd;
- ``sshd_server``: sshd on a free port, password and public-key auth, ``internal-sftp``;
- ``smbd_server``: smbd on a free port, SMB 2.1 to 3.1.1 only (no SMB1), signing mandatory,
  share ``backups`` and share ``secure``, which requires encryption.

Without root, the binaries or the user, the fixtures skip with the reason; CI has all three.
The ``run_*`` context managers also serve a function-scoped server on the same data (for the
tests that kill one mid-upload) and ``benches/network_stores.py``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from servers import HOST, _serve, free_port

TEST_USER = "habackup-test"
SSHD = Path("/usr/sbin/sshd")
SMBD = Path("/usr/sbin/smbd")


def missing_prerequisite() -> str | None:
    """Why the servers cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "sshd and smbd must run as root to switch to the test user"
    for binary in (SSHD, SMBD, Path("/usr/bin/smbpasswd"), Path("/usr/bin/ssh-keygen")):
        if not binary.exists():
            return f"{binary} missing: run scripts/install-test-servers.sh"
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        return f"user {TEST_USER} missing: run scripts/install-test-servers.sh"
    return None


def _port_answers(port: int, banner: bytes = b"") -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            if banner:
                sock.settimeout(5)
                return sock.recv(64).startswith(banner)
            return True
    except OSError:
        return False


@dataclass
class Credentials:
    """The test user's secrets for one session, and the folder the servers write into."""

    base: Path  # root-owned, holds configs and keys
    data: Path  # owned by TEST_USER: what SFTP paths and the SMB shares point into
    password: str
    client_key: Path  # Ed25519 private key (OpenSSH format) accepted for TEST_USER
    host_key: Path  # sshd's Ed25519 host key; host_key.with_suffix(".pub") is its public line

    @property
    def host_key_line(self) -> str:
        return self.host_key.with_name(self.host_key.name + ".pub").read_text().strip()

    @property
    def host_fingerprint(self) -> str:
        out = subprocess.run(
            ["ssh-keygen", "-l", "-E", "sha256", "-f", str(self.host_key)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return out.split()[1]  # "256 SHA256:... comment (ED25519)"


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
    )


@contextlib.contextmanager
def session_credentials() -> Iterator[Credentials]:
    """A base folder in /tmp (readable by the test user, as sshd reads authorized_keys as that
    user), keys, a data folder the user owns, and a fresh random password."""
    user = pwd.getpwnam(TEST_USER)
    base = Path(tempfile.mkdtemp(prefix="habackup-net-"))
    try:
        base.chmod(0o755)
        data = base / "data"
        data.mkdir()
        os.chown(data, user.pw_uid, user.pw_gid)
        password = "pw-" + secrets.token_urlsafe(12)
        subprocess.run(
            ["chpasswd"], input=f"{TEST_USER}:{password}\n", text=True, check=True
        )
        client_key, host_key = base / "client_ed25519", base / "host_ed25519"
        _keygen(client_key)
        _keygen(host_key)
        authorized = base / "authorized_keys"
        authorized.write_text(client_key.with_name(client_key.name + ".pub").read_text())
        authorized.chmod(0o644)
        yield Credentials(base, data, password, client_key, host_key)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class SshServer:
    port: int
    creds: Credentials
    user: str = TEST_USER

    def url(self, path: str) -> str:
        """``sftp://habackup-test@127.0.0.1:PORT/<data>/<path>`` (an absolute path)."""
        return f"sftp://{self.user}@{HOST}:{self.port}{self.creds.data}/{path.lstrip('/')}"

    def options(self, **extra: str) -> dict[str, str]:
        """Password login, host key pinned."""
        return {"password": self.creds.password, "host_key": self.creds.host_key_line, **extra}


@contextlib.contextmanager
def run_sshd(creds: Credentials, log_dir: Path) -> Iterator[SshServer]:
    """sshd in the foreground (-D, logging to stderr) on a free port of 127.0.0.1."""
    port = free_port()
    config = creds.base / f"sshd-{port}.conf"
    config.write_text(
        f"""ListenAddress {HOST}
Port {port}
HostKey {creds.host_key}
PidFile {creds.base}/sshd-{port}.pid
AuthorizedKeysFile {creds.base}/authorized_keys
AllowUsers {TEST_USER}
PasswordAuthentication yes
PubkeyAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
StrictModes no
MaxStartups 100
Subsystem sftp internal-sftp
LogLevel VERBOSE
"""
    )
    # The privilege-separation folder systemd would make.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    argv = [str(SSHD), "-D", "-e", "-f", str(config)]
    with _serve(
        "sshd", argv, port, log_dir, ready=lambda: _port_answers(port, b"SSH-2.0-")
    ):
        yield SshServer(port, creds)


@dataclass
class SmbServer:
    port: int
    creds: Credentials
    user: str = TEST_USER

    def url(self, path: str, share: str = "backups") -> str:
        """``smb://habackup-test@127.0.0.1:PORT/<share>/<path>``."""
        return f"smb://{self.user}@{HOST}:{self.port}/{share}/{path.lstrip('/')}"

    def options(self, **extra: str) -> dict[str, str]:
        return {"password": self.creds.password, **extra}

    def folder(self, share: str = "backups") -> Path:
        """Where ``share`` stores its files."""
        return self.creds.data / share


@contextlib.contextmanager
def run_smbd(creds: Credentials, log_dir: Path) -> Iterator[SmbServer]:
    """smbd in the foreground with its own configuration and state under ``creds.base``."""
    port = free_port()
    state = creds.base / f"samba-{port}"
    for sub in ("private", "lock", "state", "cache", "pid", "ncalrpc"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    user = pwd.getpwnam(TEST_USER)
    for share in ("backups", "secure"):
        folder = creds.data / share
        folder.mkdir(exist_ok=True)
        os.chown(folder, user.pw_uid, user.pw_gid)
    config = state / "smb.conf"
    config.write_text(
        f"""[global]
server role = standalone server
workgroup = WORKGROUP
interfaces = {HOST}
bind interfaces only = yes
smb ports = {port}
disable netbios = yes
server min protocol = SMB2_10
server max protocol = SMB3
server signing = mandatory
map to guest = never
passdb backend = tdbsam:{state}/private/passdb.tdb
private dir = {state}/private
lock directory = {state}/lock
state directory = {state}/state
cache directory = {state}/cache
pid directory = {state}/pid
ncalrpc dir = {state}/ncalrpc
log file = {log_dir}/smbd-{port}.%m.log
log level = 1
load printers = no
printing = bsd
printcap name = /dev/null
disable spoolss = yes

[backups]
path = {creds.data}/backups
read only = no
valid users = {TEST_USER}

[secure]
path = {creds.data}/secure
read only = no
valid users = {TEST_USER}
smb encrypt = required
"""
    )
    subprocess.run(
        ["smbpasswd", "-c", str(config), "-a", "-s", TEST_USER],
        input=f"{creds.password}\n{creds.password}\n",
        text=True,
        check=True,
        capture_output=True,
    )
    argv = [
        str(SMBD),
        "--foreground",
        "--no-process-group",
        "--debug-stdout",
        "--configfile",
        str(config),
    ]
    with _serve("smbd", argv, port, log_dir, ready=lambda: _port_answers(port)):
        yield SmbServer(port, creds)


def _require() -> None:
    reason = missing_prerequisite()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def net_credentials() -> Iterator[Credentials]:
    _require()
    with session_credentials() as creds:
        yield creds


@pytest.fixture(scope="session")
def sshd_server(net_credentials: Credentials, server_logs: Path) -> Iterator[SshServer]:
    with run_sshd(net_credentials, server_logs) as server:
        yield server


@pytest.fixture(scope="session")
def smbd_server(net_credentials: Credentials, server_logs: Path) -> Iterator[SmbServer]:
    with run_smbd(net_credentials, server_logs) as server:
        yield server
