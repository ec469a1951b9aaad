"""``BackupManager``: hooks, archive and sync agents, orchestrated by the Rust engine.

The flows run on habackup's tokio runtime; this class adds the typed API, event subscribers and
clean cancellation: cancelling an ``async_*`` call returns only after the engine has cancelled
what it started, run the post hooks and removed its temp files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar, cast

from . import _core
from ._cancel import await_cleanly
from ._core import Backup, BackupSyncAgent
from ._locations import verify_result
from .errors import BackupAgentError
from .models import RetentionPolicy, VerifyResult

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

StrPath = str | os.PathLike[str]
BackupEvent = dict[str, Any]
EventCallback = Callable[[BackupEvent], None]


class _Subscribers:
    """Event callbacks; kept apart from the manager so the engine holds no reference to it."""

    def __init__(self) -> None:
        self.callbacks: list[EventCallback] = []

    def __call__(self, event: BackupEvent) -> None:
        for callback in list(self.callbacks):
            try:
                callback(event)
            except Exception:
                _LOGGER.exception("Error in backup event callback %s", callback)




class BackupManager:
    """Creates, lists, syncs, downloads, removes, restores and verifies Home Assistant backups.

    ``hass`` is passed unchanged to the platforms' hooks and agent factories. ``ha_version`` is
    the version backups record (default: ``config_dir``'s ``.HA_VERSION``; a dir without one
    cannot be backed up without it). ``agent_timeout`` is the limit in seconds for each agent
    call (``None``: no limit). ``retention`` is applied after each backup that was made: to the
    backup dir and to every agent that now holds the new backup, deleting through the agents
    (the new backup, the newest, is always kept); what it removed is the returned
    ``Backup.pruned`` and ``cleaning_up`` events, and a failure there is logged and reported
    as an event, never failing the backup. An empty or malformed policy is a ``ValueError``.
    """

    LOCAL = "local"
    """The backup dir's key among agent ids: in :meth:`async_verify_backup`'s results and
    ``agent_ids``, and in ``Backup.pruned`` (agent ids always hold a dot: it never clashes)."""

    def __init__(
        self,
        hass: Any,
        *,
        config_dir: StrPath,
        backup_dir: StrPath | None = None,
        ha_version: str | None = None,
        agent_timeout: float | None = None,
        retention: RetentionPolicy | None = None,
    ) -> None:
        self.hass = hass
        self._subscribers = _Subscribers()
        self._core = _core.BackupManagerCore(
            hass,
            config_dir,
            backup_dir,
            ha_version,
            agent_timeout,
            self._subscribers,
            retention=dict(retention.rules()) if retention is not None else None,
            retention_tz=retention.tz if retention is not None else None,
        )
        self._retention = retention

    @property
    def config_dir(self) -> Path:
        """The Home Assistant config dir that backups are made of and restored into."""
        return self._core.config_dir

    @property
    def backup_dir(self) -> Path:
        """Where local backups live: ``<config_dir>/backups`` unless given. The ``*.tar`` files
        there are never part of a backup (Home Assistant's default excludes), and a restore keeps
        ``backups/`` as it is."""
        return self._core.backup_dir

    @property
    def retention(self) -> RetentionPolicy | None:
        """The retention policy applied after each backup (None: backups are kept)."""
        return self._retention

    @property
    def state(self) -> Literal["idle", "create_backup", "restore_backup"]:
        """``"idle"``, ``"create_backup"`` or ``"restore_backup"``."""
        return cast(Literal["idle", "create_backup", "restore_backup"], self._core.state)

    @property
    def sync_agents(self) -> Mapping[str, BackupSyncAgent]:
        """The registered agents, keyed by agent id (``"<domain>.<name>"``)."""
        return MappingProxyType(self._core.sync_agents)

    async def async_add_platform(self, domain: str, platform: Any) -> None:
        """Register an integration's backup platform (normally its ``backup`` module).

        Raises ``BackupPlatformError`` for a platform with only one of the two hooks, an agent
        that is not a ``BackupSyncAgent``, a duplicate agent id or an agent factory that raises.
        """
        token = _core.CancelToken()
        await await_cleanly(self._core.add_platform(domain, platform, cancel=token), token)

    async def async_create_backup(
        self,
        *,
        name: str | None = None,
        password: str | None = None,
        include_database: bool = True,
        agent_ids: Sequence[str] | None = None,
        excludes: Sequence[str] | None = None,
    ) -> Backup:
        """Run the pre hooks, write the backup, run the post hooks, upload to the agents.

        Agent failures do not fail the backup: see ``failed_agents`` on the result.
        """
        token = _core.CancelToken()
        future = self._core.create_backup(
            name=name,
            password=password,
            include_database=include_database,
            agent_ids=list(agent_ids) if agent_ids is not None else None,
            excludes=list(excludes) if excludes is not None else None,
            cancel=token,
        )
        return await await_cleanly(future, token)

    async def async_sync_backup(
        self, slug: str, *, agent_ids: Sequence[str] | None = None
    ) -> Backup:
        """Upload an existing local backup to the agents (all of them by default)."""
        token = _core.CancelToken()
        future = self._core.sync_backup(
            slug, agent_ids=list(agent_ids) if agent_ids is not None else None, cancel=token
        )
        return await await_cleanly(future, token)

    async def async_get_backups(
        self,
    ) -> tuple[dict[str, Backup], dict[str, BackupAgentError]]:
        """Local and agent backups merged by slug, and the agents whose listing failed."""
        token = _core.CancelToken()
        return await await_cleanly(self._core.get_backups(cancel=token), token)

    async def async_get_backup(self, slug: str) -> Backup | None:
        """One backup by slug, local or on an agent."""
        token = _core.CancelToken()
        return await await_cleanly(self._core.get_backup(slug, cancel=token), token)

    async def async_download_backup(
        self, *, agent_id: str, id: str, path: StrPath | None = None
    ) -> Path:
        """Download an agent's copy into the backup dir (or ``path``); returns where it is."""
        token = _core.CancelToken()
        future = self._core.download_backup(agent_id=agent_id, id=id, path=path, cancel=token)
        return await await_cleanly(future, token)

    async def async_remove_backup(self, slug: str) -> None:
        """Delete a backup locally and from every agent that holds it."""
        token = _core.CancelToken()
        await await_cleanly(self._core.remove_backup(slug, cancel=token), token)

    async def async_restore_backup(
        self, slug: str, *, password: str | None = None, restore_database: bool = True
    ) -> None:
        """Restore a local backup into the config dir (keeping ``backups/``)."""
        token = _core.CancelToken()
        future = self._core.restore_backup(
            slug, password=password, restore_database=restore_database, cancel=token
        )
        await await_cleanly(future, token)

    async def async_verify_backup(
        self,
        slug: str,
        *,
        agent_ids: Sequence[str] | None = None,
        deep: bool = False,
        password: str | None = None,
    ) -> dict[str, VerifyResult]:
        """Verify backup ``slug`` where each copy is stored: a result per agent id, and the
        backup dir's copy under :attr:`LOCAL`.

        An object-store agent's copy is checked in place (its bytes streamed through sha256 and
        compared with the sidecar, backup.json read; nothing written to disk). Any other agent's
        copy is downloaded to a temp file in the backup dir (removed afterwards) and checked
        against the size and sha256 the agent lists. ``deep`` also decodes every byte
        (``password`` for a protected backup: a wrong one is a problem, as is every MAC that
        fails). ``agent_ids`` picks the places (``"local"`` among them); a named place that does
        not hold the backup gets a result with a problem, while by default only the places
        holding it are checked. A damaged copy is a result with ``problems``; ``BackupNotFound``
        when no place holds the backup at all.
        """
        token = _core.CancelToken()
        future = self._core.verify_backup(
            slug,
            agent_ids=list(agent_ids) if agent_ids is not None else None,
            deep=deep,
            password=password,
            cancel=token,
        )
        results = await await_cleanly(future, token)
        return {place: verify_result(data) for place, data in results.items()}

    def async_subscribe_events(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(event)`` on the loop thread for every event; returns unsubscribe."""
        callbacks = self._subscribers.callbacks
        callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in callbacks:
                callbacks.remove(callback)

        return unsubscribe


__all__ = ["BackupEvent", "BackupManager", "EventCallback"]
