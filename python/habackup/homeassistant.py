"""Hand any habackup sync agent to Home Assistant's own backup manager.

Home Assistant 2025.1 and later ask an integration's ``backup`` platform for
``homeassistant.components.backup.BackupAgent`` objects, which move bytes as async streams and
name backups by their ``backup_id`` (the slug). habackup's agents move files. This adapter sits
between the two::

    from habackup import ObjectStoreBackupSyncAgent
    from habackup.homeassistant import HabackupBackupAgent

    async def async_get_backup_agents(hass: HomeAssistant) -> list[BackupAgent]:
        nas = ObjectStoreBackupSyncAgent("nas", "file:///mnt/nas/ha-backups")
        return [HabackupBackupAgent(hass, nas, domain=DOMAIN)]   # agent id: "<domain>.nas"

Uploads are spooled to a temp file (written and hashed off the event loop, so a backup is never
held in memory) and handed to the sync agent with their metadata; downloads go the other way.
Temp files live in Home Assistant's ``tmp_backups`` folder unless ``temp_dir`` says otherwise: it
is on the config disk (``/tmp`` may be RAM) and its ``*.tar`` files are left out of backups.

Importing this module never needs Home Assistant; constructing the agent does.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from ._core import BackupSyncAgent
from .errors import BackupAgentUnreachableError, BackupError, BackupNotFound
from .models import BackupSyncMetadata, SyncedBackup
from .object_store import ObjectStoreBackupSyncAgent

if TYPE_CHECKING:
    from _hashlib import HASH

    # Home Assistant needs Python 3.13 and is not in the main test venv: there its names are Any
    # (hence the ignores, silent where it is installed). tests/homeassistant runs the real thing.
    from homeassistant.components.backup import (  # type: ignore[import-not-found, unused-ignore]
        AgentBackup,
        BackupAgent,
    )
    from homeassistant.components.backup import (  # type: ignore[import-not-found, unused-ignore]
        BackupAgentError as HassBackupAgentError,
    )
    from homeassistant.components.backup import (  # type: ignore[import-not-found, unused-ignore]
        BackupNotFound as HassBackupNotFound,
    )
    from homeassistant.components.backup.agent import (  # type: ignore[import-not-found, unused-ignore]
        BackupAgentUnreachableError as HassBackupAgentUnreachableError,
    )
    from homeassistant.core import HomeAssistant  # type: ignore[import-not-found, unused-ignore]
else:
    try:
        from homeassistant.components.backup import AgentBackup, BackupAgent
        from homeassistant.components.backup import BackupAgentError as HassBackupAgentError
        from homeassistant.components.backup import BackupNotFound as HassBackupNotFound
        from homeassistant.components.backup.agent import (
            BackupAgentUnreachableError as HassBackupAgentUnreachableError,
        )
        from homeassistant.core import HomeAssistant
    except ImportError as _import_error:
        # Keeps ``import habackup.homeassistant`` (docs, stubtest, a CLI without Home Assistant)
        # working; only building an agent needs the real base class.
        _missing = _import_error

        class BackupAgent:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                raise ImportError(
                    "habackup.homeassistant needs Home Assistant 2025.1 or newer "
                    f"(homeassistant.components.backup): {_missing}"
                ) from _missing

        AgentBackup = HassBackupAgentError = HassBackupNotFound = None
        HassBackupAgentUnreachableError = HomeAssistant = None

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

READ_CHUNK_SIZE = 1024 * 1024
"""Bytes per chunk a download yields (one executor round trip each)."""
WRITE_BATCH_SIZE = 1024 * 1024
"""Upload chunks are gathered up to this size before one executor job writes them."""
_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class HabackupBackupAgent(BackupAgent):  # type: ignore[misc, unused-ignore]
    """A Home Assistant ``BackupAgent`` backed by a habackup ``BackupSyncAgent``.

    ``sync_agent`` is any ``BackupSyncAgent``: a Python subclass or the built-in
    ``ObjectStoreBackupSyncAgent``. The agent id is ``f"{domain}.{unique_id}"``; ``name`` is what
    the UI shows. Both default to ``sync_agent.name``.

    habackup's ``BackupNotFound`` becomes Home Assistant's ``BackupNotFound`` (which its manager
    skips in get and delete, and its download view answers with a 404),
    ``BackupAgentUnreachableError`` its namesake, and every other habackup error, or a sync agent
    without ``async_delete_backup``, a ``BackupAgentError``. Anything else is left as it is, so
    Home Assistant logs it as the agent's bug.
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
    ) -> None:
        super().__init__()
        if not isinstance(sync_agent, BackupSyncAgent):
            raise TypeError(f"sync_agent must be a habackup BackupSyncAgent, not {sync_agent!r}")
        self.hass = hass
        self.sync_agent = sync_agent
        self.domain = domain
        self.name = name if name is not None else sync_agent.name
        self.unique_id = unique_id if unique_id is not None else sync_agent.name
        self.temp_dir = (
            Path(temp_dir) if temp_dir is not None else Path(hass.config.path("tmp_backups"))
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.domain}.{self.unique_id} {self.sync_agent!r}>"

    async def async_upload_backup(
        self,
        *,
        open_stream: Callable[[], Coroutine[Any, Any, AsyncIterator[bytes]]],
        backup: AgentBackup,
        **kwargs: Any,
    ) -> None:
        """Spool the stream to a temp file, then let the sync agent upload that file."""
        path = await self._new_temp_path()
        try:
            size, sha256 = await self._spool(await open_stream(), path)
            if size != backup.size:
                # Home Assistant announces the size before streaming; what arrived is the truth.
                _LOGGER.debug(
                    "Backup %s: %d bytes streamed, %d announced",
                    backup.backup_id,
                    size,
                    backup.size,
                )
            metadata: BackupSyncMetadata = {
                "date": backup.date,
                "slug": backup.backup_id,
                "size": size,
                "name": backup.name,
                "homeassistant": backup.homeassistant_version or "",
                "protected": backup.protected,
                "sha256": sha256,
                "database_included": backup.database_included,
                "extra": dict(backup.extra_metadata),
            }
            with self._hass_errors("upload"):
                await self.sync_agent.async_upload_backup(path=path, metadata=metadata)
        finally:
            await self._off_loop_cleanup(path.unlink, True)

    async def async_download_backup(self, backup_id: str, **kwargs: Any) -> AsyncIterator[bytes]:
        """Download into a temp file, then stream it; raises ``BackupNotFound`` before any byte.

        The temp file is unlinked as soon as it is open, so nothing is left behind even when the
        caller never finishes (or never starts) reading.
        """
        sync_id = await self._sync_id(backup_id)
        path = await self._new_temp_path()
        try:
            with self._hass_errors("download"):
                await self.sync_agent.async_download_backup(id=sync_id, path=path)
            file = await self.hass.async_add_executor_job(_open_then_unlink, path)
        except BaseException:
            await self._off_loop_cleanup(path.unlink, True)
            raise
        return self._read_chunks(file)

    async def async_delete_backup(self, backup_id: str, **kwargs: Any) -> None:
        """Delete the sync agent's copy of ``backup_id``; ``BackupNotFound`` when it has none."""
        sync_id = await self._sync_id(backup_id)
        with self._hass_errors("delete"):
            await self.sync_agent.async_delete_backup(id=sync_id)

    async def async_list_backups(self, **kwargs: Any) -> list[AgentBackup]:
        """Every backup the sync agent lists, as Home Assistant's ``AgentBackup``."""
        return [_agent_backup(synced) for synced in await self._list()]

    async def async_get_backup(self, backup_id: str, **kwargs: Any) -> AgentBackup:
        """The backup with slug ``backup_id``; ``BackupNotFound`` when the agent has none."""
        return _agent_backup(await self._find(backup_id))

    async def _list(self) -> list[SyncedBackup]:
        with self._hass_errors("list"):
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

    @contextmanager
    def _hass_errors(self, action: str) -> Iterator[None]:
        """Re-raise habackup's errors as the Home Assistant errors its manager expects."""
        try:
            yield
        except BackupNotFound as err:
            raise HassBackupNotFound(str(err)) from err
        except BackupAgentUnreachableError as err:
            raise HassBackupAgentUnreachableError(str(err)) from err
        except BackupError as err:
            raise HassBackupAgentError(str(err)) from err
        except NotImplementedError as err:
            # The BackupSyncAgent base raises this for a method a subclass left out.
            raise HassBackupAgentError(
                f"{type(self.sync_agent).__name__} does not support {action}"
            ) from err

    async def _new_temp_path(self) -> Path:
        await self.hass.async_add_executor_job(_make_dir, self.temp_dir)
        # A fresh name in the folder itself: Home Assistant's excludes cover tmp_backups/*.tar.
        return self.temp_dir / f"habackup-{secrets.token_hex(8)}.tar"

    async def _spool(self, stream: AsyncIterator[bytes], path: Path) -> tuple[int, str]:
        """Write ``stream`` to ``path`` off the loop; return its size and sha256."""
        run = self.hass.async_add_executor_job
        file = await run(_create_file, path)
        digest = hashlib.sha256()
        size = 0
        # One write job in flight while the loop gathers the next batch: reading the stream and
        # writing the disk overlap, and memory stays near two batches.
        writing: asyncio.Future[None] | None = None
        try:
            batch: list[bytes] = []
            batched = 0
            async for chunk in stream:
                batch.append(chunk)
                batched += len(chunk)
                if batched >= WRITE_BATCH_SIZE:
                    if writing is not None:
                        await writing
                    writing = run(_write_batch, file, digest, batch)
                    size += batched
                    batch, batched = [], 0
            if writing is not None:
                await writing
            writing = run(_write_batch, file, digest, batch)
            await writing
            size += batched
        finally:
            if writing is not None:
                # Never close the file under a running write (cancellation, a failed stream);
                # a write's own error is already on its way out, or is moot next to this one.
                with suppress(BaseException):
                    await asyncio.shield(writing)
            await self._off_loop_cleanup(file.close)
        return size, digest.hexdigest()

    async def _read_chunks(self, file: IO[bytes]) -> AsyncIterator[bytes]:
        try:
            while chunk := await self.hass.async_add_executor_job(file.read, READ_CHUNK_SIZE):
                yield chunk
        finally:
            await self._off_loop_cleanup(file.close)

    async def _off_loop_cleanup(self, func: Callable[..., object], *args: Any) -> None:
        # Shielded: a cancelled transfer must still close and remove its temp file.
        await asyncio.shield(self.hass.async_add_executor_job(func, *args))


def _agent_backup(synced: SyncedBackup) -> AgentBackup:
    version = synced.homeassistant_version
    return AgentBackup(
        addons=[],
        backup_id=synced.slug,
        date=synced.date,
        database_included=synced.database_included,
        extra_metadata=dict(synced.extra_metadata),
        folders=[],
        # Home Assistant's own reader: Core is in the backup when backup.json names its version.
        homeassistant_included=version is not None,
        homeassistant_version=version,
        name=synced.name,
        protected=synced.protected,
        size=synced.size,
    )


# The blocking halves, run in Home Assistant's executor.


def _make_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def _create_file(path: Path) -> IO[bytes]:
    return path.open("xb")


def _write_batch(file: IO[bytes], digest: HASH, batch: list[bytes]) -> None:
    for chunk in batch:
        file.write(chunk)
        digest.update(chunk)  # hashlib releases the GIL for large buffers


def _open_then_unlink(path: Path) -> IO[bytes]:
    file = path.open("rb")
    # The open file keeps the data; the name goes now so nothing can leak it.
    path.unlink()
    return file


__all__ = ["HabackupBackupAgent"]
