"""``HabackupBackupAgent``: a habackup sync agent as Home Assistant's ``BackupAgent``."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from .._core import BackupSyncAgent
from ..models import SyncedBackup
from ..object_store import ObjectStoreBackupSyncAgent
from ._hass import AgentBackup, BackupAgent, HassBackupNotFound, HomeAssistant
from .errors import hass_errors
from .limits import Limits, call_limit
from .listeners import check_domain
from .metadata import agent_backup
from .spool import Spooler
from .streams import OnProgress, OpenStream, Streamer, downloads_streams, uploads_streams

_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class HabackupBackupAgent(BackupAgent):  # type: ignore[misc, unused-ignore]
    """A Home Assistant ``BackupAgent`` backed by a habackup ``BackupSyncAgent``.

    ``sync_agent`` is any ``BackupSyncAgent``: a Python subclass or the built-in
    ``ObjectStoreBackupSyncAgent``. ``domain`` must be the domain of the integration whose backup
    platform returns this agent: Home Assistant reloads an integration's agents by that domain.
    Where the calling integration can be told from the call stack, another domain is a
    ``ValueError``. The agent id is ``f"{domain}.{unique_id}"``: keep ``unique_id`` stable
    (Home Assistant keys per-agent settings and backup schedules on the agent id). ``name`` is
    what the UI shows. Both default to ``sync_agent.name``.

    A sync agent that takes streams (``async_upload_stream``, ``async_open_download``: the
    object-store agent) gets Home Assistant's stream as it comes and gives its download back
    the same way: no temp file. Any other gets a temp file in ``temp_dir`` (default: Home
    Assistant's ``tmp_backups``), spooled and read off the event loop. ``limits``
    (:class:`Limits`) bounds how long a call or a stalled transfer may take and how often a
    streamed upload is retried after the store was unreachable.

    Only Home Assistant's ``BackupAgentError`` family leaves the agent: habackup's
    ``BackupNotFound`` becomes Home Assistant's ``BackupNotFound`` (which its manager skips in get
    and delete, and its download view answers with a 404), ``BackupAgentUnreachableError`` its
    namesake, and every other failure (habackup's other errors, a full disk, a limit reached, a
    sync agent without ``async_delete_backup``, a bug) a ``BackupAgentError`` with the original
    as ``__cause__``. Errors Home Assistant's own stream raises pass through as they are.
    """

    def __init__(
        self,
        hass: HomeAssistant,
        sync_agent: BackupSyncAgent,
        *,
        domain: str,
        name: str | None = None,
        unique_id: str | None = None,
        temp_dir: str | Path | None = None,
        limits: Limits | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(sync_agent, BackupSyncAgent):
            raise TypeError(f"sync_agent must be a habackup BackupSyncAgent, not {sync_agent!r}")
        check_domain(domain)
        unique_id = unique_id if unique_id is not None else sync_agent.name
        if not isinstance(unique_id, str) or not unique_id:
            raise ValueError(f"unique_id must be a non-empty string, not {unique_id!r}")
        if limits is not None and not isinstance(limits, Limits):
            raise TypeError(f"limits must be a habackup.homeassistant.Limits, not {limits!r}")
        self.hass = hass
        self.sync_agent = sync_agent
        self.domain = domain
        self.name = name if name is not None else sync_agent.name
        self.unique_id = unique_id
        self.temp_dir = (
            Path(temp_dir) if temp_dir is not None else Path(hass.config.path("tmp_backups"))
        )
        self.limits = limits if limits is not None else Limits()
        self._streamer = Streamer(sync_agent, self.limits, self.temp_dir)
        self._spooler = Spooler(hass, sync_agent, self.temp_dir, self.limits)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.domain}.{self.unique_id} {self.sync_agent!r}>"

    async def async_upload_backup(
        self,
        *,
        open_stream: OpenStream,
        backup: AgentBackup,
        on_progress: OnProgress | None = None,
        **kwargs: Any,
    ) -> None:
        """Upload the backup Home Assistant streams; ``backup`` comes back from listings as is.

        ``on_progress(bytes_uploaded=n)`` (Home Assistant 2026.4+) counts the bytes the store
        acknowledged for a streamed upload, else the sync agent's own progress when it reports
        any, else the spooling; it is called once more with the full size at the end. A stream
        whose length differs from ``backup.size`` fails the upload and nothing is stored.
        """
        with self._errors("upload"):
            if uploads_streams(self.sync_agent):
                await self._streamer.upload(open_stream, backup, on_progress)
            else:
                await self._spooler.upload(open_stream, backup, on_progress)
            if on_progress is not None:
                on_progress(bytes_uploaded=backup.size)

    async def async_download_backup(self, backup_id: str, **kwargs: Any) -> AsyncIterator[bytes]:
        """The backup's bytes; raises ``BackupNotFound`` before any byte when it is not here.

        A streamed download yields verified chunks as they arrive; a copy whose size or sha256
        differs raises ``BackupAgentError`` before the iterator ends. A consumer that stops
        early (``aclose()``, or dropping the iterator) stops the transfer.
        """
        with self._errors("download"):
            sync_id = await self._sync_id(backup_id)
            if downloads_streams(self.sync_agent):
                return await self._streamer.open_download(sync_id)
            return await self._spooler.open_download(sync_id)

    async def async_delete_backup(self, backup_id: str, **kwargs: Any) -> None:
        """Delete the sync agent's copy of ``backup_id``; ``BackupNotFound`` when it has none."""
        with self._errors("delete"):
            sync_id = await self._sync_id(backup_id)
            async with call_limit(self.limits, self.sync_agent.name, "delete"):
                await self.sync_agent.async_delete_backup(id=sync_id)

    async def async_list_backups(self, **kwargs: Any) -> list[AgentBackup]:
        """Every backup the sync agent lists, as Home Assistant's ``AgentBackup``."""
        with self._errors("list"):
            return [agent_backup(synced) for synced in await self._list()]

    async def async_get_backup(self, backup_id: str, **kwargs: Any) -> AgentBackup:
        """The backup with slug ``backup_id``; ``BackupNotFound`` when the agent has none."""
        with self._errors("list"):
            return agent_backup(await self._find(backup_id))

    def _errors(self, action: str) -> AbstractContextManager[None]:
        return hass_errors(self.sync_agent, action, self.temp_dir)

    async def _list(self) -> list[SyncedBackup]:
        async with call_limit(self.limits, self.sync_agent.name, "list"):
            return await self.sync_agent.async_list_backups()

    async def _sync_id(self, backup_id: str) -> str:
        """The sync agent's own id for its copy of ``backup_id``."""
        if isinstance(self.sync_agent, ObjectStoreBackupSyncAgent) and _PLAIN_ID.fullmatch(
            backup_id
        ):
            # Its copies are named by slug (and it raises BackupNotFound itself): no listing,
            # which costs a request per backup on S3 and the like. Any other id (it would refuse
            # one with "/" or "..") goes through the listing, to end as a plain not-found.
            return backup_id
        return (await self._find(backup_id)).id

    async def _find(self, backup_id: str) -> SyncedBackup:
        # Home Assistant names backups by slug; the sync agent may have its own id for its copy.
        for synced in await self._list():
            if synced.slug == backup_id:
                return synced
        raise HassBackupNotFound(f"Backup {backup_id} not found on {self.sync_agent.name}")
