"""SFTP and SMB benchmark: a backup up and down by habackup's agent and by the stock clients.

    sudo python benches/network_stores.py [--size 1GiB | --file BACKUP.tar] [--rounds 1]
                                          [--only habackup-sftp,sftp,...] [--out results.md]

Against OpenSSH's sshd and Samba's smbd on 127.0.0.1, started as the tests start them
(``tests/net_servers.py``: root, the ``habackup-test`` user, ``scripts/install-test-servers.sh``).
Contenders, each in a fresh child process (``--run-one NAME``) so that RSS is its own:

- ``habackup-sftp``: ``ObjectStoreBackupSyncAgent("sftp://...")`` upload, then download
  (key login, host key pinned);
- ``sftp``: OpenSSH's ``sftp -b`` ``put`` then ``get`` (its default cipher, 64 requests of
  32 KiB in flight), and ``sftp-aes-gcm``: the same with ``-c aes256-gcm@openssh.com``, the
  cipher habackup negotiates;
- ``habackup-smb``: the agent on ``smb://.../backups`` (signing mandatory);
- ``smbclient``: Samba's ``smbclient -c "put ...; get ..."`` (SMB3, signed).

Reports wall time and MiB/s per direction, CPU time, and peak RSS above idle: for habackup the
child's own ``VmHWM`` (reset through ``/proc/self/clear_refs`` before each transfer); for the
stock clients their ``ru_maxrss`` (whole process, there is no idle to subtract). The servers'
CPU is not counted, but on a small machine it competes with the client's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from upload_s3 import _cpu_seconds, _reset_peak, _status_kib, backup_file, chosen_contenders

MiB = 1 << 20
REPO = Path(__file__).resolve().parent.parent
CONTENDERS = ("habackup-sftp", "sftp", "sftp-aes-gcm", "habackup-smb", "smbclient")


# --- children --------------------------------------------------------------------------------


def _measure(run: Any) -> dict[str, float]:
    idle = _status_kib("VmRSS")
    _reset_peak()
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    run()
    return {
        "wall": time.perf_counter() - t0,
        "cpu": _cpu_seconds() - cpu0,
        "above_idle_mib": (_status_kib("VmHWM") - idle) / 1024,
    }


def _children_run(argv: list[str], stdin: str | None = None) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or "NT_STATUS" in proc.stdout + proc.stderr:
        sys.exit(f"{argv[0]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"wall": wall, "cpu": cpu, "peak_mib": after.ru_maxrss / 1024}


def run_one(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    path = Path(spec["file"])
    back = Path(spec["scratch"]) / f"{name}.tar"
    if name.startswith("habackup"):
        from habackup import ObjectStoreBackupSyncAgent, read_backup

        agent = ObjectStoreBackupSyncAgent("bench", spec["url"], options=spec["options"])
        slug = read_backup(path).slug
        up = _measure(lambda: asyncio.run(agent.async_upload_backup(path=path)))
        down = _measure(
            lambda: asyncio.run(agent.async_download_backup(id=slug, path=back))
        )
        asyncio.run(agent.async_delete_backup(id=slug))
    elif name.startswith("sftp"):
        remote = f"{spec['remote_dir']}/{name}.tar"
        base = [
            "sftp",
            "-q",
            "-P",
            str(spec["port"]),
            "-i",
            spec["key"],
            "-o",
            f"UserKnownHostsFile={spec['known_hosts']}",
            "-o",
            "StrictHostKeyChecking=yes",
        ]
        if name == "sftp-aes-gcm":
            base += ["-c", "aes256-gcm@openssh.com"]
        target = f"{spec['user']}@127.0.0.1"
        up = _children_run([*base, "-b", "-", target], f"put {path} {remote}\n")
        down = _children_run([*base, "-b", "-", target], f"get {remote} {back}\nrm {remote}\n")
    else:
        base = [
            "smbclient",
            f"//127.0.0.1/{spec['share']}",
            "-p",
            str(spec["port"]),
            "-A",
            spec["authfile"],
            "-m",
            "SMB3",
        ]
        up = _children_run([*base, "-c", f"put {path} {name}.tar"])
        down = _children_run([*base, "-c", f"get {name}.tar {back}; del {name}.tar"])
    size = path.stat().st_size
    if back.stat().st_size != size:
        sys.exit(f"{name}: downloaded {back.stat().st_size} bytes of {size}")
    back.unlink()
    return {"name": name, "up": up, "down": down}


# --- parent ----------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def report(results: dict[str, list[dict[str, Any]]], size: int, rounds: int) -> str:
    lines = [
        f"{size / MiB:.0f} MiB backup to OpenSSH sshd / Samba smbd on 127.0.0.1, {rounds} "
        f"round(s), median wall; Python {platform.python_version()}, {os.cpu_count()} CPUs.",
        "",
        _row(
            [
                "contender",
                "up s",
                "up MiB/s",
                "down s",
                "down MiB/s",
                "CPU s (up+down)",
                "peak RSS MiB",
            ]
        ),
        _row(["---", "---:", "---:", "---:", "---:", "---:", "---:"]),
    ]
    for name, runs in results.items():
        up = statistics.median(r["up"]["wall"] for r in runs)
        down = statistics.median(r["down"]["wall"] for r in runs)
        cpu = statistics.median(r["up"]["cpu"] + r["down"]["cpu"] for r in runs)
        if name.startswith("habackup"):
            peak = max(max(r["up"]["above_idle_mib"], r["down"]["above_idle_mib"]) for r in runs)
            rss = f"{peak:.0f} above idle"
        else:
            peak = max(max(r["up"]["peak_mib"], r["down"]["peak_mib"]) for r in runs)
            rss = f"{peak:.0f} (process)"
        mib = size / MiB
        lines.append(
            _row([name, f"{up:.2f}", f"{mib / up:.0f}", f"{down:.2f}", f"{mib / down:.0f}",
                  f"{cpu:.2f}", rss])
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1GiB")
    parser.add_argument("--file", type=Path)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", help="comma-separated contenders (default: all)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--run-one", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_one:
        print(json.dumps(run_one(args.run_one, json.loads(args.spec))))
        return 0

    contenders = chosen_contenders(args.only, CONTENDERS)
    args.file = backup_file(args.file, args.size)
    size = args.file.stat().st_size

    sys.path.insert(0, str(REPO / "tests"))
    # tests/ is not a package; the children never import it (it imports pytest).
    from net_servers import missing_prerequisite, run_smbd, run_sshd, session_credentials

    if reason := missing_prerequisite():
        sys.exit(reason)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
    with ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="net-bench-")))
        creds = stack.enter_context(session_credentials())
        ssh = stack.enter_context(run_sshd(creds, logs))
        smb = stack.enter_context(run_smbd(creds, logs))
        known_hosts = creds.base / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{ssh.port} {creds.host_key_line}\n")
        authfile = creds.base / "smb-auth"
        authfile.write_text(f"username = {ssh.user}\npassword = {creds.password}\n")
        authfile.chmod(0o600)
        scratch = logs / "scratch"
        scratch.mkdir()
        (creds.data / "bench").mkdir()
        shutil.chown(creds.data / "bench", ssh.user, ssh.user)
        key = {"private_key": str(creds.client_key), "host_key": creds.host_key_line}
        common = {"file": str(args.file), "scratch": str(scratch), "user": ssh.user}
        specs: dict[str, dict[str, Any]] = {
            "habackup-sftp": {**common, "url": ssh.url("bench"), "options": key},
            "habackup-smb": {**common, "url": smb.url("bench"), "options": smb.options()},
        }
        for name in ("sftp", "sftp-aes-gcm"):
            specs[name] = {
                **common,
                "port": ssh.port,
                "key": str(creds.client_key),
                "known_hosts": str(known_hosts),
                "remote_dir": str(creds.data / "bench"),
            }
        specs["smbclient"] = {
            **common,
            "port": smb.port,
            "share": "backups",
            "authfile": str(authfile),
        }
        for round_no in range(args.rounds):
            for name in contenders:
                log(f"round {round_no + 1}: {name}")
                cmd = [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--run-one",
                    name,
                    "--spec",
                    json.dumps(specs[name]),
                ]
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    sys.exit(f"{name} failed ({proc.returncode}):\n{proc.stderr}")
                results[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    table = report(results, size, args.rounds)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
