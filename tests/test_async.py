"""The async twins: off the event loop, cancellable, progress on the loop thread."""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from pathlib import Path

import pytest
from helpers import home_assistant_dir, temp_leftovers

import habackup


def make_big_config(root: Path, megabytes: int) -> None:
    """Half incompressible bytes, half JSON-like text, as in a real config dir."""
    home_assistant_dir(root)
    rnd = random.Random(7)
    (root / "media").mkdir()
    for i in range(megabytes // 4):
        (root / "media" / f"clip{i}.bin").write_bytes(rnd.randbytes(2 * 1024 * 1024))
    line = b'{"entity_id": "sensor.t", "state": "21.5", "attributes": {"unit": "C"}}\n'
    text = line * (1024 * 1024 // len(line))
    for i in range(megabytes // 4):
        (root / f"states{i}.json").write_bytes(text * 2)


async def wait_for_partial(directory: Path, task: asyncio.Task[object]) -> None:
    """Returns once the work's temp file or dir exists, i.e. while it is writing."""
    deadline = time.monotonic() + 10
    while not temp_leftovers(directory):
        assert not task.done(), "finished before its temp output was seen"
        assert time.monotonic() < deadline
        await asyncio.sleep(0.0005)


@pytest.fixture
def big_config(tmp_path: Path) -> Path:
    root = tmp_path / "config"
    make_big_config(root, 50)
    return root


async def test_event_loop_keeps_ticking_during_create(big_config: Path, tmp_path: Path) -> None:
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    backup = await habackup.async_create_archive(big_config, tmp_path, name="big")
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    assert backup.size > 20 * 1024 * 1024
    # A blocked loop would show one gap as long as the whole create; the real figures are in
    # benches/e2e.py, this bound only catches blocking.
    assert max(gaps) < 0.25, f"max gap {max(gaps):.3f}s during a {elapsed:.2f}s create"
    assert len(gaps) > elapsed / 0.25


async def test_async_create_and_extract(big_config: Path, tmp_path: Path) -> None:
    backup = await habackup.async_create_archive(big_config, tmp_path / "b.tar", name="a")
    assert habackup.read_backup(tmp_path / "b.tar").slug == backup.slug
    counts = await habackup.async_extract_archive(backup.path, tmp_path / "restored")
    assert counts["bytes"] == sum(p.stat().st_size for p in big_config.rglob("*") if p.is_file())


async def test_progress_reaches_the_loop_thread(big_config: Path, tmp_path: Path) -> None:
    seen: list[tuple[int, int, int]] = []
    loop_thread = threading.get_ident()

    def on_progress(done: int, total: int) -> None:
        seen.append((done, total, threading.get_ident()))

    await habackup.async_create_archive(
        big_config, tmp_path / "b.tar", name="p", on_progress=on_progress
    )
    await asyncio.sleep(0)  # callbacks scheduled with call_soon_threadsafe run on the next turn
    assert seen, "no progress reported"
    assert {thread for _, _, thread in seen} == {loop_thread}
    done, total, _ = seen[-1]
    assert done == total == sum(p.stat().st_size for p in big_config.rglob("*") if p.is_file())
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)


async def test_cancel_during_create_leaves_nothing(big_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    earlier = out / "earlier.tar"
    earlier.write_bytes(b"previous backup")
    task = asyncio.create_task(
        habackup.async_create_archive(big_config, out / "backup.tar", name="c")
    )
    await wait_for_partial(out, task)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(p.name for p in out.iterdir()) == ["earlier.tar"]
    assert earlier.read_bytes() == b"previous backup"


async def test_cancel_during_create_into_a_new_dir_takes_the_dir_away(
    big_config: Path, tmp_path: Path
) -> None:
    target = tmp_path / "new" / "dir"
    task = asyncio.create_task(habackup.async_create_archive(big_config, f"{target}/", name="c"))
    deadline = time.monotonic() + 10
    while not (target.is_dir() and temp_leftovers(target)):
        assert not task.done(), "finished before its temp output was seen"
        assert time.monotonic() < deadline
        await asyncio.sleep(0.0005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not (tmp_path / "new").exists()


async def test_cancel_during_extract_leaves_nothing(big_config: Path, tmp_path: Path) -> None:
    backup = await habackup.async_create_archive(big_config, tmp_path / "b.tar", name="e")
    dest = tmp_path / "restore_here"
    task = asyncio.create_task(habackup.async_extract_archive(backup.path, dest))
    await wait_for_partial(tmp_path, task)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.tar", "config"]


async def test_async_errors_keep_their_type(tmp_path: Path) -> None:
    with pytest.raises(habackup.ArchiveError) as info:
        await habackup.async_create_archive(tmp_path / "missing", tmp_path, name="x")
    assert "missing" in str(info.value)
    junk = tmp_path / "junk.tar"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(habackup.InvalidBackupError):
        await habackup.async_extract_archive(junk, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize(
    ("setting", "policy", "nice"),
    [
        (None, os.SCHED_BATCH, "caller's"),
        ("background", os.SCHED_BATCH, "caller's"),
        ("nonsense", os.SCHED_BATCH, "caller's"),
        ("idle", os.SCHED_IDLE, None),
        ("low", os.SCHED_OTHER, 19),
        ("normal", os.SCHED_OTHER, "caller's"),
    ],
)
def test_engine_threads_yield_as_configured(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    setting: str | None,
    policy: int,
    nice: int | str | None,
) -> None:
    """on_progress runs on the engine's own threads (sync API), so it can see their scheduling.
    Their nice value is the caller's (a suite run under `nice -n 19` too), or 19 for `low`."""
    caller = (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))
    if setting is None:
        monkeypatch.delenv("HABACKUP_PRIORITY", raising=False)
    else:
        monkeypatch.setenv("HABACKUP_PRIORITY", setting)
    config = home_assistant_dir(tmp_path / "config")
    (config / "a.yaml").write_text("a: 1\n")
    seen: list[tuple[int, int]] = []

    def on_progress(done: int, total: int) -> None:
        seen.append((os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)))

    habackup.create_archive(config, tmp_path / "b.tar", name="p", on_progress=on_progress)
    assert seen
    assert {p for p, _ in seen} == {policy}
    if nice is not None:
        assert {n for _, n in seen} == {caller[1] if nice == "caller's" else nice}
    # The caller's own thread is never changed.
    assert (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)) == caller
