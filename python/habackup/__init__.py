"""habackup: Home Assistant's backup platform with a fast Rust engine."""

from __future__ import annotations

import atexit

from . import _core
from ._archive import (
    DEFAULT_EXCLUDES,
    async_create_archive,
    async_extract_archive,
    async_restore_archive,
    async_validate_password,
    async_verify_archive,
    create_archive,
    extract_archive,
    is_valid_slug,
    list_backups,
    read_backup,
    restore_archive,
    validate_password,
    verify_archive,
)
from ._core import Backup, BackupSyncAgent, __version__
from ._locations import (
    async_copy_backup,
    async_prune,
    async_verify_backup,
    copy_backup,
    plan_prune,
    prune,
    verify_backup,
)
from .errors import (
    ArchiveError,
    BackupAgentConfigError,
    BackupAgentError,
    BackupAgentProbeError,
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
from .models import (
    AddonMetadata,
    BackupSyncMetadata,
    CreateOptions,
    KeptBackup,
    PrunedBackup,
    PrunePlan,
    SyncedBackup,
    VerifyReport,
    VerifyResult,
)
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
    "BackupAgentProbeError",
    "BackupAgentUnreachableError",
    "BackupError",
    "BackupHookError",
    "BackupManager",
    "BackupManagerError",
    "BackupNotFound",
    "BackupPlatformError",
    "BackupSyncAgent",
    "BackupSyncMetadata",
    "CreateOptions",
    "IncorrectPasswordError",
    "InvalidBackupError",
    "KeptBackup",
    "ObjectStoreBackupSyncAgent",
    "PrunePlan",
    "PrunedBackup",
    "SyncedBackup",
    "UnsupportedBackupError",
    "VerifyReport",
    "VerifyResult",
    "__version__",
    "async_copy_backup",
    "async_create_archive",
    "async_extract_archive",
    "async_prune",
    "async_restore_archive",
    "async_validate_password",
    "async_verify_archive",
    "async_verify_backup",
    "copy_backup",
    "create_archive",
    "extract_archive",
    "is_valid_slug",
    "list_backups",
    "plan_prune",
    "prune",
    "read_backup",
    "restore_archive",
    "validate_password",
    "verify_archive",
    "verify_backup",
]
