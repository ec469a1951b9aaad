"""habackup: Home Assistant's backup platform with a fast Rust engine."""

from __future__ import annotations

import atexit

from . import _core
from ._archive import (
    DEFAULT_EXCLUDES,
    async_create_archive,
    async_extract_archive,
    async_validate_password,
    async_verify_archive,
    create_archive,
    extract_archive,
    read_backup,
    validate_password,
    verify_archive,
)
from ._core import Backup, BackupSyncAgent, __version__
from .errors import (
    ArchiveError,
    BackupAgentConfigError,
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
from .manager import BackupManager
from .models import AddonMetadata, BackupSyncMetadata, SyncedBackup
from .object_store import ObjectStoreBackupSyncAgent

# No engine thread may be inside a Python call when the interpreter starts finalizing.
atexit.register(_core.wait_for_idle, 5.0)

__all__ = [
    "DEFAULT_EXCLUDES",
    "AddonMetadata",
    "ArchiveError",
    "Backup",
    "BackupAgentConfigError",
    "BackupAgentError",
    "BackupAgentUnreachableError",
    "BackupError",
    "BackupHookError",
    "BackupManager",
    "BackupManagerError",
    "BackupNotFound",
    "BackupPlatformError",
    "BackupSyncAgent",
    "BackupSyncMetadata",
    "IncorrectPasswordError",
    "InvalidBackupError",
    "ObjectStoreBackupSyncAgent",
    "SyncedBackup",
    "UnsupportedBackupError",
    "__version__",
    "async_create_archive",
    "async_extract_archive",
    "async_validate_password",
    "async_verify_archive",
    "create_archive",
    "extract_archive",
    "read_backup",
    "validate_password",
    "verify_archive",
]
