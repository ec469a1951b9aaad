"""Hand any habackup sync agent to Home Assistant's own backup manager (Home Assistant 2025.4+).

Home Assistant asks an integration's ``backup`` platform for
``homeassistant.components.backup.BackupAgent`` objects, which move bytes as async streams and
name backups by their ``backup_id`` (the slug). habackup's agents move files. This adapter sits
between the two::

    from habackup import ObjectStoreBackupSyncAgent
    from habackup.homeassistant import HabackupBackupAgent

    async def async_get_backup_agents(hass: HomeAssistant) -> list[BackupAgent]:
        nas = ObjectStoreBackupSyncAgent("nas", "file:///mnt/nas/ha-backups")
        return [HabackupBackupAgent(hass, nas, domain=DOMAIN)]   # agent id: "<domain>.nas"

Uploads are spooled to a temp file (written and hashed off the event loop, so a backup is never
held in memory) and handed to the sync agent with every field of Home Assistant's
``AgentBackup`` in its metadata; listings give them back unchanged. Downloads go the other way.
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
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeVar

from ._core import BackupSyncAgent
from .errors import BackupAgentUnreachableError, BackupError, BackupNotFound
from .models import AddonMetadata, BackupSyncMetadata, SyncedBackup
from .object_store import ObjectStoreBackupSyncAgent

MINIMUM_HOME_ASSISTANT = (2025, 4)
"""The oldest Home Assistant release the adapter runs on: the first whose manager and HTTP views
treat ``BackupNotFound`` as "not here" rather than as an agent error."""

# Why the adapter cannot run here (no Home Assistant, or one that is too old), if it cannot.
_unsupported: str | None = None
_import_error: ImportError | None = None

if TYPE_CHECKING:
    from _hashlib import HASH

    # Home Assistant needs Python 3.13+ and is not in the main test venv: there its names are Any
    # (hence the ignores, silent where it is installed). tests/homeassistant runs the real thing.
    from homeassistant.components.backup import (  # type: ignore[import-not-found, unused-ignore]
        AddonInfo,
        AgentBackup,
        BackupAgent,
        Folder,
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
    from homeassistant.components.backup.models import (  # type: ignore[import-not-found, unused-ignore]
        BackupError as HassBackupError,
    )
    from homeassistant.config_entries import (  # type: ignore[import-not-found, unused-ignore]
        ConfigEntry,
    )
    from homeassistant.core import (  # type: ignore[import-not-found, unused-ignore]
        HomeAssistant,
        valid_domain,
    )
    from homeassistant.helpers import frame  # type: ignore[import-not-found, unused-ignore]
else:
    try:
        from homeassistant.const import MAJOR_VERSION, MINOR_VERSION
        from homeassistant.const import __version__ as _found_version
    except ImportError as err:
        _import_error = err
        _unsupported = f"habackup.homeassistant needs Home Assistant 2025.4 or newer: {err}"
    else:
        if (MAJOR_VERSION, MINOR_VERSION) < MINIMUM_HOME_ASSISTANT:
            _unsupported = (
                "habackup.homeassistant needs Home Assistant 2025.4 or newer; "
                f"this is Home Assistant {_found_version}"
            )
    if _unsupported is None:
        from homeassistant.components.backup import AddonInfo, AgentBackup, BackupAgent, Folder
        from homeassistant.components.backup import BackupAgentError as HassBackupAgentError
        from homeassistant.components.backup import BackupNotFound as HassBackupNotFound
        from homeassistant.components.backup.agent import (
            BackupAgentUnreachableError as HassBackupAgentUnreachableError,
        )
        from homeassistant.components.backup.models import BackupError as HassBackupError
        from homeassistant.config_entries import ConfigEntry
        from homeassistant.core import HomeAssistant, valid_domain
        from homeassistant.helpers import frame
    else:
        # Keeps ``import habackup.homeassistant`` (docs, stubtest, a CLI without Home Assistant)
        # working; only building an agent needs the real base class.
        class BackupAgent:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                _require_home_assistant()

        AddonInfo = AgentBackup = ConfigEntry = Folder = HomeAssistant = None
        frame = valid_domain = None
        HassBackupAgentError = HassBackupNotFound = HassBackupAgentUnreachableError = None
        HassBackupError = None

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

READ_CHUNK_SIZE = 1024 * 1024
"""Bytes per chunk a download yields (one executor round trip each)."""
WRITE_BATCH_SIZE = 1024 * 1024
"""Upload chunks are gathered up to this size before one executor job writes them."""
_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class OnProgress(Protocol):
    """Home Assistant's ``on_progress`` for uploads (2026.4 and later)."""

    def __call__(self, *, bytes_uploaded: int, **kwargs: Any) -> None: ...


class HabackupBackupAgent(BackupAgent):  # type: ignore[misc, unused-ignore]
    """A Home Assistant ``BackupAgent`` backed by a habackup ``BackupSyncAgent``.

    ``sync_agent`` is any ``BackupSyncAgent``: a Python subclass or the built-in
    ``ObjectStoreBackupSyncAgent``. ``domain`` must be the domain of the integration whose backup
    platform returns this agent: Home Assistant reloads an integration's agents by that domain.
    Where the calling integration can be told from the call stack, another domain is a
    ``ValueError``. The agent id is ``f"{domain}.{unique_id}"``: keep ``unique_id`` stable
    (Home Assistant keys per-agent settings and backup schedules on the agent id). ``name`` is
    what the UI shows. Both default to ``sync_agent.name``.

    Only Home Assistant's ``BackupAgentError`` family leaves the agent: habackup's
    ``BackupNotFound`` becomes Home Assistant's ``BackupNotFound`` (which its manager skips in get
    and delete, and its download view answers with a 404), ``BackupAgentUnreachableError`` its
    namesake, and every other failure (habackup's other errors, a full disk, a timeout, a sync
    agent without ``async_delete_backup``, a bug) a ``BackupAgentError`` with the original as
    ``__cause__``. Errors Home Assistant's own stream raises pass through as they are.
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
        _check_domain(domain)
        unique_id = unique_id if unique_id is not None else sync_agent.name
        if not isinstance(unique_id, str) or not unique_id:
            raise ValueError(f"unique_id must be a non-empty string, not {unique_id!r}")
        self.hass = hass
        self.sync_agent = sync_agent
        self.domain = domain
        self.name = name if name is not None else sync_agent.name
        self.unique_id = unique_id
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
        on_progress: OnProgress | None = None,
        **kwargs: Any,
    ) -> None:
        """Upload the backup Home Assistant streams; ``backup`` comes back from listings as is.

        ``on_progress(bytes_uploaded=n)`` (Home Assistant 2026.4+) follows the sync agent's own
        progress when it reports any (the object-store agent does), else the spooling, and is
        called once more with the full size at the end. A stream whose length differs from
        ``backup.size`` fails the upload before the sync agent sees it.
        """
        with self._hass_errors("upload"):
            # The seam for uploads without a temp copy: an agent that takes a stream will get
            # one here instead (issue 10, item 3).
            await self._upload_spooled(open_stream, backup, on_progress)
            if on_progress is not None:
                on_progress(bytes_uploaded=backup.size)

    async def async_download_backup(self, backup_id: str, **kwargs: Any) -> AsyncIterator[bytes]:
        """The backup's bytes; raises ``BackupNotFound`` before any byte when it is not here."""
        with self._hass_errors("download"):
            sync_id = await self._sync_id(backup_id)
            # The seam for downloads without a temp copy (issue 10, item 4).
            return await self._download_spooled(sync_id)

    async def async_delete_backup(self, backup_id: str, **kwargs: Any) -> None:
        """Delete the sync agent's copy of ``backup_id``; ``BackupNotFound`` when it has none."""
        with self._hass_errors("delete"):
            sync_id = await self._sync_id(backup_id)
            await self.sync_agent.async_delete_backup(id=sync_id)

    async def async_list_backups(self, **kwargs: Any) -> list[AgentBackup]:
        """Every backup the sync agent lists, as Home Assistant's ``AgentBackup``."""
        with self._hass_errors("list"):
            return [_agent_backup(synced) for synced in await self._list()]

    async def async_get_backup(self, backup_id: str, **kwargs: Any) -> AgentBackup:
        """The backup with slug ``backup_id``; ``BackupNotFound`` when the agent has none."""
        with self._hass_errors("list"):
            return _agent_backup(await self._find(backup_id))

    async def _upload_spooled(
        self,
        open_stream: Callable[[], Coroutine[Any, Any, AsyncIterator[bytes]]],
        backup: AgentBackup,
        on_progress: OnProgress | None,
    ) -> None:
        """Spool the stream to a temp file, then let the sync agent upload that file."""
        reports_progress = bool(getattr(self.sync_agent, "accepts_upload_progress", False))
        path = await self._temp_io("upload", self._new_temp_path())
        try:
            stream = await open_stream()
            try:
                spool_progress = None if reports_progress else on_progress
                size, sha256 = await self._spool(stream, path, spool_progress)
            finally:
                # Home Assistant 2026.11 closes the streams it handed out; older ones leave a
                # half-read stream (a failed spool) to the garbage collector.
                await _close_stream(stream)
            if size != backup.size:
                raise HassBackupAgentError(
                    f"Backup {backup.backup_id}: Home Assistant announced {backup.size} bytes "
                    f"but sent {size}; not uploaded to {self.sync_agent.name}"
                )
            upload_kwargs: dict[str, Any] = {}
            if reports_progress and on_progress is not None:
                report = on_progress

                def agent_progress(done: int, total: int) -> None:
                    report(bytes_uploaded=done)

                upload_kwargs["on_progress"] = agent_progress
            await self.sync_agent.async_upload_backup(
                path=path, metadata=_sync_metadata(backup, size, sha256), **upload_kwargs
            )
        finally:
            await self._off_loop_cleanup(path.unlink, True)

    async def _download_spooled(self, sync_id: str) -> AsyncIterator[bytes]:
        """Download into a temp file, then stream it.

        The temp file is unlinked as soon as it is open, so nothing is left behind even when the
        caller never finishes (or never starts) reading.
        """
        path = await self._temp_io("download", self._new_temp_path())
        try:
            await self.sync_agent.async_download_backup(id=sync_id, path=path)
            opening = self.hass.async_add_executor_job(_open_then_unlink, path)
            file = await self._temp_io("download", opening)
        except BaseException:
            await self._off_loop_cleanup(path.unlink, True)
            raise
        return self._read_chunks(file)

    async def _list(self) -> list[SyncedBackup]:
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
        """Turn every failure into one of the Home Assistant errors its manager expects."""
        try:
            yield
        except HassBackupError:
            # Home Assistant's own: ours (BackupNotFound from _find, a size mismatch), or raised
            # by its stream (its manager handles a BackupReaderWriterError itself).
            raise
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
        except TimeoutError as err:  # before OSError, its base class
            raise HassBackupAgentError(f"{self.sync_agent.name}: {action} timed out") from err
        except OSError as err:
            # The sync agent's: a full or read-only disk, a permission. Its file, if it names
            # one (the temp file we gave it is named by its folder).
            where = _folder_of(err, self.temp_dir)
            raise HassBackupAgentError(
                f"{self.sync_agent.name}: {action} failed: {_reason(err)}"
                + (f" ({where})" if where else "")
            ) from err
        except Exception as err:
            # A bug in a sync agent: Home Assistant logs agent errors without a traceback.
            _LOGGER.exception("Unexpected error in %r during %s", self.sync_agent, action)
            raise HassBackupAgentError(
                f"{self.sync_agent.name}: {action} failed: {type(err).__name__}: {err}"
            ) from err

    async def _temp_io(self, action: str, io: Awaitable[_T]) -> _T:
        """Await file I/O on the adapter's own temp files: a full disk there is named by the
        folder (a failing write names no file)."""
        try:
            return await io
        except OSError as err:
            raise HassBackupAgentError(
                f"{self.sync_agent.name}: {action} failed: {_reason(err)} "
                f"(temp files in {self.temp_dir})"
            ) from err

    async def _new_temp_path(self) -> Path:
        await self.hass.async_add_executor_job(_make_dir, self.temp_dir)
        # A fresh name in the folder itself: Home Assistant's excludes cover tmp_backups/*.tar.
        return self.temp_dir / f"habackup-{secrets.token_hex(8)}.tar"

    async def _spool(
        self, stream: AsyncIterator[bytes], path: Path, on_progress: OnProgress | None
    ) -> tuple[int, str]:
        """Write ``stream`` to ``path`` off the loop; return its size and sha256."""
        run = self.hass.async_add_executor_job
        file = await self._temp_io("upload", run(_create_file, path))
        digest = hashlib.sha256()
        size = 0
        # One write job in flight while the loop gathers the next batch: reading the stream and
        # writing the disk overlap, and memory stays near two batches. Writes are awaited
        # shielded: a cancelled upload must not mark a write done while it still runs.
        writing: asyncio.Future[None] | None = None
        try:
            batch: list[bytes] = []
            batched = 0
            async for chunk in stream:  # Home Assistant's errors pass as they are
                batch.append(chunk)
                batched += len(chunk)
                if batched >= WRITE_BATCH_SIZE:
                    if writing is not None:
                        await self._temp_io("upload", asyncio.shield(writing))
                        if on_progress is not None:
                            on_progress(bytes_uploaded=size)
                    writing = run(_write_batch, file, digest, batch)
                    size += batched
                    batch, batched = [], 0
            if writing is not None:
                await self._temp_io("upload", asyncio.shield(writing))
            writing = run(_write_batch, file, digest, batch)
            await self._temp_io("upload", asyncio.shield(writing))
            size += batched
            # Data on the disk before the sync agent reads the name: a full disk shows here.
            await self._temp_io("upload", run(_flush, file))
        finally:
            if writing is not None:
                # Never close the file under a running write (cancellation, a failed stream);
                # a write's own error is already on its way out, or is moot next to this one.
                with suppress(BaseException):
                    await asyncio.shield(writing)
            await self._off_loop_cleanup(file.close)
        return size, digest.hexdigest()

    async def _read_chunks(self, file: IO[bytes]) -> AsyncIterator[bytes]:
        read = self.hass.async_add_executor_job
        try:
            with self._hass_errors("download"):
                while chunk := await self._temp_io("download", read(file.read, READ_CHUNK_SIZE)):
                    yield chunk
        finally:
            await self._off_loop_cleanup(file.close)

    async def _off_loop_cleanup(self, func: Callable[..., object], *args: Any) -> None:
        # Shielded: a cancelled transfer must still close and remove its temp file.
        await asyncio.shield(self.hass.async_add_executor_job(func, *args))


class BackupAgentListeners:
    """Lets an integration tell Home Assistant to ask its backup platform for agents again.

    Home Assistant calls the platform's ``async_register_backup_agents_listener`` once; calling
    the listener makes its manager drop every agent of the integration's domain and call
    ``async_get_backup_agents`` again. The usual trigger is a config entry being loaded or
    unloaded::

        # custom_components/my_nas/__init__.py
        BACKUP_AGENT_LISTENERS = BackupAgentListeners(DOMAIN)

        async def async_setup_entry(hass, entry):
            ...
            BACKUP_AGENT_LISTENERS.async_track_entry(hass, entry)
            return True

        # custom_components/my_nas/backup.py
        from . import BACKUP_AGENT_LISTENERS

        async_register_backup_agents_listener = BACKUP_AGENT_LISTENERS.async_register

    ``async_get_backup_agents`` should then return agents for loaded entries only
    (``hass.config_entries.async_loaded_entries(DOMAIN)``).
    """

    def __init__(self, domain: str) -> None:
        _check_domain(domain)  # ImportError without Home Assistant 2025.4+
        self.domain = domain
        self._key = f"habackup.backup_agent_listeners.{domain}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.domain}>"

    def async_register(
        self, hass: HomeAssistant, *, listener: Callable[[], None], **kwargs: Any
    ) -> Callable[[], None]:
        """The backup platform's ``async_register_backup_agents_listener``."""
        listeners: list[Callable[[], None]] = hass.data.setdefault(self._key, [])
        listeners.append(listener)

        def remove() -> None:
            with suppress(ValueError):
                listeners.remove(listener)

        return remove

    def async_notify(self, hass: HomeAssistant) -> None:
        """Make Home Assistant reload this integration's agents (call on the event loop)."""
        for listener in list(hass.data.get(self._key, ())):
            listener()

    def async_track_entry(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """Notify whenever ``entry`` changes state (loaded, unloading) until it is unloaded."""
        entry.async_on_unload(entry.async_on_state_change(lambda: self.async_notify(hass)))


def _require_home_assistant() -> None:
    if _unsupported is not None:
        raise ImportError(_unsupported) from _import_error


def _check_domain(domain: str) -> None:
    """``domain`` must be an integration domain, and the caller's when that can be told."""
    _require_home_assistant()
    if not isinstance(domain, str) or not valid_domain(domain):
        raise ValueError(
            f"domain must be an integration's domain (lowercase letters, digits and '_'), "
            f"not {domain!r}"
        )
    try:
        # The innermost integration module on the stack: the backup platform (or the
        # integration's own code) creating this. Home Assistant's backup manager, which calls
        # the platform, is skipped, so an agent made outside any integration is not checked.
        caller = frame.get_integration_frame(exclude_integrations={"backup"}).integration
    except frame.MissingIntegrationFrame:
        return
    if caller != domain:
        raise ValueError(
            f"domain={domain!r}, but the integration creating this agent is {caller!r}: Home "
            f"Assistant reloads an integration's agents by domain, so pass domain={caller!r}"
        )


def _sync_metadata(backup: AgentBackup, size: int, sha256: str) -> BackupSyncMetadata:
    """Every field of Home Assistant's ``AgentBackup``, in habackup's metadata keys."""
    return {
        "date": backup.date,
        "slug": backup.backup_id,
        "size": size,
        "name": backup.name,
        "homeassistant": backup.homeassistant_version or "",
        "protected": backup.protected,
        "sha256": sha256,
        "database_included": backup.database_included,
        "homeassistant_included": backup.homeassistant_included,
        "addons": [
            AddonMetadata(name=addon.name, slug=addon.slug, version=addon.version)
            for addon in backup.addons
        ],
        "folders": [str(folder) for folder in backup.folders],
        "extra": dict(backup.extra_metadata),
    }


def _agent_backup(synced: SyncedBackup) -> AgentBackup:
    """Home Assistant's ``AgentBackup``, field by field from what the sync agent listed."""
    folders = []
    for folder in synced.folders:
        try:
            folders.append(Folder(folder))
        except ValueError:
            # A folder this Home Assistant has no name for (a newer Supervisor's): it stays in
            # the stored metadata; Home Assistant could not restore it anyway.
            _LOGGER.debug("Backup %s: unknown folder %r left out", synced.slug, folder)
    return AgentBackup(
        addons=[
            AddonInfo(name=addon.get("name"), slug=addon["slug"], version=addon.get("version"))
            for addon in synced.addons
        ],
        backup_id=synced.slug,
        date=synced.date,
        database_included=synced.database_included,
        extra_metadata=dict(synced.extra_metadata),
        folders=folders,
        homeassistant_included=synced.homeassistant_included,
        homeassistant_version=synced.homeassistant_version,
        name=synced.name,
        protected=synced.protected,
        size=synced.size,
    )


async def _close_stream(stream: AsyncIterator[bytes]) -> None:
    """Close a stream of Home Assistant's if it can be closed; its errors are not ours."""
    if (aclose := getattr(stream, "aclose", None)) is None:
        return
    try:
        await aclose()
    except Exception:
        _LOGGER.debug("Error closing %r", stream, exc_info=True)


def _reason(err: OSError) -> str:
    return err.strerror or str(err) or type(err).__name__


def _folder_of(err: OSError, temp_dir: Path) -> str | None:
    """The folder to name for a failed file operation: ours for a temp file, else the file's."""
    if err.filename is None:
        return None
    path = Path(str(err.filename))
    if path.parent == temp_dir and path.name.startswith("habackup-"):
        return str(temp_dir)
    return str(path)


# The blocking halves, run in Home Assistant's executor.


def _make_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def _create_file(path: Path) -> IO[bytes]:
    return path.open("xb")


def _write_batch(file: IO[bytes], digest: HASH, batch: list[bytes]) -> None:
    for chunk in batch:
        file.write(chunk)
        digest.update(chunk)  # hashlib releases the GIL for large buffers


def _flush(file: IO[bytes]) -> None:
    file.flush()


def _open_then_unlink(path: Path) -> IO[bytes]:
    file = path.open("rb")
    # The open file keeps the data; the name goes now so nothing can leak it.
    path.unlink()
    return file


__all__ = ["MINIMUM_HOME_ASSISTANT", "BackupAgentListeners", "HabackupBackupAgent", "OnProgress"]
