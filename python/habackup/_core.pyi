import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, final

_StrPath = str | os.PathLike[str]

DEFAULT_EXCLUDES: tuple[str, ...]
DEFAULT_HA_VERSION: str
__version__: str
__all__ = [
    "DEFAULT_EXCLUDES",
    "DEFAULT_HA_VERSION",
    "Backup",
    "CancelToken",
    "__version__",
    "create_archive",
    "create_archive_async",
    "extract_archive",
    "extract_archive_async",
    "read_backup",
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
    cancel: CancelToken | None = None,
) -> Awaitable[Backup]: ...
def read_backup(path: _StrPath) -> Backup: ...
def extract_archive(path: _StrPath, dest: _StrPath) -> dict[str, int]: ...
def extract_archive_async(
    path: _StrPath, dest: _StrPath, *, cancel: CancelToken | None = None
) -> Awaitable[dict[str, int]]: ...
