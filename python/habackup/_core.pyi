import os
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, final

from typing_extensions import disjoint_base

from .errors import BackupAgentError, BackupError
from .models import BackupSyncMetadata, CreateOptions, SyncedBackup, VerifyReport

_StrPath = str | os.PathLike[str]

DEFAULT_EXCLUDES: tuple[str, ...]
__version__: str
__all__ = [
    "DEFAULT_EXCLUDES",
    "Backup",
    "BackupManagerCore",
    "BackupSyncAgent",
    "CancelToken",
    "DownloadStream",
    "ObjectStoreClient",
    "__version__",
    "copy_backup",
    "copy_backup_async",
    "create_archive",
    "create_archive_async",
    "diff_backups",
    "diff_backups_async",
    "extract_archive",
    "extract_archive_async",
    "is_valid_slug",
    "list_backups",
    "list_members",
    "list_members_async",
    "plan_prune",
    "prune_location",
    "prune_location_async",
    "read_backup",
    "restore_archive",
    "restore_archive_async",
    "validate_password",
    "verify_archive",
    "verify_archive_async",
    "verify_backup",
    "verify_backup_async",
    "wait_for_idle",
]

"""The Rust engine (pyo3). Import from ``habackup``: these are its building blocks."""

@final
class Backup:
    """One backup: what its backup.json says, where its file is and which sync agents hold
    copies. Immutable, hashable, comparable."""

    @property
    def slug(self) -> str:
        """Home Assistant's id of the backup (8 hex digits for its own); names ``<slug>.tar``."""
    @property
    def name(self) -> str:
        """The name Home Assistant shows."""
    @property
    def date(self) -> str:
        """When it was made: ISO 8601 with a UTC offset."""
    @property
    def size(self) -> int:
        """Bytes of the backup file."""
    @property
    def path(self) -> Path | None:
        """The local file, or None for a backup only an agent holds."""
    @property
    def protected(self) -> bool:
        """Whether the inner archive is encrypted (securetar): restoring needs the password."""
    @property
    def homeassistant_version(self) -> str | None:
        """The Home Assistant version that made it (None in a Supervisor backup without Core)."""
    @property
    def database_included(self) -> bool:
        """Whether the recorder database is in it."""
    @property
    def sha256(self) -> str | None:
        """Hex digest of the whole file, when known (None for a file only read)."""
    @property
    def synced_agents(self) -> list[str]:
        """Agent ids (``"<domain>.<name>"``) that hold a copy, from the manager."""
    @property
    def failed_agents(self) -> dict[str, str]:
        """Agent id -> why its upload failed, from the manager's create or sync."""
    @property
    def agents(self) -> dict[str, str]:
        """Agent id -> that agent's own id for its copy (what its ``async_download_backup`` and
        ``async_delete_backup`` take as ``id``)."""
    @property
    def pruned(self) -> dict[str, list[str]]:
        """Where the manager's retention policy removed backups once this one was made: agent
        id (``"local"`` for the backup dir) -> the slugs removed there, newest first."""
    def __new__(
        cls,
        *,
        slug: str,
        name: str,
        date: str,
        size: int,
        path: _StrPath | None = None,
        protected: bool = False,
        homeassistant_version: str | None = None,
        database_included: bool = True,
        sha256: str | None = None,
        synced_agents: list[str] = ...,
        failed_agents: dict[str, str] = ...,
        agents: dict[str, str] = ...,
        pruned: dict[str, list[str]] = ...,
    ) -> Backup: ...
    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (the path as a string)."""
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class CancelToken:
    """Stops the engine call it is passed to: ``cancel()`` from any thread."""

    def __new__(cls) -> CancelToken: ...
    def cancel(self) -> None: ...
    @property
    def cancelled(self) -> bool: ...

def create_archive(config_dir: _StrPath, path: _StrPath, options: CreateOptions) -> Backup: ...
def create_archive_async(
    config_dir: _StrPath, path: _StrPath, options: CreateOptions, cancel: CancelToken | None = None
) -> Awaitable[Backup]: ...
def read_backup(path: _StrPath) -> Backup: ...
def list_backups(dir: _StrPath) -> tuple[list[Backup], list[BackupError]]: ...
def is_valid_slug(slug: str) -> bool: ...
def restore_archive(
    path: _StrPath, config_dir: _StrPath, *, password: str | None = None,
    restore_database: bool = True,
) -> dict[str, Any]: ...
def restore_archive_async(
    path: _StrPath,
    config_dir: _StrPath,
    *,
    password: str | None = None,
    restore_database: bool = True,
    cancel: CancelToken | None = None,
) -> Awaitable[dict[str, Any]]: ...
def extract_archive(
    path: _StrPath,
    dest: _StrPath,
    *,
    password: str | None = None,
    include: list[str] | None = None,
) -> dict[str, int]: ...
def extract_archive_async(
    path: _StrPath,
    dest: _StrPath,
    *,
    password: str | None = None,
    include: list[str] | None = None,
    cancel: CancelToken | None = None,
) -> Awaitable[dict[str, int]]: ...
def list_members(path: _StrPath, *, password: str | None = None) -> list[dict[str, Any]]: ...
def list_members_async(
    path: _StrPath, *, password: str | None = None, cancel: CancelToken | None = None
) -> Awaitable[list[dict[str, Any]]]: ...
def diff_backups(
    a: _StrPath, b: _StrPath, *, password: str | None = None, password_b: str | None = None
) -> dict[str, Any]: ...
def diff_backups_async(
    a: _StrPath,
    b: _StrPath,
    *,
    password: str | None = None,
    password_b: str | None = None,
    cancel: CancelToken | None = None,
) -> Awaitable[dict[str, Any]]: ...
def validate_password(path: _StrPath, password: str) -> bool: ...
def verify_archive(path: _StrPath, *, password: str | None = None) -> VerifyReport: ...
def verify_archive_async(
    path: _StrPath, *, password: str | None = None, cancel: CancelToken | None = None
) -> Awaitable[VerifyReport]: ...

@disjoint_base
class BackupSyncAgent:
    """Base class of a sync agent: where the manager copies backups to. Subclasses implement
    the four ``async_*`` coroutines; the manager's agent id is ``"<domain>.<name>"``."""

    name: str
    """The agent's name, unique within its integration."""
    def __new__(cls, *args: Any, **kwargs: Any) -> BackupSyncAgent: ...
    def __init__(self, name: str) -> None: ...
    def async_upload_backup(
        self, *, path: Path, metadata: BackupSyncMetadata, **kwargs: Any
    ) -> Coroutine[Any, Any, None]: ...
    def async_download_backup(
        self, *, id: str, path: Path, **kwargs: Any
    ) -> Coroutine[Any, Any, None]: ...
    def async_list_backups(self, **kwargs: Any) -> Coroutine[Any, Any, list[SyncedBackup]]: ...
    def async_delete_backup(self, *, id: str, **kwargs: Any) -> Coroutine[Any, Any, None]: ...

@final
class BackupManagerCore:
    """The engine behind :class:`habackup.BackupManager`, which is what to use."""

    def __new__(
        cls,
        hass: Any,
        config_dir: _StrPath,
        backup_dir: _StrPath | None,
        ha_version: str | None,
        agent_timeout: float | None,
        on_event: Callable[[dict[str, Any]], None],
        retention: dict[str, Any] | None = None,
        retention_tz: str | None = None,
    ) -> BackupManagerCore: ...
    @property
    def state(self) -> str: ...
    @property
    def config_dir(self) -> Path: ...
    @property
    def backup_dir(self) -> Path: ...
    @property
    def sync_agents(self) -> dict[str, BackupSyncAgent]: ...
    def add_platform(
        self, domain: str, platform: Any, *, cancel: CancelToken | None = None
    ) -> Awaitable[None]: ...
    def create_backup(
        self,
        *,
        name: str | None = None,
        password: str | None = None,
        include_database: bool = True,
        agent_ids: list[str] | None = None,
        excludes: list[str] | None = None,
        cancel: CancelToken | None = None,
    ) -> Awaitable[Backup]: ...
    def sync_backup(
        self, slug: str, *, agent_ids: list[str] | None = None, cancel: CancelToken | None = None
    ) -> Awaitable[Backup]: ...
    def get_backups(
        self, *, cancel: CancelToken | None = None
    ) -> Awaitable[tuple[dict[str, Backup], dict[str, BackupAgentError]]]: ...
    def get_backup(
        self, slug: str, *, cancel: CancelToken | None = None
    ) -> Awaitable[Backup | None]: ...
    def download_backup(
        self,
        *,
        agent_id: str,
        id: str,
        path: _StrPath | None = None,
        cancel: CancelToken | None = None,
    ) -> Awaitable[Path]: ...
    def remove_backup(self, slug: str, *, cancel: CancelToken | None = None) -> Awaitable[None]: ...
    def restore_backup(
        self,
        slug: str,
        *,
        password: str | None = None,
        restore_database: bool = True,
        cancel: CancelToken | None = None,
    ) -> Awaitable[None]: ...
    def verify_backup(
        self,
        slug: str,
        *,
        agent_ids: list[str] | None = None,
        deep: bool = False,
        password: str | None = None,
        cancel: CancelToken | None = None,
    ) -> Awaitable[dict[str, dict[str, Any]]]: ...

@final
class ObjectStoreClient:
    """The engine behind :class:`habackup.ObjectStoreBackupSyncAgent`, which is what to use."""

    def __new__(
        cls, url: str, options: list[tuple[str, str]] | None = None
    ) -> ObjectStoreClient: ...
    @property
    def url(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def local_dir(self) -> Path | None: ...
    def upload(
        self,
        path: _StrPath,
        metadata: dict[str, Any] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> Awaitable[dict[str, Any]]: ...
    def download(
        self,
        id: str,
        path: _StrPath,
        on_progress: Callable[[int, int], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> Awaitable[Backup]: ...
    def upload_stream(
        self,
        metadata: dict[str, Any],
        stream: AsyncIterable[bytes],
        on_progress: Callable[[int, int], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> Awaitable[dict[str, Any]]: ...
    def open_download(self, id: str) -> Awaitable[DownloadStream]: ...
    def list(self) -> Awaitable[list[dict[str, Any]]]: ...
    def delete(self, id: str, cancel: CancelToken | None = None) -> Awaitable[None]: ...
    def probe(self) -> Awaitable[None]: ...
    def tuning(self) -> dict[str, int]: ...

@final
class DownloadStream:
    """A stored backup's bytes as an async iterator of chunks, checked as they arrive."""

    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str | None: ...
    def __aiter__(self) -> DownloadStream: ...
    def __anext__(self) -> Awaitable[bytes]: ...
    def aclose(self) -> Awaitable[None]: ...

def verify_backup(
    location: str,
    slug: str,
    *,
    deep: bool = False,
    password: str | None = None,
    options: list[tuple[str, str]] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]: ...
def verify_backup_async(
    location: str,
    slug: str,
    *,
    deep: bool = False,
    password: str | None = None,
    options: list[tuple[str, str]] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    cancel: CancelToken | None = None,
) -> Awaitable[dict[str, Any]]: ...
def copy_backup(
    source: str,
    slug: str,
    dest: str,
    *,
    options: list[tuple[str, str]] | None = None,
    dest_options: list[tuple[str, str]] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]: ...
def copy_backup_async(
    source: str,
    slug: str,
    dest: str,
    *,
    options: list[tuple[str, str]] | None = None,
    dest_options: list[tuple[str, str]] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    cancel: CancelToken | None = None,
) -> Awaitable[dict[str, Any]]: ...
def plan_prune(
    backups: list[tuple[str, str]],
    rules: dict[str, Any],
    *,
    now: str | None = None,
    tz: str | None = None,
) -> dict[str, Any]: ...
def prune_location(
    location: str,
    rules: dict[str, Any],
    *,
    now: str | None = None,
    tz: str | None = None,
    dry_run: bool = False,
    options: list[tuple[str, str]] | None = None,
) -> dict[str, Any]: ...
def prune_location_async(
    location: str,
    rules: dict[str, Any],
    *,
    now: str | None = None,
    tz: str | None = None,
    dry_run: bool = False,
    options: list[tuple[str, str]] | None = None,
    cancel: CancelToken | None = None,
) -> Awaitable[dict[str, Any]]: ...
def wait_for_idle(timeout: float) -> bool: ...
