"""Looking inside backups without extracting them: their members, and what differs between two.
The work is the engine's (the member policy extract and verify run, writing nothing)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from . import _core
from ._cancel import await_cleanly
from .models import BackupDiff, BackupMember, ChangedMember

StrPath = str | os.PathLike[str]


def _member(data: Mapping[str, Any]) -> BackupMember:
    return BackupMember(
        path=data["path"],
        type=data["type"],
        size=data["size"],
        mtime=data["mtime"],
        mode=data["mode"],
        link=data["link"],
    )


def _diff(data: Mapping[str, Any]) -> BackupDiff:
    return BackupDiff(
        added=tuple(_member(m) for m in data["added"]),
        removed=tuple(_member(m) for m in data["removed"]),
        changed=tuple(
            ChangedMember(path=before["path"], before=_member(before), after=_member(after))
            for before, after in data["changed"]
        ),
    )


def list_members(path: StrPath, *, password: str | None = None) -> list[BackupMember]:
    """The members of the backup at ``path`` (its config dir), sorted by path.

    The whole archive is decoded on the way (for a protected backup the ``password`` first,
    then every MAC), through the very rules extraction applies: a corrupt or unsafe backup
    raises ``InvalidBackupError`` as :func:`~habackup.extract_archive` would; a wrong or missing
    password ``IncorrectPasswordError``. Nothing is written.
    """
    return [_member(m) for m in _core.list_members(path, password=password)]


async def async_list_members(
    path: StrPath, *, password: str | None = None
) -> list[BackupMember]:
    """:func:`list_members` without blocking the event loop."""
    token = _core.CancelToken()
    future = _core.list_members_async(path, password=password, cancel=token)
    return [_member(m) for m in await await_cleanly(future, token)]


def diff_backups(
    a: StrPath, b: StrPath, *, password: str | None = None, password_b: str | None = None
) -> BackupDiff:
    """What differs from backup ``a`` to backup ``b``: paths ``added`` (in ``b`` only),
    ``removed`` (in ``a`` only) and ``changed`` (another type, size, content or link target;
    content is compared by a sha256 of each file taken while both archives stream at once).
    ``password`` opens a protected ``a`` (and ``b``, unless ``password_b`` is given). Modes and
    mtimes are not compared. Errors as for :func:`list_members`, naming the backup at fault.
    """
    return _diff(_core.diff_backups(a, b, password=password, password_b=password_b))


async def async_diff_backups(
    a: StrPath, b: StrPath, *, password: str | None = None, password_b: str | None = None
) -> BackupDiff:
    """:func:`diff_backups` without blocking the event loop."""
    token = _core.CancelToken()
    future = _core.diff_backups_async(
        a, b, password=password, password_b=password_b, cancel=token
    )
    return _diff(await await_cleanly(future, token))


__all__ = ["async_diff_backups", "async_list_members", "diff_backups", "list_members"]
