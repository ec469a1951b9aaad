"""habackup: Home Assistant's backup platform with a fast Rust engine."""

from __future__ import annotations

from ._archive import (
    DEFAULT_EXCLUDES,
    async_create_archive,
    async_extract_archive,
    create_archive,
    extract_archive,
    read_backup,
)
from ._core import Backup, __version__
from .errors import (
    ArchiveError,
    BackupAgentError,
    BackupAgentUnreachableError,
    BackupError,
    BackupHookError,
    BackupManagerError,
    BackupNotFound,
    BackupPlatformError,
    IncorrectPasswordError,
    InvalidBackupError,
    UnsupportedBackupError,
)

__all__ = [
    "DEFAULT_EXCLUDES",
    "ArchiveError",
    "Backup",
    "BackupAgentError",
    "BackupAgentUnreachableError",
    "BackupError",
    "BackupHookError",
    "BackupManagerError",
    "BackupNotFound",
    "BackupPlatformError",
    "IncorrectPasswordError",
    "InvalidBackupError",
    "UnsupportedBackupError",
    "__version__",
    "async_create_archive",
    "async_extract_archive",
    "create_archive",
    "extract_archive",
    "read_backup",
]
