"""Awaiting engine work so that cancellation waits for its clean-up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from ._core import CancelToken

_T = TypeVar("_T")


async def await_cleanly(future: Awaitable[_T], token: CancelToken) -> _T:
    """Await Rust work; on cancellation signal ``token`` and wait until the work has wound
    down (temp files removed, post hooks run) before the CancelledError goes on."""
    task = asyncio.ensure_future(future)
    try:
        return await settled(task)
    except asyncio.CancelledError:
        if task.done():
            raise
        token.cancel()
        # The work notices the token between chunks; its result no longer matters.
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()
        raise


async def settled(future: asyncio.Future[_T]) -> _T:
    """``await future``, except that a cancelled caller leaves ``future`` running (as
    ``asyncio.shield`` does, without Python 3.14's shield reporting the future's later
    exception to the loop's exception handler as unhandled: whoever waits on it again gets it).
    """
    await asyncio.wait([future])
    return future.result()
