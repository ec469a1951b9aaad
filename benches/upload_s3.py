"""Upload benchmark: one backup file to S3 (a local moto server) by three clients.

    python benches/upload_s3.py [--size 1GiB | --file BACKUP.tar] [--rounds 2]
                                [--only habackup,ha-aiobotocore] [--option part_size=16MiB]

Contenders, each in a fresh child process (``--run-one NAME``) so that RSS is its own:

- ``boto3``: ``client.upload_file`` with an explicit ``TransferConfig`` (boto3's defaults:
  8 MiB threshold and parts, 10 threads).
- ``ha-aiobotocore``: what Home Assistant's ``aws_s3`` backup agent does today: an aiobotocore
  client made like ``aws_s3/__init__.py`` makes it, the backup read by the manager's
  ``send_backup`` (1 MiB ``f.read`` calls in the executor), and ``_upload_multipart``: chunks
  buffered in a list until 20 MiB, ``b"".join``-ed, one ``upload_part`` at a time, then
  ``complete_multipart_upload`` and a ``put_object`` of the metadata JSON.
- ``habackup``: ``ObjectStoreBackupSyncAgent(...).async_upload_backup(path=..., metadata=None)``
  (object_store, Rust; metadata, size and sha256 read from the file).

Reports wall time, MiB/s, CPU time, and peak RSS above the RSS once the client is imported and
set up (``VmHWM`` reset through ``/proc/self/clear_refs`` right before the upload). The moto
server is started here and is a separate process: its memory and CPU are not counted, but on
a 2-core machine its CPU competes with the client's, and it is slow (it copies every part into
its own memory and the whole object once more on completion), so MiB/s is a comparison
between clients, not what a real S3 would give.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import suppress
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from gen_dataset import parse_size

MiB = 1 << 20
REPO = Path(__file__).resolve().parent.parent
CONTENDERS = ("boto3", "ha-aiobotocore", "habackup")
# homeassistant/components/aws_s3/backup.py: MULTIPART_MIN_PART_SIZE_BYTES
HA_PART_SIZE = 20 * MiB
# homeassistant/components/backup/manager.py, send_backup(): f.read(2**20) in the executor
HA_READ_SIZE = 2**20
BOTO3_PART_SIZE = 8 * MiB


# --- the backup file ---------------------------------------------------------------------


class _RandomReader(io.RawIOBase):
    """``size`` seeded pseudo-random bytes: incompressible, like a real backup's gzip data."""

    def __init__(self, size: int, seed: int) -> None:
        self._left = size
        self._rng = random.Random(seed)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        self._left -= n
        return self._rng.randbytes(n)


def make_backup(path: Path, size: int) -> None:
    """A backup Home Assistant would accept: ``./backup.json`` and a ``homeassistant.tar.gz``
    (gzip level 0 around a tar of random bytes), about ``size`` bytes in all."""
    date = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    meta = json.dumps(
        {
            "compressed": True,
            "date": date,
            "extra": {"instance_id": "bench", "with_automatic_settings": False},
            "folders": [],
            "addons": [],
            "homeassistant": {"exclude_database": False, "version": "2025.4.4"},
            "name": f"Upload bench {size // MiB} MiB",
            "protected": False,
            "slug": hashlib.sha1(date.encode()).hexdigest()[:8],
            "type": "partial",
            "version": 2,
        }
    ).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        inner = Path(tmp) / "homeassistant.tar.gz"
        with tarfile.open(inner, "w:gz", compresslevel=0) as tar:
            info = tarfile.TarInfo("data/blob.bin")
            info.size, info.mtime = max(size - 64 * 1024, 0), int(time.time())
            tar.addfile(info, _RandomReader(info.size, seed=size))
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as outer:
            info = tarfile.TarInfo("./backup.json")
            info.size, info.mtime = len(meta), int(time.time())
            outer.addfile(info, io.BytesIO(meta))
            outer.add(inner, "homeassistant.tar.gz")
    partial.rename(path)


# --- children: one upload each -----------------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0), so the peak
    # measured is the upload's, not the imports'.
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _boto3_upload(server: dict[str, str], bucket: str, path: Path) -> Any:
    # Imported here, in the child that runs this contender only, like the other clients.
    import boto3
    from boto3.s3.transfer import TransferConfig

    client = boto3.client(
        "s3",
        endpoint_url=server["endpoint"],
        aws_access_key_id=server["access_key"],
        aws_secret_access_key=server["secret_key"],
        region_name=server["region"],
    )
    config = TransferConfig(
        multipart_threshold=BOTO3_PART_SIZE,
        multipart_chunksize=BOTO3_PART_SIZE,
        max_concurrency=10,
        use_threads=True,
    )

    def upload() -> None:
        client.upload_file(str(path), bucket, f"boto3/{path.name}", Config=config)

    return upload


async def _ha_upload(client: Any, bucket: str, path: Path) -> None:
    """homeassistant/components/aws_s3/backup.py's async_upload_backup for a backup above
    MULTIPART_MIN_PART_SIZE_BYTES, fed by the backup manager's send_backup()."""
    loop = asyncio.get_running_loop()

    async def send_backup() -> AsyncIterator[bytes]:
        f = await loop.run_in_executor(None, path.open, "rb")
        try:
            while chunk := await loop.run_in_executor(None, f.read, HA_READ_SIZE):
                yield chunk
        finally:
            await loop.run_in_executor(None, f.close)

    key = f"ha/{path.stem}.tar"
    upload = await client.create_multipart_upload(Bucket=bucket, Key=key)
    upload_id = upload["UploadId"]
    parts = []
    part_number = 1
    buffer_size = 0
    buffer: list[bytes] = []
    async for chunk in send_backup():
        buffer_size += len(chunk)
        buffer.append(chunk)
        if buffer_size >= HA_PART_SIZE:
            part = await client.upload_part(
                Bucket=bucket,
                Key=key,
                PartNumber=part_number,
                UploadId=upload_id,
                Body=b"".join(buffer),
            )
            parts.append({"PartNumber": part_number, "ETag": part["ETag"]})
            part_number += 1
            buffer_size = 0
            buffer = []
    if buffer:
        part = await client.upload_part(
            Bucket=bucket,
            Key=key,
            PartNumber=part_number,
            UploadId=upload_id,
            Body=b"".join(buffer),
        )
        parts.append({"PartNumber": part_number, "ETag": part["ETag"]})
    await client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    # HA uploads backup.as_dict() as JSON next to the tar.
    await client.put_object(
        Bucket=bucket, Key=f"ha/{path.stem}.metadata.json", Body=json.dumps({"bench": True})
    )


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    server: dict[str, str] = json.loads(args.server)
    path: Path = args.file
    loop: asyncio.AbstractEventLoop | None = None
    aio_exit: Any = None
    if args.run_one == "boto3":
        run = _boto3_upload(server, args.bucket, path)
    elif args.run_one == "ha-aiobotocore":
        from aiobotocore.session import AioSession

        loop = asyncio.new_event_loop()
        # As aws_s3/__init__.py: endpoint and keys, nothing else (no region, no Config).
        context = AioSession().create_client(
            "s3",
            endpoint_url=server["endpoint"],
            aws_secret_access_key=server["secret_key"],
            aws_access_key_id=server["access_key"],
        )
        client = loop.run_until_complete(context.__aenter__())
        aio_exit = context.__aexit__

        def run() -> None:
            assert loop is not None
            loop.run_until_complete(_ha_upload(client, args.bucket, path))

    else:
        from habackup import ObjectStoreBackupSyncAgent

        options = dict(server_options(server), **dict(o.split("=", 1) for o in args.option))
        agent = ObjectStoreBackupSyncAgent("bench", f"s3://{args.bucket}/habackup", options=options)

        def run() -> None:
            asyncio.run(agent.async_upload_backup(path=path, metadata=None))

    idle_kib = _status_kib("VmRSS")
    reset = _reset_peak()
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    run()
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    peak_kib = _status_kib("VmHWM")
    if loop is not None:
        loop.run_until_complete(aio_exit(None, None, None))
        loop.close()
    return {
        "name": args.run_one,
        "wall": wall,
        "cpu": cpu,
        "idle_kib": idle_kib,
        "peak_kib": peak_kib,
        "peak_reset": reset,
    }


def server_options(server: dict[str, str]) -> dict[str, str]:
    # The same keys as tests/servers.py's S3Server.options(), without importing it (pytest).
    return {
        "aws_endpoint": server["endpoint"],
        "aws_allow_http": "true",
        "aws_access_key_id": server["access_key"],
        "aws_secret_access_key": server["secret_key"],
        "aws_region": server["region"],
    }


# --- parent --------------------------------------------------------------------------------


def chosen_contenders(only: str | None, known: Sequence[str]) -> list[str]:
    """``--only a,b`` as a list (all of ``known`` without it); exits naming unknown names."""
    contenders = only.split(",") if only else list(known)
    if unknown := set(contenders) - set(known):
        sys.exit(f"unknown contender(s): {', '.join(sorted(unknown))}")
    return contenders


def backup_file(file: Path | None, size_text: str) -> Path:
    """``--file``, or a generated backup of ``--size`` in bench-data/ (made once, then reused)."""
    if file is None:
        size = parse_size(size_text)
        file = REPO / "bench-data" / f"upload-{size // MiB}MiB.tar"
        if not file.exists():
            log(f"making {file} ...")
            make_backup(file, size)
    return file.resolve()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def child(name: str, args: argparse.Namespace, server: Any, bucket: str) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--run-one",
        name,
        "--server",
        json.dumps(asdict(server)),
        "--bucket",
        bucket,
        "--file",
        str(args.file),
    ]
    for option in args.option:
        cmd += ["--option", option]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{name} failed ({proc.returncode}):\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def check_and_empty(client: Any, bucket: str, size: int, name: str) -> None:
    """The contender's .tar is there at full size; then everything goes, so that moto's temp
    files don't pile up over the rounds."""
    listing = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    tars = [o for o in listing if o["Key"].endswith(".tar")]
    if len(tars) != 1 or tars[0]["Size"] != size:
        sys.exit(f"{name}: expected one .tar of {size} bytes, found {listing}")
    for obj in listing:
        client.delete_object(Bucket=bucket, Key=obj["Key"])
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])


def versions() -> str:
    parts = [f"Python {platform.python_version()}"]
    for package in ("habackup", "boto3", "botocore", "aiobotocore", "moto"):
        with suppress(PackageNotFoundError):
            parts.append(f"{package} {version(package)}")
    return ", ".join(parts)


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def report(results: dict[str, list[dict[str, Any]]], size: int, rounds: int) -> str:
    lines = [
        f"Upload of a {size / MiB:.0f} MiB backup to moto (S3) on 127.0.0.1, "
        f"{rounds} round(s), median wall; {versions()}; {os.cpu_count()} CPUs.",
        "",
        _row(["contender", "wall s", "MiB/s", "CPU s", "peak RSS above idle MiB", "idle MiB"]),
        _row(["---", "---:", "---:", "---:", "---:", "---:"]),
    ]
    for name, runs in results.items():
        wall = statistics.median(r["wall"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        above = max(r["peak_kib"] - r["idle_kib"] for r in runs) / 1024
        idle = statistics.median(r["idle_kib"] for r in runs) / 1024
        lines.append(
            _row(
                [
                    name,
                    f"{wall:.2f}",
                    f"{size / MiB / wall:.0f}",
                    f"{cpu:.2f}",
                    f"{above:.0f}",
                    f"{idle:.0f}",
                ]
            )
        )
    if not all(r["peak_reset"] for runs in results.values() for r in runs):
        lines += ["", "Note: VmHWM could not be reset; peaks include the imports."]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1GiB", help="size of the generated backup")
    parser.add_argument("--file", type=Path, help="upload this backup instead of generating one")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", help="comma-separated contenders (default: all)")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra agent option for habackup (part_size, max_concurrency, ...), repeatable",
    )
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    # For the children.
    parser.add_argument("--run-one", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--server", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.run_one:
        print(json.dumps(run_one(args)))
        return 0

    contenders = chosen_contenders(args.only, CONTENDERS)
    args.file = backup_file(args.file, args.size)
    size = args.file.stat().st_size
    # Read once so that every contender reads from the page cache.
    with args.file.open("rb") as f:
        while f.read(16 * MiB):
            pass

    sys.path.insert(0, str(REPO / "tests"))
    # tests/ is not a package; the children never import it (it imports pytest).
    from servers import run_moto

    results: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
    with tempfile.TemporaryDirectory(prefix="upload-bench-") as tmp, run_moto(Path(tmp)) as s3:
        client = s3.client()
        bucket = "bench"
        client.create_bucket(Bucket=bucket)
        for round_no in range(args.rounds):
            # Rotate the order each round so that drift hits every contender alike.
            shift = round_no % len(contenders)
            order = contenders[shift:] + contenders[:shift]
            for name in order:
                log(f"round {round_no + 1}/{args.rounds}: {name} ...")
                result = child(name, args, s3, bucket)
                check_and_empty(client, bucket, size, name)
                log(
                    f"  {result['wall']:.2f} s, {size / MiB / result['wall']:.0f} MiB/s, "
                    f"+{(result['peak_kib'] - result['idle_kib']) / 1024:.0f} MiB RSS"
                )
                results[name].append(result)
    table = report(results, size, args.rounds)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
