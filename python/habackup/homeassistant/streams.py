"""Transfers without a temp copy, for sync agents that take and give streams (the built-in
``ObjectStoreBackupSyncAgent``, or any agent with ``async_upload_stream`` and
``async_open_download``).

An upload hands Home Assistant's ``open_stream()`` to the agent, which pulls its chunks on the
event loop and sends them on as they come (the object store: multipart parts, hashed on the
way, memory near ``part_size * (max_concurrency + 1)``); the length is checked against
``backup.size`` before anything is stored. A download yields the agent's verified chunks as
they arrive, and stops the transfer when the consumer stops reading.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol, cast

from .._cancel import settled
from .._core import BackupSyncAgent
from ..errors import BackupAgentUnreachableError
from ..models import BackupSyncMetadata
from ._hass import AgentBackup
from .errors import hass_errors
from .limits import CallLimit, Limits, Watchdog, WatchedStream, call_limit
from .metadata import sync_metadata

_LOGGER = logging.getLogger(__package__)

OpenStream = Callable[[], Coroutine[Any, Any, AsyncIterator[bytes]]]
"""Home Assistant's ``open_stream``: each call opens the backup's bytes from the start."""


class OnProgress(Protocol):
    """Home Assistant's ``on_progress`` for uploads (2026.4 and later)."""

    def __call__(self, *, bytes_uploaded: int, **kwargs: Any) -> None: ...


class _Download(Protocol):
    """What ``async_open_download`` returns: an async iterator of chunks that can be closed."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...
    def __anext__(self) -> Coroutine[Any, Any, bytes]: ...
    def aclose(self) -> Coroutine[Any, Any, None]: ...


class _UploadsStreams(Protocol):
    name: str

    async def async_upload_stream(
        self,
        *,
        stream: AsyncIterable[bytes],
        metadata: BackupSyncMetadata,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None: ...


class _DownloadsStreams(Protocol):
    async def async_open_download(self, *, id: str) -> _Download: ...


def uploads_streams(sync_agent: BackupSyncAgent) -> bool:
    """Whether ``sync_agent`` uploads from a stream (else it is given a file)."""
    return callable(getattr(sync_agent, "async_upload_stream", None))


def downloads_streams(sync_agent: BackupSyncAgent) -> bool:
    """Whether ``sync_agent`` downloads as a stream (else it writes a file)."""
    return callable(getattr(sync_agent, "async_open_download", None))


class Streamer:
    """Streamed uploads and downloads of ``sync_agent``, within ``limits``."""

    def __init__(self, sync_agent: BackupSyncAgent, limits: Limits, temp_dir: Path) -> None:
        self.sync_agent = sync_agent
        self.limits = limits
        self.temp_dir = temp_dir  # only for error messages: nothing is written there

    async def upload(
        self, open_stream: OpenStream, backup: AgentBackup, on_progress: OnProgress | None
    ) -> None:
        """Stream the backup to the sync agent; start again from a new stream while the store
        is unreachable (``limits.upload_retries`` times, ``limits.retry_delay`` apart, tripled
        each time)."""
        agent = cast(_UploadsStreams, self.sync_agent)
        # The agent checks the length: a stream of another size stores nothing. The sha256 is
        # not known yet; the agent computes it on the way.
        metadata = sync_metadata(backup, backup.size, "")
        reported = 0

        def progress(done: int, total: int) -> None:
            # Bytes the store acknowledged. A retry starts again from 0: Home Assistant's
            # progress only moves on once it passes what an earlier attempt reached.
            nonlocal reported
            watchdog.moved()
            if on_progress is not None and done > reported:
                reported = done
                on_progress(bytes_uploaded=done)

        retry = 0
        async with Watchdog(self.limits, f"{agent.name}: upload") as watchdog:
            while True:
                watchdog.pause()  # opening is Home Assistant's (a Supervisor download, ...)
                stream = await open_stream()
                watchdog.moved()
                try:
                    await agent.async_upload_stream(
                        stream=WatchedStream(stream, watchdog),
                        metadata=metadata,
                        on_progress=progress,
                    )
                    return
                except BackupAgentUnreachableError as err:
                    if retry >= self.limits.upload_retries:
                        raise
                    retry += 1
                    wait = self.limits.retry_wait(retry)
                    _LOGGER.warning(
                        "Upload of backup %s to %s failed (%s); retrying in %g s (%d of %d)",
                        backup.backup_id,
                        agent.name,
                        err,
                        wait,
                        retry,
                        self.limits.upload_retries,
                    )
                finally:
                    # Every stream opened is closed (Home Assistant 2026.11 does it too; older
                    # releases leave that to the agent).
                    await close_stream(stream)
                watchdog.pause()
                await asyncio.sleep(wait)

    async def open_download(self, sync_id: str) -> AsyncIterator[bytes]:
        """The backup's verified chunks as they arrive; nothing is read ahead of the
        consumer, and closing the iterator (or dropping it) stops the transfer."""
        agent = cast(_DownloadsStreams, self.sync_agent)
        async with call_limit(self.limits, self.sync_agent.name, "download"):
            download = await agent.async_open_download(id=sync_id)
        return self._relay(download)

    async def _relay(self, download: _Download) -> AsyncIterator[bytes]:
        name = self.sync_agent.name
        loop = asyncio.get_running_loop()
        stall, transfer = self.limits.stall, self.limits.transfer
        end = None if transfer is None else loop.time() + transfer
        stalled = f"{name}: download stalled: no data moved for {stall} s"
        overdue = f"{name}: download stalled: not done after {transfer} s"
        try:
            with hass_errors(self.sync_agent, "download", self.temp_dir):
                while True:
                    # Each chunk within the stall limit; all of them within the transfer limit,
                    # a wall-clock one (the consumer's time between chunks counts there only).
                    limit, message = stall, stalled
                    if end is not None and (limit is None or end - loop.time() < limit):
                        limit, message = max(end - loop.time(), 0.0), overdue
                    try:
                        async with CallLimit(limit, message):
                            chunk = await anext(download)
                    except StopAsyncIteration:
                        return
                    yield chunk
        finally:
            # Settled: a consumer that stops early (or is cancelled) must still stop the
            # transfer; an error while stopping it is not the consumer's.
            try:
                await settled(asyncio.ensure_future(download.aclose()))
            except Exception:
                _LOGGER.debug("Error closing the download from %s", name, exc_info=True)


async def close_stream(stream: AsyncIterator[bytes]) -> None:
    """Close a stream of Home Assistant's if it can be closed; its errors are not ours."""
    if (aclose := getattr(stream, "aclose", None)) is None:
        return
    try:
        await aclose()
    except Exception:
        _LOGGER.debug("Error closing %r", stream, exc_info=True)
