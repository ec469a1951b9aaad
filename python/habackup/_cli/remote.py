"""Object stores from the command line: ``ObjectStoreBackupSyncAgent`` driven by ``asyncio.run``.

Credentials come from ``--option`` or from the environment (object_store reads ``AWS_*``,
``AZURE_*`` and ``GOOGLE_*`` itself). Only ``agent.url`` is ever printed: it has them removed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from ..errors import BackupError
from ..models import SyncedBackup
from ..object_store import ObjectStoreBackupSyncAgent
from .progress import terminal_progress

AGENT_NAME = "cli"
_T = TypeVar("_T")

# How long to let habackup's tokio threads finish after a store call returned (see _run).
def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coro)


def open_store(url: str, options: dict[str, str]) -> ObjectStoreBackupSyncAgent:
    """The agent for ``url``; a bad URL or option raises BackupAgentConfigError right here."""
    return ObjectStoreBackupSyncAgent(AGENT_NAME, url, options=options or None)


def upload(agent: ObjectStoreBackupSyncAgent, path: Path) -> None:
    """Upload the backup file at ``path``; its metadata is read from the file itself."""
    with terminal_progress("upload") as progress:
        _run(agent.async_upload_backup(path=path, on_progress=progress))


def download(agent: ObjectStoreBackupSyncAgent, slug: str, path: Path) -> None:
    """Download backup ``slug`` to ``path`` (checked, then renamed into place by the agent)."""
    with terminal_progress("download") as progress:
        _run(agent.async_download_backup(id=slug, path=path, on_progress=progress))


def list_backups(agent: ObjectStoreBackupSyncAgent) -> list[SyncedBackup]:
    """The store's backups, newest first."""
    backups = _run(agent.async_list_backups())
    return sorted(backups, key=lambda b: b.date, reverse=True)


def upload_all(agents: list[ObjectStoreBackupSyncAgent], path: Path) -> list[dict[str, object]]:
    """Upload to each store in turn: ``[{"url", "ok", "error"?}]`` in the order given.

    One store failing does not stop the others, as with the manager's agents.
    """
    results: list[dict[str, object]] = []
    for agent in agents:
        try:
            upload(agent, path)
        except BackupError as err:
            results.append({"url": agent.url, "ok": False, "error": str(err) or repr(err)})
        else:
            results.append({"url": agent.url, "ok": True})
    return results
