import os
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, final

from typing_extensions import disjoint_base

from .errors import BackupAgentError
from .models import BackupSyncMetadata, SyncedBackup, VerifyReport

_StrPath = str | os.PathLike[str]

DEFAULT_EXCLUDES: tuple[str, ...]
DEFAULT_HA_VERSION: str
__version__: str
__all__ = [
    "DEFAULT_EXCLUDES",
    "DEFAULT_HA_VERSION",
    "AbortToken",
    "Backup",
    "BackupManagerCore",
    "BackupSyncAgent",
    "CancelToken",
    "ObjectStoreClient",
    "__version__",
    "create_archive",
    "create_archive_async",
    "extract_archive",
    "extract_archive_async",
    "read_backup",
    "validate_password",
    "verify_archive",
    "verify_archive_async",
    "wait_for_idle",
]

@final
class Backup:
    @property
    def slug(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def date(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def path(self) -> Path | None: ...
    @property
    def protected(self) -> bool: ...
    @property
    def homeassistant_version(self) -> str | None: ...
    @property
    def database_included(self) -> bool: ...
    @property
    def sha256(self) -> str | None: ...
    @property
    def synced_agents(self) -> list[str]: ...
    @property
    def failed_agents(self) -> dict[str, str]: ...
    @property
    def agents(self) -> dict[str, str]: ...
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
    ) -> Backup: ...
    def as_dict(self) -> dict[str, Any]: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class CancelToken:
    def __new__(cls) -> CancelToken: ...
    def cancel(self) -> None: ...
    @property
    def cancelled(self) -> bool: ...

def create_archive(
    config_dir: _StrPath,
    path: _StrPath,
    *,
    name: str,
    include_database: bool = True,
    excludes: list[str] | None = None,
    ha_version: str | None = None,
    extra: dict[str, Any] | None = None,
    compresslevel: int = 6,
    threads: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    password: str | None = None,
    securetar_version: int = 3,
) -> Backup: ...
def create_archive_async(
    config_dir: _StrPath,
    path: _StrPath,
    *,
    name: str,
    include_database: bool = True,
    excludes: list[str] | None = None,
    ha_version: str | None = None,
    extra: dict[str, Any] | None = None,
    compresslevel: int = 6,
    threads: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    password: str | None = None,
    securetar_version: int = 3,
    cancel: CancelToken | None = None,
) -> Awaitable[Backup]: ...
def read_backup(path: _StrPath) -> Backup: ...
def extract_archive(
    path: _StrPath, dest: _StrPath, *, password: str | None = None
) -> dict[str, int]: ...
def extract_archive_async(
    path: _StrPath,
    dest: _StrPath,
    *,
    password: str | None = None,
    cancel: CancelToken | None = None,
) -> Awaitable[dict[str, int]]: ...
def validate_password(path: _StrPath, password: str) -> bool: ...
def verify_archive(path: _StrPath, *, password: str | None = None) -> VerifyReport: ...
def verify_archive_async(
    path: _StrPath, *, password: str | None = None, cancel: CancelToken | None = None
) -> Awaitable[VerifyReport]: ...

@final
class AbortToken:
    def __new__(cls) -> AbortToken: ...
    def cancel(self) -> None: ...
    @property
    def cancelled(self) -> bool: ...

@disjoint_base
class BackupSyncAgent:
    name: str
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
    def __new__(
        cls,
        hass: Any,
        config_dir: _StrPath,
        backup_dir: _StrPath | None,
        ha_version: str | None,
        agent_timeout: float | None,
        on_event: Callable[[dict[str, Any]], None],
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
        self, domain: str, platform: Any, *, abort: AbortToken | None = None
    ) -> Awaitable[None]: ...
    def create_backup(
        self,
        *,
        name: str | None = None,
        password: str | None = None,
        include_database: bool = True,
        agent_ids: list[str] | None = None,
        excludes: list[str] | None = None,
        abort: AbortToken | None = None,
    ) -> Awaitable[Backup]: ...
    def sync_backup(
        self, slug: str, *, agent_ids: list[str] | None = None, abort: AbortToken | None = None
    ) -> Awaitable[Backup]: ...
    def get_backups(
        self, *, abort: AbortToken | None = None
    ) -> Awaitable[tuple[dict[str, Backup], dict[str, BackupAgentError]]]: ...
    def get_backup(
        self, slug: str, *, abort: AbortToken | None = None
    ) -> Awaitable[Backup | None]: ...
    def download_backup(
        self,
        *,
        agent_id: str,
        id: str,
        path: _StrPath | None = None,
        abort: AbortToken | None = None,
    ) -> Awaitable[Path]: ...
    def remove_backup(self, slug: str, *, abort: AbortToken | None = None) -> Awaitable[None]: ...
    def restore_backup(
        self,
        slug: str,
        *,
        password: str | None = None,
        restore_database: bool = True,
        abort: AbortToken | None = None,
    ) -> Awaitable[None]: ...

@final
class ObjectStoreClient:
    def __new__(
        cls, url: str, options: list[tuple[str, str]] | None = None
    ) -> ObjectStoreClient: ...
    @property
    def url(self) -> str: ...
    @property
    def kind(self) -> str: ...
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
    ) -> Awaitable[None]: ...
    def list(self) -> Awaitable[list[dict[str, Any]]]: ...
    def delete(self, id: str, cancel: CancelToken | None = None) -> Awaitable[None]: ...
    def tuning(self) -> dict[str, int]: ...

def wait_for_idle(timeout: float) -> bool: ...
