"""How long the adapter waits on a sync agent, and how often it retries an upload.

Home Assistant sets no limit of its own on an agent: a sync agent that hangs would hang its
backup (the manager waits for every agent's upload) or its backup list. Transfers are limited by
how long no byte moves rather than by their length, so a large backup on a slow link is not cut
short while a hung one still ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType

from ._hass import HassBackupAgentError


@dataclass(frozen=True, kw_only=True)
class Limits:
    """The adapter's limits on its sync agent, in seconds (``None``: no limit).

    ``call``: a call that moves no backup bytes: a listing, a lookup, a delete, opening a
    download. ``stall``: an upload or download in which no byte moved for this long (time spent
    waiting on Home Assistant's own stream does not count); it applies where the adapter can see
    bytes move: streamed transfers, the spooling of an upload, and a Python sync agent's
    upload if it reports progress (``accepts_upload_progress``). ``transfer``: a whole upload
    or download (12 hours, as Home Assistant's own cloud agent allows an upload).

    ``upload_retries``: how often an upload that failed as a whole because the store was
    unreachable is started again from a stream Home Assistant opens anew (streamed uploads
    only: a sync agent given a file retries on its own), after ``retry_delay`` seconds, tripled
    each time.
    """

    call: float | None = 120.0
    stall: float | None = 300.0
    transfer: float | None = 12 * 3600.0
    upload_retries: int = 3
    retry_delay: float = 10.0

    def __post_init__(self) -> None:
        for name in ("call", "stall", "transfer"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"Limits.{name} must be positive seconds or None, not {value!r}")
        if self.upload_retries < 0:
            raise ValueError(f"Limits.upload_retries must be >= 0, not {self.upload_retries!r}")
        if not self.retry_delay >= 0:
            raise ValueError(f"Limits.retry_delay must be >= 0, not {self.retry_delay!r}")

    def retry_wait(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (from 1)."""
        return float(self.retry_delay * 3 ** (retry - 1))


class CallLimit:
    """``async with CallLimit(120.0, "store: list timed out after 120 s")``: Home Assistant's
    ``BackupAgentError`` with that message when the body takes longer than ``seconds``."""

    def __init__(self, seconds: float | None, message: str) -> None:
        self._timeout = asyncio.timeout(None)
        self._seconds = seconds
        self._message = message

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()
        if self._seconds is not None:
            self._timeout.reschedule(asyncio.get_running_loop().time() + self._seconds)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._timeout.__aexit__(exc_type, exc, tb)
        except TimeoutError as err:
            if not self._timeout.expired():
                raise  # the sync agent's own
            raise HassBackupAgentError(self._message) from err


def call_limit(limits: Limits, agent: str, action: str) -> CallLimit:
    """The limit on a call that moves no backup bytes (``limits.call``)."""
    return CallLimit(limits.call, f"{agent}: {action} timed out after {limits.call} s")


class Watchdog:
    """Ends a transfer with Home Assistant's ``BackupAgentError`` when no byte moved for
    ``stall`` seconds or the whole took longer than ``transfer``.

    The transfer calls ``moved()`` whenever bytes move, and brackets its waits on Home
    Assistant's own stream with ``pause()``/``moved()``: a slow reader or writer on Home
    Assistant's side (encryption on the fly, a Supervisor download) is not the sync agent
    stalling. A phase whose bytes cannot be seen (a sync agent uploading a file without
    reporting progress) is paused too: only ``transfer`` limits it. Used as ``async with``,
    around the transfer, on the task running it.
    """

    def __init__(self, limits: Limits, what: str) -> None:
        self._stall = limits.stall
        self._transfer = limits.transfer
        self._what = what
        self._timeout = asyncio.timeout(None)
        self._loop = asyncio.get_running_loop()
        self._end: float | None = None
        self._paused = False
        self._active = False

    async def __aenter__(self) -> Watchdog:
        await self._timeout.__aenter__()
        self._active = True
        if self._transfer is not None:
            self._end = self._loop.time() + self._transfer
        self._arm()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # A progress report still on its way to the loop must not touch a finished timeout.
        self._active = False
        try:
            await self._timeout.__aexit__(exc_type, exc, tb)
        except TimeoutError as err:
            if not self._timeout.expired():
                raise  # the sync agent's own
            if self._end is not None and self._loop.time() >= self._end:
                reason = f"not done after {self._transfer} s"
            else:
                reason = f"no data moved for {self._stall} s"
            raise HassBackupAgentError(f"{self._what} stalled: {reason}") from err

    def moved(self) -> None:
        """Bytes moved (or a wait on Home Assistant ended): the stall clock starts again."""
        self._paused = False
        self._arm()

    def pause(self) -> None:
        """Until the next ``moved()``, the stall clock stands still."""
        self._paused = True
        self._arm()

    def _arm(self) -> None:
        if not self._active or self._timeout.expired():
            return
        deadlines = [] if self._end is None else [self._end]
        if self._stall is not None and not self._paused:
            deadlines.append(self._loop.time() + self._stall)
        self._timeout.reschedule(min(deadlines) if deadlines else None)


class WatchedStream:
    """Home Assistant's stream, with the waits on it paused on ``watchdog``'s stall clock."""

    def __init__(self, stream: AsyncIterator[bytes], watchdog: Watchdog) -> None:
        self._stream = stream
        self._watchdog = watchdog

    def __aiter__(self) -> WatchedStream:
        return self

    async def __anext__(self) -> bytes:
        self._watchdog.pause()
        try:
            return await anext(self._stream)
        finally:
            self._watchdog.moved()
