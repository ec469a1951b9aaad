"""Object stores from the command line: ``ObjectStoreBackupSyncAgent`` driven by ``asyncio.run``.

Credentials come from ``--option`` or from the environment (object_store reads ``AWS_*``,
``AZURE_*`` and ``GOOGLE_*`` itself). Only ``agent.url`` is ever printed: it has them removed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from .._core import Backup
from ..errors import BackupError
from ..models import SyncedBackup
from ..object_store import ObjectStoreBackupSyncAgent
from .inputs import UsageError
from .progress import terminal_progress

AGENT_NAME = "cli"
_T = TypeVar("_T")


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coro)


def open_store(url: str, options: dict[str, str]) -> ObjectStoreBackupSyncAgent:
    """The agent for ``url``; a bad URL or option raises BackupAgentConfigError right here."""
    agent = ObjectStoreBackupSyncAgent(AGENT_NAME, url, options=options or None)
    if agent.kind == "memory":
        raise UsageError(
            "memory:// keeps backups in this process only, and it ends with the command: "
            "use file:///DIR or another store"
        )
    return agent


def require_location(agent: ObjectStoreBackupSyncAgent) -> None:
    """A ``file://`` folder that does not exist is a typo, not an empty store (the agent itself
    lists it as holding nothing: under a manager, that is a store nothing was uploaded to yet).
    Cloud prefixes and WebDAV collections have no such difference: they exist once written to."""
    folder = agent.local_dir
    if folder is not None and not folder.is_dir():
        raise BackupError(f"{agent.url}: no such directory")


def upload(agent: ObjectStoreBackupSyncAgent, path: Path) -> SyncedBackup:
    """Upload the backup file at ``path`` (its metadata read from the file); returns the copy
    as stored."""
    with terminal_progress("upload") as progress:
        return _run(agent._upload(path, None, progress))


def download(agent: ObjectStoreBackupSyncAgent, slug: str, path: Path) -> Backup:
    """Download backup ``slug`` to ``path`` (checked, then renamed into place by the agent; a
    missing directory is created, and removed again on failure)."""
    with terminal_progress("download") as progress:
        return _run(agent._download(slug, path, progress))


def list_backups(agent: ObjectStoreBackupSyncAgent) -> list[SyncedBackup]:
    """The store's backups, newest first."""
    backups = _run(agent.async_list_backups())
    return sorted(backups, key=lambda b: b.date, reverse=True)


def upload_all(
    agents: list[ObjectStoreBackupSyncAgent], path: Path
) -> list[dict[str, str | bool | None]]:
    """Upload to each store in turn: ``[{"url", "ok", "error"}]`` in the order given (``error``
    None when ``ok``). One store failing does not stop the others, as with the manager's
    agents."""
    results: list[dict[str, str | bool | None]] = []
    for agent in agents:
        try:
            upload(agent, path)
        except BackupError as err:
            results.append({"url": agent.url, "ok": False, "error": str(err) or repr(err)})
        else:
            results.append({"url": agent.url, "ok": True, "error": None})
    return results
