"""Backups over time on real servers: verify in place, copy between stores, a bandwidth limit.

    python benches/trust_stores.py [--size 1GiB | --file BACKUP.tar] [--rounds 1]
                                   [--only verify,download,...] [--limit 20MiB] [--keep]

Contenders, each in a fresh child process (``--run-one NAME``) so that its RSS is its own:

- ``verify``: ``habackup.verify_backup(s3_url, slug)``, quick: the object streamed from moto
  through sha256 and checked against its sidecar; nothing written.
- ``download``: the plain download of the same object that verify is measured against:
  ``ObjectStoreBackupSyncAgent.async_download_backup`` into a file (streamed, hashed on the way,
  renamed into place).
- ``get``: boto3 ``get_object`` read in 1 MiB pieces and thrown away: the server's own pace.
- ``copy``: ``habackup.copy_backup(s3_url, slug, webdav_url)``: moto -> wsgidav, streamed.
- ``download+upload``: what copy replaces: the agent's download into a file, then the WebDAV
  agent's upload of that file, one after the other.
- ``limit``: the agent's upload to moto with ``limit_upload`` (default 20MiB): average rate
  against the limit, and how smooth progress is (the rate in each second, the longest silence).

Reports wall time, MiB/s, CPU time, and peak RSS above the RSS once the client is set up
(``VmHWM`` reset through ``/proc/self/clear_refs`` right before the measured work). moto and
wsgidav run here as separate processes on 127.0.0.1: their CPU competes with the client's on a
small machine, so compare the contenders with each other, not with a real store. The 1 GiB
backup and everything the servers stored are removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gen_dataset import parse_size
from upload_s3 import (
    REPO,
    _cpu_seconds,
    _reset_peak,
    _row,
    _status_kib,
    backup_file,
    chosen_contenders,
    log,
    server_options,
    versions,
)

MiB = 1 << 20
CONTENDERS = ("verify", "download", "get", "copy", "download+upload", "limit")
BUCKET = "bench"
S3_URL = f"s3://{BUCKET}/ha"


# --- children: one measurement each -------------------------------------------------------


def _dav_url(server: dict[str, str]) -> str:
    return server["dav"] + "/ha"


def _prepare(args: argparse.Namespace) -> Any:
    """The measured work, set up (imports, clients) but not started."""
    server: dict[str, str] = json.loads(args.server)
    s3_options = server_options(server)
    slug: str = args.slug
    scratch = Path(args.scratch)
    if args.run_one == "get":
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=server["endpoint"],
            aws_access_key_id=server["access_key"],
            aws_secret_access_key=server["secret_key"],
            region_name=server["region"],
        )

        def get() -> dict[str, Any]:
            body = client.get_object(Bucket=BUCKET, Key=f"ha/{slug}.tar")["Body"]
            while body.read(MiB):
                pass
            return {}

        return get

    import habackup
    from habackup import ObjectStoreBackupSyncAgent

    s3 = ObjectStoreBackupSyncAgent("s3", S3_URL, options=s3_options)
    dav = ObjectStoreBackupSyncAgent("dav", _dav_url(server))
    if args.run_one == "verify":

        def verify() -> dict[str, Any]:
            result = habackup.verify_backup(S3_URL, slug, options=s3_options)
            if not result.ok:
                raise SystemExit(f"verify failed: {result.problems}")
            return {}

        return verify
    if args.run_one == "download":

        def download() -> dict[str, Any]:
            asyncio.run(s3.async_download_backup(id=slug, path=scratch / f"{slug}.tar"))
            return {}

        return download
    if args.run_one == "copy":

        def copy() -> dict[str, Any]:
            result = habackup.copy_backup(S3_URL, slug, _dav_url(server), options=s3_options)
            if not result.sent:
                raise SystemExit("copy sent nothing: the destination was not emptied")
            return {}

        return copy
    if args.run_one == "download+upload":

        async def both() -> dict[str, Any]:
            path = scratch / f"{slug}.tar"
            started = time.perf_counter()
            await s3.async_download_backup(id=slug, path=path)
            downloaded = time.perf_counter()
            await dav.async_upload_backup(path=path)
            uploaded = time.perf_counter()
            return {"download_s": downloaded - started, "upload_s": uploaded - downloaded}

        return lambda: asyncio.run(both())

    limited = ObjectStoreBackupSyncAgent(
        "limited", f"s3://{BUCKET}/limited", options={**s3_options, "limit_upload": args.limit}
    )
    seen: list[tuple[float, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((time.perf_counter(), done))

    async def upload() -> dict[str, Any]:
        await limited.async_upload_backup(path=Path(args.file), on_progress=progress)
        return {"progress": seen}

    return lambda: asyncio.run(upload())


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    work = _prepare(args)
    idle_kib = _status_kib("VmRSS")
    reset = _reset_peak()
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    extra = work() or {}
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    if "progress" in extra:
        extra["progress"] = [(t - t0, done) for t, done in extra["progress"]]
    return {
        "name": args.run_one,
        "wall": wall,
        "cpu": cpu,
        "idle_kib": idle_kib,
        "peak_kib": _status_kib("VmHWM"),
        "peak_reset": reset,
        **extra,
    }


# --- parent --------------------------------------------------------------------------------


def child(name: str, args: argparse.Namespace, server: dict[str, str], slug: str,
          scratch: Path) -> dict[str, Any]:
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--run-one", name,
        "--server", json.dumps(server), "--slug", slug, "--scratch", str(scratch),
        "--file", str(args.file), "--limit", args.limit,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{name} failed ({proc.returncode}):\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def per_second(progress: list[tuple[float, int]]) -> list[int]:
    """The bytes progress reported in each whole second of the transfer."""
    end = progress[-1][0] if progress else 0.0
    rates = []
    second, index, before = 1.0, 0, 0
    while second <= end:
        while index < len(progress) and progress[index][0] <= second:
            index += 1
        done = progress[index - 1][1] if index else 0
        rates.append(done - before)
        before, second = done, second + 1
    return rates


def smoothness(progress: list[tuple[float, int]], limit: int) -> dict[str, float]:
    """How the limited upload went: the average rate while the bytes were fed out (until
    progress reached the total), the rate in each whole second of that (after the first, which
    holds the burst allowance), the longest gap between two progress reports in it, and the
    tail after it (the last part in flight and the server completing the upload)."""
    if len(progress) < 2:
        return {}
    total = progress[-1][1]
    fed_at = next(t for t, done in progress if done == total)
    feed = [(t, done) for t, done in progress if t <= fed_at]
    rates = per_second(feed)
    steady = rates[1:] or rates
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(feed)]
    return {
        "seconds": progress[-1][0],
        "fed_seconds": fed_at,
        "average": total / fed_at,
        "of_limit": total / fed_at / limit,
        "end_to_end": total / progress[-1][0],
        "slowest_second": min(steady),
        "fastest_second": max(steady),
        "stdev_second": statistics.pstdev(steady),
        "longest_gap": max(gaps, default=0.0),
        "reports": len(progress),
    }


def report(results: dict[str, list[dict[str, Any]]], size: int, limit: int,
           load: tuple[str, str]) -> str:
    lines = [
        f"A {size / MiB:.0f} MiB backup on moto (S3) and wsgidav (WebDAV), 127.0.0.1; median "
        f"wall; {versions()}; {os.cpu_count()} CPUs; load average before {load[0]}, after "
        f"{load[1]}.",
        "",
        _row(["contender", "wall s", "MiB/s", "CPU s", "peak RSS above idle MiB", "idle MiB"]),
        _row(["---", "---:", "---:", "---:", "---:", "---:"]),
    ]
    walls = {}
    for name, runs in results.items():
        if not runs:
            continue
        wall = statistics.median(r["wall"] for r in runs)
        walls[name] = wall
        above = max(r["peak_kib"] - r["idle_kib"] for r in runs) / 1024
        idle = statistics.median(r["idle_kib"] for r in runs) / 1024
        cpu = statistics.median(r["cpu"] for r in runs)
        lines.append(_row([name, f"{wall:.2f}", f"{size / MiB / wall:.0f}", f"{cpu:.2f}",
                           f"{above:.0f}", f"{idle:.0f}"]))
    lines.append("")
    if "verify" in walls and "download" in walls:
        lines.append(f"- quick verify / plain download throughput: "
                     f"{walls['download'] / walls['verify']:.2f}x (goal >= 0.8x)")
    if "verify" in walls and "get" in walls:
        lines.append(f"- quick verify / boto3 get_object throughput: "
                     f"{walls['get'] / walls['verify']:.2f}x")
    if "copy" in walls and "download+upload" in walls:
        parts = results["download+upload"][0]
        lines.append(
            f"- copy moto -> wsgidav: {walls['copy']:.2f} s against {walls['download+upload']:.2f}"
            f" s for download ({parts['download_s']:.2f} s) then upload "
            f"({parts['upload_s']:.2f} s): {walls['download+upload'] / walls['copy']:.2f}x "
            "(goal: faster)"
        )
    for run in results.get("limit", []):
        smooth = smoothness([tuple(p) for p in run["progress"]], limit)
        if smooth:
            lines.append(
                f"- limit_upload={limit / MiB:.0f}MiB: fed out in {smooth['fed_seconds']:.1f} s "
                f"at {smooth['average'] / MiB:.2f} MiB/s = {smooth['of_limit'] * 100:.1f} % of the "
                f"limit (goal: within 10 %); each second after the first "
                f"{smooth['slowest_second'] / MiB:.1f}-{smooth['fastest_second'] / MiB:.1f} "
                f"MiB/s, stdev {smooth['stdev_second'] / MiB:.2f}; {smooth['reports']} progress "
                f"reports, longest silence {smooth['longest_gap'] * 1000:.0f} ms; then "
                f"{smooth['seconds'] - smooth['fed_seconds']:.1f} s for the last part and the "
                f"server's completion ({smooth['end_to_end'] / MiB:.2f} MiB/s end to end)"
            )
    if not all(r["peak_reset"] for runs in results.values() for r in runs):
        lines.append("- VmHWM could not be reset: peaks include the imports.")
    return "\n".join(lines)


def _made(directory: Path) -> Path:
    directory.mkdir()
    return directory


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", default="1GiB", help="size of the generated backup")
    parser.add_argument("--file", type=Path, help="use this backup instead of generating one")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", help="comma-separated contenders (default: all)")
    parser.add_argument("--limit", default="20MiB", help="limit_upload for the limit run")
    parser.add_argument("--keep", action="store_true", help="keep the generated backup")
    parser.add_argument("--out", type=Path, help="also write the report here")
    # For the children.
    parser.add_argument("--run-one", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--server", help=argparse.SUPPRESS)
    parser.add_argument("--slug", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.run_one:
        print(json.dumps(run_one(args)))
        return 0
    contenders = chosen_contenders(args.only, CONTENDERS)
    generated = args.file is None
    args.file = backup_file(args.file, args.size)
    size = args.file.stat().st_size
    limit = parse_size(args.limit)

    sys.path.insert(0, str(REPO / "tests"))
    # tests/ is not a package; the children never import it (it imports pytest).
    from servers import run_moto, run_wsgidav

    import habackup
    from habackup import ObjectStoreBackupSyncAgent

    slug = habackup.read_backup(args.file).slug
    with open("/proc/loadavg") as f:
        load_before = " ".join(f.read().split()[:3])
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
    try:
        with tempfile.TemporaryDirectory(prefix="trust-bench-") as tmp, \
                run_moto(Path(tmp)) as s3, \
                run_wsgidav(_made(Path(tmp) / "dav"), Path(tmp)) as dav_server:
            (Path(tmp) / "dav" / "ha").mkdir()
            scratch = Path(tmp) / "scratch"
            scratch.mkdir()
            server = {
                "endpoint": s3.endpoint,
                "access_key": s3.access_key,
                "secret_key": s3.secret_key,
                "region": s3.region,
                "dav": dav_server.url_with_auth().rstrip("/"),
            }
            client = s3.client()
            client.create_bucket(Bucket=BUCKET)
            log(f"uploading {args.file.name} to moto (untimed) ...")
            agent = ObjectStoreBackupSyncAgent("setup", S3_URL, options=server_options(server))
            asyncio.run(agent.async_upload_backup(path=args.file))
            for round_no in range(args.rounds):
                shift = round_no % len(contenders)
                for name in contenders[shift:] + contenders[:shift]:
                    log(f"round {round_no + 1}/{args.rounds}: {name} ...")
                    result = child(name, args, server, slug, scratch)
                    # What a contender stored goes before the next one runs.
                    for stored in (Path(tmp) / "dav" / "ha").iterdir():
                        stored.unlink()
                    # The limited upload again would send nothing: the same bytes are there.
                    limited = client.list_objects_v2(Bucket=BUCKET, Prefix="limited/")
                    for obj in limited.get("Contents", []):
                        client.delete_object(Bucket=BUCKET, Key=obj["Key"])
                    shutil.rmtree(scratch)
                    scratch.mkdir()
                    log(f"  {result['wall']:.2f} s, {size / MiB / result['wall']:.0f} MiB/s, "
                        f"+{(result['peak_kib'] - result['idle_kib']) / 1024:.0f} MiB RSS")
                    if "progress" in result:
                        log("  MiB sent in each second: " + " ".join(
                            f"{rate / MiB:.0f}" for rate in per_second(result["progress"])))
                    results[name].append(result)
    finally:
        if generated and not args.keep:
            args.file.unlink(missing_ok=True)
    with open("/proc/loadavg") as f:
        load_after = " ".join(f.read().split()[:3])
    text = report(results, size, limit, (load_before, load_after))
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
