"""The archiver's public functions: thin typed wrappers over the Rust engine."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from . import _core
from ._core import Backup

StrPath = str | os.PathLike[str]
ProgressCallback = Callable[[int, int], None]

DEFAULT_EXCLUDES: tuple[str, ...] = _core.DEFAULT_EXCLUDES
"""Home Assistant's exclude patterns, matched against paths inside the config dir."""

_T = TypeVar("_T")


def create_archive(
    config_dir: StrPath,
    path: StrPath,
    *,
    name: str,
    include_database: bool = True,
    excludes: Sequence[str] = DEFAULT_EXCLUDES,
    ha_version: str | None = None,
    extra: Mapping[str, Any] | None = None,
    compresslevel: int = 6,
    threads: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> Backup:
    """Back up ``config_dir`` to ``path`` (a file, or a directory that gets ``<slug>.tar``).

    Blocks the calling thread (with the GIL released); use :func:`async_create_archive` on an
    event loop. ``on_progress(bytes_done, bytes_total)`` is called from a worker thread.
    """
    return _core.create_archive(
        config_dir,
        path,
        name=name,
        include_database=include_database,
        excludes=list(excludes),
        ha_version=ha_version,
        extra=dict(extra) if extra is not None else None,
        compresslevel=compresslevel,
        threads=threads,
        on_progress=on_progress,
    )


async def async_create_archive(
    config_dir: StrPath,
    path: StrPath,
    *,
    name: str,
    include_database: bool = True,
    excludes: Sequence[str] = DEFAULT_EXCLUDES,
    ha_version: str | None = None,
    extra: Mapping[str, Any] | None = None,
    compresslevel: int = 6,
    threads: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> Backup:
    """Back up ``config_dir`` without blocking the event loop.

    The work runs on tokio's blocking pool; ``on_progress`` is called on the loop's thread.
    Cancelling the await stops the work and returns only once the partial file is gone.
    """
    token = _core.CancelToken()
    future = _core.create_archive_async(
        config_dir,
        path,
        name=name,
        include_database=include_database,
        excludes=list(excludes),
        ha_version=ha_version,
        extra=dict(extra) if extra is not None else None,
        compresslevel=compresslevel,
        threads=threads,
        on_progress=on_progress,
        cancel=token,
    )
    return await _await_cleanly(future, token)


def read_backup(path: StrPath) -> Backup:
    """Read a backup's ``backup.json`` (Home Assistant, Supervisor and old layouts)."""
    return _core.read_backup(path)


def extract_archive(path: StrPath, dest: StrPath) -> dict[str, int]:
    """Extract the backed-up config dir into ``dest`` (absent or empty), atomically.

    Returns counts of the files, directories, symlinks and bytes written.
    """
    return _core.extract_archive(path, dest)


async def async_extract_archive(path: StrPath, dest: StrPath) -> dict[str, int]:
    """Extract without blocking the event loop; see :func:`extract_archive`."""
    token = _core.CancelToken()
    return await _await_cleanly(_core.extract_archive_async(path, dest, cancel=token), token)


async def _await_cleanly(future: Awaitable[_T], token: _core.CancelToken) -> _T:
    """Await Rust work; on cancellation stop it and wait until it has cleaned up."""
    task = asyncio.ensure_future(future)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        token.cancel()
        # The work notices the token between chunks; its result no longer matters.
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()
        raise
