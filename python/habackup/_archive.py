"""The archiver's public functions: thin typed wrappers over the Rust engine."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any, Unpack

from . import _core
from ._cancel import await_cleanly
from ._core import Backup
from .errors import BackupError
from .models import CreateOptions, VerifyReport

StrPath = str | os.PathLike[str]

DEFAULT_EXCLUDES: tuple[str, ...] = _core.DEFAULT_EXCLUDES
"""Home Assistant's exclude patterns, matched against paths inside the config dir."""


def create_archive(config_dir: StrPath, path: StrPath, **options: Unpack[CreateOptions]) -> Backup:
    """Back up ``config_dir`` to ``path`` and return the new backup.

    ``path`` is an existing directory, or a ``str`` ending in ``/`` (a directory created for it,
    and removed again if the backup fails): the backup is ``<dir>/<slug>.tar``. Any other path
    is the file to write; it must not exist (a backup never replaces a file) and its directory
    must. ``options`` are :class:`~habackup.CreateOptions` (``name`` is required; ``excludes``,
    ``include_database``, ``ha_version``, ``password``, ``on_progress`` and more). Blocks the
    calling thread (with the GIL released; Ctrl-C cancels cleanly); use
    :func:`async_create_archive` on an event loop.
    """
    return _core.create_archive(config_dir, path, options)


async def async_create_archive(
    config_dir: StrPath, path: StrPath, **options: Unpack[CreateOptions]
) -> Backup:
    """Back up ``config_dir`` without blocking the event loop; see :func:`create_archive`.

    The work runs on tokio's blocking pool; ``on_progress`` is called on the loop's thread.
    Cancelling the await stops the work and returns only once the partial file is gone.
    """
    token = _core.CancelToken()
    future = _core.create_archive_async(config_dir, path, options, token)
    return await await_cleanly(future, token)


def read_backup(path: StrPath) -> Backup:
    """Read a backup's ``backup.json`` (Home Assistant, Supervisor and old layouts)."""
    return _core.read_backup(path)


def list_backups(directory: StrPath) -> tuple[list[Backup], list[BackupError]]:
    """The backups in ``directory`` (its ``*.tar`` files), oldest first, and an error for each
    ``*.tar`` there that is not a readable backup. habackup's own temp files are left out."""
    return _core.list_backups(directory)


def is_valid_slug(slug: str) -> bool:
    """Whether ``slug`` can name a backup: letters, digits, ``-`` and ``_``, at most 64."""
    return _core.is_valid_slug(slug)


def extract_archive(
    path: StrPath,
    dest: StrPath,
    *,
    password: str | None = None,
    include: Sequence[str] | None = None,
) -> dict[str, int]:
    """Extract the backed-up config dir into ``dest`` (absent or empty), atomically.

    With ``include`` only the paths its patterns match are extracted, and everything in a
    directory they match (the syntax of ``excludes``: anchored at the top of the config dir,
    ``*`` within a segment, ``**`` across segments: ``www``, ``www/*.png``, ``**/*.yaml``); the
    directories above them are made as needed. A pattern that matched nothing is logged as a
    warning; when none matched anything, ``ArchiveError`` is raised and nothing is written.

    Returns counts of the files, directories, symlinks and bytes written. Symlinks are
    recreated as links wherever they point (as Home Assistant's restore does), but nothing is
    ever written through one: a member whose path runs through a symlink of the archive is
    refused, like absolute paths, ``..``, devices, FIFOs and hard links to anything but a file
    extracted before them (InvalidBackupError naming the member). A protected backup needs its
    ``password``; a wrong or missing one raises IncorrectPasswordError and writes nothing. A full
    destination raises ArchiveError naming the file that did not fit.
    """
    return _core.extract_archive(path, dest, password=password, include=_patterns(include))


async def async_extract_archive(
    path: StrPath,
    dest: StrPath,
    *,
    password: str | None = None,
    include: Sequence[str] | None = None,
) -> dict[str, int]:
    """Extract without blocking the event loop; see :func:`extract_archive`."""
    token = _core.CancelToken()
    future = _core.extract_archive_async(
        path, dest, password=password, include=_patterns(include), cancel=token
    )
    return await await_cleanly(future, token)


def _patterns(include: Sequence[str] | None) -> list[str] | None:
    if isinstance(include, str):
        # A lone string would be taken letter by letter.
        raise TypeError("include takes a list of patterns, not a str")
    return None if include is None else list(include)


def restore_archive(
    path: StrPath, config_dir: StrPath, *, password: str | None = None,
    restore_database: bool = True,
) -> dict[str, Any]:
    """Replace ``config_dir``'s contents with the backup's, completely or not at all.

    The backup is extracted into a staging dir inside ``config_dir`` first (a wrong password or
    corrupt data changes nothing), then swapped in under a journal: a restore killed half way is
    finished by the next restore or backup of that dir. ``backups/`` is always kept, and so is
    the current database with ``restore_database=False`` or when the backup has none. Returns
    ``slug``, ``name``, ``config_dir``, ``database_restored``, ``database_in_backup`` and the
    counts of files, directories, symlinks and bytes. Stop Home Assistant first.
    """
    return _core.restore_archive(
        path, config_dir, password=password, restore_database=restore_database
    )


async def async_restore_archive(
    path: StrPath, config_dir: StrPath, *, password: str | None = None,
    restore_database: bool = True,
) -> dict[str, Any]:
    """:func:`restore_archive` without blocking the event loop."""
    token = _core.CancelToken()
    future = _core.restore_archive_async(
        path, config_dir, password=password, restore_database=restore_database, cancel=token
    )
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
