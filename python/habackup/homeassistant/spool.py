"""Transfers through a temp file, for sync agents that move files (a plain Python
``BackupSyncAgent``, per the platform API): Home Assistant's stream is spooled to a file the
agent uploads, and a download is read back from the file the agent wrote.

Temp files live in Home Assistant's ``tmp_backups`` folder unless ``temp_dir`` says otherwise:
it is on the config disk (``/tmp`` may be RAM) and its ``*.tar`` files are left out of backups.
Every write, read and hash runs in Home Assistant's executor, never on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from .._cancel import settled
from .._core import BackupSyncAgent
from ._hass import AgentBackup, HassBackupAgentError, HomeAssistant
from .errors import hass_errors, temp_io
from .limits import Limits, Watchdog, WatchedStream
from .metadata import sync_metadata
from .streams import OnProgress, OpenStream, close_stream

if TYPE_CHECKING:
    from _hashlib import HASH

_T = TypeVar("_T")

READ_CHUNK_SIZE = 1024 * 1024
"""Bytes per chunk a download yields (one executor round trip each)."""
WRITE_BATCH_SIZE = 1024 * 1024
"""Upload chunks are gathered up to this size before one executor job writes them."""


class Spooler:
    """Uploads and downloads of ``sync_agent`` through temp files in ``temp_dir``."""

    def __init__(
        self, hass: HomeAssistant, sync_agent: BackupSyncAgent, temp_dir: Path, limits: Limits
    ) -> None:
        self.hass = hass
        self.sync_agent = sync_agent
        self.temp_dir = temp_dir
        self.limits = limits

    async def upload(
        self, open_stream: OpenStream, backup: AgentBackup, on_progress: OnProgress | None
    ) -> None:
        """Spool the stream to a temp file, then let the sync agent upload that file."""
        reports_progress = bool(getattr(self.sync_agent, "accepts_upload_progress", False))
        path = await self._io("upload", self._new_temp_path())
        try:
            async with Watchdog(self.limits, f"{self.sync_agent.name}: upload") as watchdog:
                stream = await open_stream()
                try:
                    spool_progress = None if reports_progress else on_progress
                    size, sha256 = await self._spool(
                        WatchedStream(stream, watchdog), path, spool_progress, watchdog
                    )
                finally:
                    # Home Assistant 2026.11 closes the streams it handed out; older ones leave
                    # a half-read stream (a failed spool) to the garbage collector.
                    await close_stream(stream)
                if size != backup.size:
                    raise HassBackupAgentError(
                        f"Backup {backup.backup_id}: Home Assistant announced {backup.size} "
                        f"bytes but sent {size}; not uploaded to {self.sync_agent.name}"
                    )
                upload_kwargs: dict[str, Any] = {}
                if reports_progress:
                    report = on_progress

                    def agent_progress(done: int, total: int) -> None:
                        watchdog.moved()
                        if report is not None:
                            report(bytes_uploaded=done)

                    upload_kwargs["on_progress"] = agent_progress
                    watchdog.moved()
                else:
                    # Its bytes cannot be seen: only the transfer limit applies.
                    watchdog.pause()
                await self.sync_agent.async_upload_backup(
                    path=path, metadata=sync_metadata(backup, size, sha256), **upload_kwargs
                )
        finally:
            await self._off_loop_cleanup(path.unlink, True)

    async def open_download(self, sync_id: str) -> AsyncIterator[bytes]:
        """Download into a temp file, then stream it.

        The temp file is unlinked as soon as it is open, so nothing is left behind even when the
        caller never finishes (or never starts) reading.
        """
        path = await self._io("download", self._new_temp_path())
        try:
            async with Watchdog(self.limits, f"{self.sync_agent.name}: download") as watchdog:
                # A sync agent writing a file shows no progress: only the transfer limit applies.
                watchdog.pause()
                await self.sync_agent.async_download_backup(id=sync_id, path=path)
            opening = self.hass.async_add_executor_job(_open_then_unlink, path)
            file = await self._io("download", opening)
        except BaseException:
            await self._off_loop_cleanup(path.unlink, True)
            raise
        return self._read_chunks(file)

    async def _new_temp_path(self) -> Path:
        await self.hass.async_add_executor_job(_make_dir, self.temp_dir)
        # A fresh name in the folder itself: Home Assistant's excludes cover tmp_backups/*.tar.
        return self.temp_dir / f"habackup-{secrets.token_hex(8)}.tar"

    async def _io(self, action: str, io: Awaitable[_T]) -> _T:
        return await temp_io(self.sync_agent.name, action, self.temp_dir, io)

    async def _spool(
        self,
        stream: AsyncIterator[bytes],
        path: Path,
        on_progress: OnProgress | None,
        watchdog: Watchdog,
    ) -> tuple[int, str]:
        """Write ``stream`` to ``path`` off the loop; return its size and sha256."""
        run = self.hass.async_add_executor_job
        file = await self._io("upload", run(_create_file, path))
        digest = hashlib.sha256()
        size = 0
        # One write job in flight while the loop gathers the next batch: reading the stream and
        # writing the disk overlap, and memory stays near two batches. Writes are awaited with
        # ``settled``: a cancelled upload must not mark a write done while it still runs.
        writing: asyncio.Future[None] | None = None
        try:
            batch: list[bytes] = []
            batched = 0
            async for chunk in stream:  # Home Assistant's errors pass as they are
                batch.append(chunk)
                batched += len(chunk)
                if batched >= WRITE_BATCH_SIZE:
                    if writing is not None:
                        await self._io("upload", settled(writing))
                        watchdog.moved()
                        if on_progress is not None:
                            on_progress(bytes_uploaded=size)
                    writing = run(_write_batch, file, digest, batch)
                    size += batched
                    batch, batched = [], 0
            if writing is not None:
                await self._io("upload", settled(writing))
            writing = run(_write_batch, file, digest, batch)
            await self._io("upload", settled(writing))
            size += batched
            # Data on the disk before the sync agent reads the name: a full disk shows here.
            await self._io("upload", run(_flush, file))
        finally:
            if writing is not None:
                # Never close the file under a running write (cancellation, a failed stream);
                # a write's own error is already on its way out, or is moot next to this one.
                with suppress(BaseException):
                    await settled(writing)
            await self._off_loop_cleanup(file.close)
        return size, digest.hexdigest()

    async def _read_chunks(self, file: IO[bytes]) -> AsyncIterator[bytes]:
        read = self.hass.async_add_executor_job
        try:
            with hass_errors(self.sync_agent, "download", self.temp_dir):
                while chunk := await self._io("download", read(file.read, READ_CHUNK_SIZE)):
                    yield chunk
        finally:
            await self._off_loop_cleanup(file.close)

    async def _off_loop_cleanup(self, func: Callable[..., object], *args: Any) -> None:
        # Settled: a cancelled transfer must still close and remove its temp file.
        await settled(self.hass.async_add_executor_job(func, *args))


# The blocking halves, run in Home Assistant's executor.


def _make_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def _create_file(path: Path) -> IO[bytes]:
    return path.open("xb")


def _write_batch(file: IO[bytes], digest: HASH, batch: list[bytes]) -> None:
    for chunk in batch:
        file.write(chunk)
        digest.update(chunk)  # hashlib releases the GIL for large buffers


def _flush(file: IO[bytes]) -> None:
    file.flush()


def _open_then_unlink(path: Path) -> IO[bytes]:
    file = path.open("rb")
    # The open file keeps the data; the name goes now so nothing can leak it.
    path.unlink()
    return file
