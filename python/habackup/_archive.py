"""The archiver's public functions: thin typed wrappers over the Rust engine."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from . import _core
from ._cancel import await_cleanly
from ._core import Backup
from .models import VerifyReport

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
    password: str | None = None,
    securetar_version: int = 3,
) -> Backup:
    """Back up ``config_dir`` to ``path`` (a file, or a directory that gets ``<slug>.tar``).

    Blocks the calling thread (with the GIL released); use :func:`async_create_archive` on an
    event loop. ``on_progress(bytes_done, bytes_total)`` is called from a worker thread. With a
    ``password`` the inner archive is encrypted with securetar ``securetar_version`` 3 (Home
    Assistant's default since 2025.1) or 2.
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
        password=password,
        securetar_version=securetar_version,
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
    password: str | None = None,
    securetar_version: int = 3,
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
        password=password,
        securetar_version=securetar_version,
        cancel=token,
    )
    return await await_cleanly(future, token)


def read_backup(path: StrPath) -> Backup:
    """Read a backup's ``backup.json`` (Home Assistant, Supervisor and old layouts)."""
    return _core.read_backup(path)


def extract_archive(
    path: StrPath, dest: StrPath, *, password: str | None = None
) -> dict[str, int]:
    """Extract the backed-up config dir into ``dest`` (absent or empty), atomically.

    Returns counts of the files, directories, symlinks and bytes written. Symlinks are
    recreated as links wherever they point (as Home Assistant's restore does), but nothing is
    ever written through one: a member whose path runs through a symlink of the archive is
    refused, like absolute paths, ``..``, devices, FIFOs and hard links to anything but a file
    extracted before them (InvalidBackupError naming the member). A protected backup needs its
    ``password``; a wrong or missing one raises IncorrectPasswordError and writes nothing. A full
    destination raises ArchiveError naming the file that did not fit.
    """
    return _core.extract_archive(path, dest, password=password)


async def async_extract_archive(
    path: StrPath, dest: StrPath, *, password: str | None = None
) -> dict[str, int]:
    """Extract without blocking the event loop; see :func:`extract_archive`."""
    token = _core.CancelToken()
    future = _core.extract_archive_async(path, dest, password=password, cancel=token)
    return await await_cleanly(future, token)


def validate_password(path: StrPath, password: str) -> bool:
    """Whether ``password`` opens the backup; checks the key only, decrypts nothing else."""
    return _core.validate_password(path, password)


async def async_validate_password(path: StrPath, password: str) -> bool:
    """:func:`validate_password` off the event loop (Argon2id takes tens of milliseconds)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, _core.validate_password, path, password)


def verify_archive(path: StrPath, *, password: str | None = None) -> VerifyReport:
    """Decode the whole backup and check it as a restore would, writing nothing.

    Checks the MACs, FINAL tag, gzip CRC and size, the tar structure, and every member against
    the very rules :func:`extract_archive` applies (paths, links, member types): a backup that
    verifies is one that extracts. Returns ``members``, ``bytes``, ``protected`` (a bool),
    ``securetar_version`` (None when not protected) and ``warnings`` (symlinks that point
    outside the config dir: they are restored as links, but what they point to is not in the
    backup); raises InvalidBackupError saying what is wrong.
    """
    return _core.verify_archive(path, password=password)


async def async_verify_archive(path: StrPath, *, password: str | None = None) -> VerifyReport:
    """:func:`verify_archive` without blocking the event loop."""
    token = _core.CancelToken()
    future = _core.verify_archive_async(path, password=password, cancel=token)
    return await await_cleanly(future, token)


