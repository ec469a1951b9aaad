"""The backup platform: hook awaits per second from Rust, and create + upload to three Python
agents against the same flow written in plain Python asyncio (gather + tarfile in an executor).

    python benches/manager_flow.py --data bench-data/200MiB [--platforms 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e import create_with_tarfile

import habackup


async def _noop(hass: Any) -> None:
    return None


def hook_platform() -> types.SimpleNamespace:
    return types.SimpleNamespace(async_pre_backup=_noop, async_post_backup=_noop)


class CopyAgent(habackup.BackupSyncAgent):
    """Ships a backup to a local folder, off the loop, as a simple real agent would."""

    def __init__(self, name: str, remote: Path) -> None:
        super().__init__(name)
        self.remote = remote

    async def async_upload_backup(self, *, path: Path, metadata: Any, **kwargs: Any) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, shutil.copyfile, path, self.remote / path.name)


def agent_platform(remote: Path) -> types.SimpleNamespace:
    async def async_get_backup_sync_agents(hass: Any) -> list[habackup.BackupSyncAgent]:
        return [CopyAgent(f"a{i}", remote) for i in range(3)]

    return types.SimpleNamespace(
        async_pre_backup=_noop,
        async_post_backup=_noop,
        async_get_backup_sync_agents=async_get_backup_sync_agents,
    )


async def awaits_per_second(config: Path, work: Path, platforms: int) -> tuple[float, float]:
    async def timed(count: int) -> float:
        manager = habackup.BackupManager(None, config_dir=config, backup_dir=work / f"b{count}")
        for i in range(count):
            await manager.async_add_platform(f"p{i}", hook_platform())
        started = time.perf_counter()
        await manager.async_create_backup(name="hooks")
        return time.perf_counter() - started

    await timed(0)  # warm-up
    base = min([await timed(0) for _ in range(3)])
    loaded = min([await timed(platforms) for _ in range(3)])
    return 2 * platforms / max(loaded - base, 1e-9), loaded - base


async def habackup_flow(data: Path, work: Path) -> float:
    remote = work / "remote_h"
    remote.mkdir()
    manager = habackup.BackupManager(None, config_dir=data, backup_dir=work / "local_h")
    await manager.async_add_platform("bench", agent_platform(remote))
    started = time.perf_counter()
    backup = await manager.async_create_backup(name="e2e")
    elapsed = time.perf_counter() - started
    assert sorted(backup.synced_agents) == ["bench.a0", "bench.a1", "bench.a2"], backup
    return elapsed


async def python_flow(data: Path, work: Path) -> float:
    remote = work / "remote_p"
    remote.mkdir()
    local = work / "local_p"
    local.mkdir()
    agents = [CopyAgent(f"a{i}", remote) for i in range(3)]
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    await asyncio.gather(_noop(None))
    out = local / "backup.tar"
    await loop.run_in_executor(None, create_with_tarfile, data, out)
    await asyncio.gather(_noop(None))
    await asyncio.gather(*(a.async_upload_backup(path=out, metadata={}) for a in agents))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--platforms", type=int, default=1000)
    args = parser.parse_args()
    print(f"`python benches/manager_flow.py --data {args.data} --platforms {args.platforms}`\n")
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        work = Path(tmp)
        tiny = work / "tiny"
        tiny.mkdir()
        (tiny / ".HA_VERSION").write_text("2025.4.4\n")
        (tiny / "configuration.yaml").write_text("homeassistant:\n")
        rate, spent = asyncio.run(awaits_per_second(tiny, work, args.platforms))
        print(
            f"hook awaits from Rust: {rate:,.0f}/s ({2 * args.platforms} awaits in {spent:.3f} s)"
        )
        ours = asyncio.run(habackup_flow(args.data, work))
        theirs = asyncio.run(python_flow(args.data, work))
        print("| flow: hooks, archive, upload to 3 Python agents | wall s | speedup |")
        print("| --- | --- | --- |")
        print(f"| habackup BackupManager | {ours:.2f} | {theirs / ours:.2f}x |")
        print(f"| plain asyncio: gather + tarfile in executor | {theirs:.2f} | 1.00x |")


if __name__ == "__main__":
    main()
