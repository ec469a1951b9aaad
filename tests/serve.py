"""Serve the test servers to a test run in another Python: ``python tests/serve.py OUT.json``.

The Home Assistant suite runs in venvs (and a chroot) of its own, without moto, wsgidav or
Node.js (and OpenSSH's sshd and Samba's smbd, from ``net_servers``, run as root).
``scripts/ha-test.sh`` starts the servers once with the main test venv through this script and
hands their endpoints over: it writes them as JSON to OUT.json (complete once it
exists: written under another name and renamed), then serves until SIGTERM or SIGINT and stops
every server (they also die with this process). All listen on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from types import FrameType

from net_servers import missing_prerequisite, run_smbd, run_sshd, session_credentials
from servers import run_azurite, run_moto, run_wsgidav


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(out: Path) -> None:
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="habackup-servers-")))
        (tmp / "dav").mkdir()
        (tmp / "azurite").mkdir()
        s3 = stack.enter_context(run_moto(tmp))
        dav = stack.enter_context(run_wsgidav(tmp / "dav", tmp))
        azure = stack.enter_context(run_azurite(tmp / "azurite", tmp))
        endpoints = {"s3": asdict(s3), "webdav": asdict(dav), "azure": asdict(azure)}
        endpoints["webdav"]["root"] = str(dav.root)
        endpoints["azure"].pop("_names", None)
        endpoints |= _network_shares(stack, tmp)
        partial = out.with_name(out.name + ".partial")
        partial.write_text(json.dumps(endpoints, default=str))
        os.replace(partial, out)
        signal.pause()


def _network_shares(stack: contextlib.ExitStack, logs: Path) -> dict[str, object]:
    """sshd and smbd, with what a test needs to log in (the Home Assistant suite may run in a
    chroot that cannot read these files: the client key and host key go over as text). Where
    they cannot run, the reason goes over instead and those tests skip with it."""
    reason = missing_prerequisite()
    if reason is not None:
        return {"sftp": {"unavailable": reason}, "smb": {"unavailable": reason}}
    creds = stack.enter_context(session_credentials())
    ssh = stack.enter_context(run_sshd(creds, logs))
    smb = stack.enter_context(run_smbd(creds, logs))
    return {
        "sftp": {
            "port": ssh.port,
            "user": ssh.user,
            "password": creds.password,
            "client_key": creds.client_key.read_text(),
            "host_key": creds.host_key_line,
            "host_fingerprint": creds.host_fingerprint,
            "data": str(creds.data),
        },
        "smb": {"port": smb.port, "user": smb.user, "password": creds.password},
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/serve.py OUT.json")
    main(Path(sys.argv[1]))
