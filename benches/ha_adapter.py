"""Home Assistant adapter benchmark: a backup through ``HabackupBackupAgent`` to ``file://`` and
to S3 (moto), against Home Assistant's own local agent copying the same file.

    python benches/ha_adapter.py [--size 1GiB | --file BACKUP.tar] [--rounds 1]
                                 [--only ha-local,adapter-file,adapter-s3] [--out results.md]

Runs in a Home Assistant venv (``scripts/ha-test.sh`` builds one per release) with a release
build of habackup on its path. Each measurement runs in a fresh child process
(``--run-one NAME``) with a config dir of its own holding the backup in ``backups/`` (Home
Assistant's own file, hard-linked from ``bench-data/``), a real ``homeassistant.core.
HomeAssistant`` (its config paths and executor, as the adapter uses them) and, as the stream,
what Home Assistant's manager hands an agent for a backup it wrote: ``send_backup``, 1 MiB reads
in the executor.

- ``ha-local``: what Home Assistant does with a backup that arrives for its local agent: its own
  ``receive_file`` (``homeassistant.components.backup.util``) writes the stream to
  ``backups/`` in the config dir. The throughput to beat, and a full second copy on the disk.
- ``adapter-file`` / ``adapter-s3``: ``HabackupBackupAgent(hass, ObjectStoreBackupSyncAgent(
  ...))``: ``async_upload_backup(open_stream=..., backup=..., on_progress=...)``, then (in a
  child of its own, so that its RSS is not the upload's) ``async_download_backup`` read to its
  end, as Home Assistant's download view reads it.
- ``spooled-file``: the same to ``file://``, with the object-store agent behind a plain Python
  ``BackupSyncAgent`` that only forwards paths: the adapter spools the upload to a temp file in
  ``tmp_backups/`` and downloads to one before the first byte, as it did for every agent before
  it took streams. The "before" to compare ``adapter-file`` with.

Reports, per contender: upload wall time and MiB/s (and relative to ``ha-local``), the peak
extra disk under the config dir beyond Home Assistant's own file (sampled every 10 ms by a
thread), the peak RSS above the idle RSS right before the upload (``VmHWM`` reset through
``/proc/self/clear_refs``), and for downloads the time to the first chunk, MiB/s and the peak
RSS above idle. moto runs as another process (``--moto-python``, default the repo's ``.venv``,
where ``requirements-test.txt`` installs it): its CPU competes on a small machine, its memory is
not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from upload_s3 import (
    _cpu_seconds,
    _reset_peak,
    _row,
    _status_kib,
    backup_file,
    chosen_contenders,
    versions,
)

MiB = 1 << 20
REPO = Path(__file__).resolve().parent.parent
CONTENDERS = ("ha-local", "spooled-file", "adapter-file", "adapter-s3")
# homeassistant/components/backup/manager.py, send_backup(): f.read(2**20) in the executor
HA_READ_SIZE = 2**20
SAMPLE_INTERVAL = 0.01


# --- children: one measurement each ------------------------------------------------------


class _Chunks:
    """A stream as ``receive_file`` reads it: an async iterator (2025.5+), or an aiohttp
    ``BodyPartReader``'s ``read_chunk`` (2025.4)."""

    def __init__(self, stream: AsyncIterator[bytes]) -> None:
        self._stream = stream

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._stream

    async def read_chunk(self, size: int = 0) -> bytes:
        return await anext(self._stream, b"")


async def _measure(args: argparse.Namespace) -> dict[str, Any]:
    # Imported in the child only: Home Assistant and habackup are what is measured.
    from disk_watch import DiskWatch
    from homeassistant.components.backup.util import read_backup, receive_file
    from homeassistant.core import HomeAssistant

    import habackup
    from habackup import ObjectStoreBackupSyncAgent
    from habackup.homeassistant import HabackupBackupAgent

    config: Path = args.config
    source: Path = args.source
    hass = HomeAssistant(str(config))
    run = hass.async_add_executor_job
    backup = await run(read_backup, source)

    async def open_stream() -> AsyncIterator[bytes]:
        async def send_backup() -> AsyncIterator[bytes]:
            file = await run(source.open, "rb")
            try:
                while chunk := await run(file.read, HA_READ_SIZE):
                    yield chunk
            finally:
                await run(file.close)

        return send_backup()

    class PathsOnly(habackup.BackupSyncAgent):
        """Forwards paths to the object-store agent; no streams, so the adapter spools."""

        def __init__(self, inner: ObjectStoreBackupSyncAgent) -> None:
            super().__init__(inner.name)
            self.inner = inner

        async def async_upload_backup(self, *, path: Path, metadata: Any, **kw: Any) -> None:
            await self.inner.async_upload_backup(path=path, metadata=metadata)

        async def async_download_backup(self, *, id: str, path: Path, **kw: Any) -> None:
            await self.inner.async_download_backup(id=id, path=path)

        async def async_list_backups(self, **kw: Any) -> list[habackup.SyncedBackup]:
            return await self.inner.async_list_backups()

        async def async_delete_backup(self, *, id: str, **kw: Any) -> None:
            await self.inner.async_delete_backup(id=id)

    agent = None
    if args.run_one != "ha-local":
        options = json.loads(args.options)
        sync_agent: habackup.BackupSyncAgent
        sync_agent = ObjectStoreBackupSyncAgent("bench", args.url, options=options)
        if args.run_one == "spooled-file":
            sync_agent = PathsOnly(sync_agent)
        agent = HabackupBackupAgent(hass, sync_agent, domain="bench")
    progress: list[int] = []

    def on_progress(*, bytes_uploaded: int, **kwargs: Any) -> None:
        progress.append(bytes_uploaded)

    result: dict[str, Any] = {"name": args.run_one, "phase": args.phase, "size": backup.size}
    result["habackup"] = str(Path(habackup.__file__).parent)
    async with DiskWatch(config, interval=SAMPLE_INTERVAL) as watch:
        idle_kib = _status_kib("VmRSS")
        result["peak_reset"] = _reset_peak()
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        if args.phase == "download":
            assert agent is not None
            chunks = await agent.async_download_backup(backup.backup_id)
            received = len(await anext(chunks))
            result["first"] = time.perf_counter() - t0
            async for chunk in chunks:
                received += len(chunk)
            if received != backup.size:
                raise RuntimeError(f"downloaded {received} bytes of {backup.size}")
        elif agent is None:
            target = config / "backups" / f"received-{source.name}"
            await receive_file(hass, _Chunks(await open_stream()), target)
        else:
            await agent.async_upload_backup(
                open_stream=open_stream, backup=backup, on_progress=on_progress
            )
        result["wall"] = time.perf_counter() - t0
        result["cpu"] = _cpu_seconds() - cpu0
        result["peak_kib"] = _status_kib("VmHWM") - idle_kib
    result["idle_kib"] = idle_kib
    result["disk_extra"] = watch.peak_extra
    result["progress_calls"] = len(progress)
    if args.phase == "download":
        assert agent is not None
        await agent.async_delete_backup(backup.backup_id)
    await hass.async_stop(force=True)
    return result


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(_measure(args))


# --- parent --------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def child(
    name: str,
    phase: str,
    args: argparse.Namespace,
    work: Path,
    url: str,
    options: dict[str, str],
) -> dict[str, Any]:
    config = work / name / "config"
    source = config / "backups" / args.file.name
    if not source.exists():
        (config / "backups").mkdir(parents=True)
        try:
            os.link(args.file, source)  # Home Assistant's own file, no second copy
        except OSError:
            log(f"cannot hard-link {args.file} into {config}; copying it (untimed)")
            subprocess.run(["cp", str(args.file), str(source)], check=True)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--run-one",
        name,
        "--phase",
        phase,
        "--config",
        str(config),
        "--source",
        str(source),
        "--url",
        url,
        "--options",
        json.dumps(options),
    ]
    # tests/ for disk_watch; whatever PYTHONPATH brought habackup's release build stays.
    paths = [str(REPO / "tests"), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        sys.exit(f"{name} {phase} failed ({proc.returncode}):\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def report(results: dict[str, list[dict[str, Any]]], size: int, rounds: int) -> str:
    def median(runs: list[dict[str, Any]], phase: str, key: str) -> float:
        return statistics.median(r[phase][key] for r in runs)

    def most(runs: list[dict[str, Any]], phase: str, key: str) -> float:
        return max(r[phase][key] for r in runs)

    base = results.get("ha-local")
    base_wall = median(base, "upload", "wall") if base else None
    where = {r[p]["habackup"] for runs in results.values() for r in runs for p in r}
    lines = [
        f"A {size / MiB:.0f} MiB backup through the Home Assistant adapter, {rounds} round(s), "
        f"median (peaks: the highest); {versions()}; habackup from {', '.join(sorted(where))}; "
        f"{os.cpu_count()} CPUs.",
        "",
        _row(
            [
                "contender",
                "upload s",
                "MiB/s",
                "vs ha-local",
                "CPU s",
                "extra disk in config dir MiB",
                "peak RSS above idle MiB",
                "download: first chunk s",
                "MiB/s",
                "peak RSS above idle MiB",
                "extra disk MiB",
            ]
        ),
        _row(["---", *["---:"] * 10]),
    ]
    for name, runs in results.items():
        wall = median(runs, "upload", "wall")
        cells = [
            name,
            f"{wall:.2f}",
            f"{size / MiB / wall:.0f}",
            f"{base_wall / wall:.2f}x" if base_wall else "",
            f"{median(runs, 'upload', 'cpu'):.2f}",
            f"{most(runs, 'upload', 'disk_extra') / MiB:.1f}",
            f"{most(runs, 'upload', 'peak_kib') / 1024:.0f}",
        ]
        if all("download" in r for r in runs):
            cells += [
                f"{median(runs, 'download', 'first'):.3f}",
                f"{size / MiB / median(runs, 'download', 'wall'):.0f}",
                f"{most(runs, 'download', 'peak_kib') / 1024:.0f}",
                f"{most(runs, 'download', 'disk_extra') / MiB:.1f}",
            ]
        else:
            cells += ["", "", "", ""]
        lines.append(_row(cells))
    if not all(r[p]["peak_reset"] for runs in results.values() for r in runs for p in r):
        lines += ["", "Note: VmHWM could not be reset; peaks include the imports."]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1GiB", help="size of the generated backup")
    parser.add_argument("--file", type=Path, help="use this backup instead of generating one")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", help="comma-separated contenders (default: all)")
    parser.add_argument(
        "--moto-python",
        type=Path,
        default=REPO / ".venv" / "bin" / "python",
        help="the Python that runs moto's server (default: the repo's .venv)",
    )
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    # For the children.
    parser.add_argument("--run-one", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=("upload", "download"), help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--options", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.run_one:
        print(json.dumps(run_one(args)))
        return 0

    contenders = chosen_contenders(args.only, CONTENDERS)
    args.file = backup_file(args.file, args.size)
    size = args.file.stat().st_size
    with args.file.open("rb") as f:  # into the page cache, for every contender alike
        while f.read(16 * MiB):
            pass

    sys.path.insert(0, str(REPO / "tests"))
    from servers import run_moto  # tests/ is not a package; it imports pytest

    results: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
    bench_data = args.file.parent  # same file system as the backup: hard links work
    with tempfile.TemporaryDirectory(prefix="ha-adapter-", dir=bench_data) as tmp:
        work = Path(tmp)
        s3 = None
        moto = run_moto(work / "moto-logs", python=str(args.moto_python))
        if "adapter-s3" in contenders:
            (work / "moto-logs").mkdir()
            s3 = moto.__enter__()
            s3.make_bucket("bench")
        try:
            for round_no in range(args.rounds):
                shift = round_no % len(contenders)
                for name in contenders[shift:] + contenders[:shift]:
                    if name == "adapter-s3":
                        assert s3 is not None
                        url, options = "s3://bench/ha", s3.options()
                    else:
                        url, options = f"file://{work / 'store'}", {}
                    log(f"round {round_no + 1}: {name} ...")
                    runs = {"upload": child(name, "upload", args, work, url, options)}
                    if name != "ha-local":
                        runs["download"] = child(name, "download", args, work, url, options)
                    shutil.rmtree(work / name)
                    results[name].append(runs)
        finally:
            if s3 is not None:
                moto.__exit__(None, None, None)
    table = report(results, size, args.rounds)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
