"""Streams in and out of the built-in agent, against every real store: an upload fed by an async
iterator (Home Assistant's ``open_stream``) and a download read as verified chunks, with no temp
file either way."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from stores import MIB, Backend

import habackup


def metadata_for(path: Path) -> habackup.BackupSyncMetadata:
    info = habackup.read_backup(path)
    return {
        "date": info.date,
        "slug": info.slug,
        "size": path.stat().st_size,
        "name": info.name,
        "homeassistant": info.homeassistant_version or "",
        "protected": info.protected,
        "sha256": "",
        "extra": {"instance_id": "x", "with_automatic_settings": True},
    }


async def chunks_of(
    path: Path, size: int = 256 * 1024, fail_after: int | None = None
) -> AsyncIterator[bytes]:
    data = await asyncio.to_thread(path.read_bytes)
    for offset in range(0, len(data), size):
        if fail_after is not None and offset >= fail_after:
            raise OSError("the source went away")
        await asyncio.sleep(0)
        yield data[offset : offset + size]


async def test_stream_upload_round_trips(backend: Backend, big_backup: Path) -> None:
    agent = backend.agent()
    progress: list[tuple[int, int]] = []
    await agent.async_upload_stream(
        stream=chunks_of(big_backup),
        metadata=metadata_for(big_backup),
        on_progress=lambda d, t: progress.append((d, t)),
    )
    [listed] = await agent.async_list_backups()
    digest = hashlib.sha256(big_backup.read_bytes()).hexdigest()
    assert (listed.size, listed.sha256) == (big_backup.stat().st_size, digest)
    assert listed.extra_metadata["with_automatic_settings"] is True
    assert progress[-1] == (listed.size, listed.size)
    # Progress counts acknowledged parts as they land, not only the end.
    assert len({done for done, _ in progress}) > 3
    stream = await agent.async_open_download(id=listed.slug)
    assert stream.size == listed.size
    got = hashlib.sha256()
    async for chunk in stream:
        got.update(chunk)
    assert got.hexdigest() == digest


@pytest.mark.parametrize("fault", ["short", "long", "raises"])
async def test_a_bad_stream_stores_nothing(backend: Backend, big_backup: Path, fault: str) -> None:
    agent = backend.agent()
    metadata = metadata_for(big_backup)
    if fault == "short":
        metadata["size"] += 1
    elif fault == "long":
        metadata["size"] -= 1
    stream = chunks_of(big_backup, fail_after=20 * MIB if fault == "raises" else None)
    with pytest.raises((habackup.BackupAgentError, OSError)) as caught:
        await agent.async_upload_stream(stream=stream, metadata=metadata)
    if fault == "raises":
        assert isinstance(caught.value, OSError)
        assert "went away" in str(caught.value)
    else:
        assert "announced" in str(caught.value)
    assert await agent.async_list_backups() == []
    assert not {n for n in backend.names() if n.endswith(".metadata.json")}
    assert backend.pending_uploads() == 0


async def test_a_changed_object_fails_before_the_stream_ends(
    backend: Backend, big_backup: Path
) -> None:
    agent = backend.agent()
    await agent.async_upload_backup(path=big_backup)
    slug = habackup.read_backup(big_backup).slug
    data = bytearray(backend.get(f"{slug}.tar"))
    data[len(data) // 2] ^= 0xFF
    backend.put(f"{slug}.tar", bytes(data))
    stream = await agent.async_open_download(id=slug)
    # The consumer (Home Assistant's download view) hears of it before the end, so it never
    # takes the altered copy for the backup.
    with pytest.raises(habackup.BackupAgentError, match="sha256"):
        async for _chunk in stream:
            pass


async def test_stopping_a_download_early_stops_the_transfer(
    backend: Backend, big_backup: Path
) -> None:
    agent = backend.agent()
    await agent.async_upload_backup(path=big_backup)
    slug = habackup.read_backup(big_backup).slug
    stream = await agent.async_open_download(id=slug)
    first = await stream.__anext__()
    assert first[:10] == big_backup.read_bytes()[:10]
    await stream.aclose()
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def test_cancelling_a_stream_upload_leaves_nothing(
    backend: Backend, big_backup: Path
) -> None:
    agent = backend.agent()

    async def slow() -> AsyncIterator[bytes]:
        async for chunk in chunks_of(big_backup):
            await asyncio.sleep(0.01)
            yield chunk

    task = asyncio.create_task(
        agent.async_upload_stream(stream=slow(), metadata=metadata_for(big_backup))
    )
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await agent.async_list_backups() == []
    assert backend.pending_uploads() == 0
