"""habackup's exceptions: every one is a BackupError carrying an ``error_code``."""

from __future__ import annotations


class BackupError(Exception):
    """Base class of every habackup error."""

    error_code: str = "unknown_error"

    def __init__(self, message: str = "", *, error_code: str | None = None) -> None:
        super().__init__(message)
        if error_code is not None:
            self.error_code = error_code


class BackupManagerError(BackupError):
    """The backup manager cannot do what was asked (busy, bad arguments, ...)."""

    error_code = "backup_manager_error"


class BackupPlatformError(BackupError):
    """An integration's backup platform is malformed."""

    error_code = "backup_platform_error"


class BackupHookError(BackupError):
    """A pre or post backup hook raised; the original exception is ``__cause__``."""

    error_code = "backup_hook_error"

    def __init__(self, message: str = "", *, domain: str = "", stage: str = "") -> None:
        super().__init__(message)
        self.domain = domain
        self.stage = stage


class BackupAgentError(BackupError):
    """A sync agent failed."""

    error_code = "backup_agent_error"


class BackupAgentUnreachableError(BackupAgentError):
    """A sync agent's remote end cannot be reached."""

    error_code = "backup_agent_unreachable"


class BackupAgentConfigError(BackupAgentError, ValueError):
    """An agent's URL or options are malformed; raised when the agent is constructed."""

    error_code = "backup_agent_config_error"


class BackupAgentProbeError(BackupAgentError):
    """A store failed its probe (:meth:`ObjectStoreBackupSyncAgent.async_probe`).

    ``problem`` says what to fix, one of :data:`PROBE_PROBLEMS`: ``"cannot_connect"`` (nothing
    answered), ``"invalid_auth"`` (credentials refused), ``"bucket_not_found"`` (no such bucket
    or container), ``"permission_denied"`` (credentials accepted, but not allowed to write, read
    or delete there; also a read-only folder), ``"invalid_url"`` (not an address this store can
    use: not a WebDAV server, a wrong region), ``"host_key"`` (SFTP: the server's host key is not
    pinned with the option ``host_key``, the message names the key it presents, or does not
    match it) or ``"failed"`` (anything else: see the message).
    """

    error_code = "backup_agent_probe_failed"

    def __init__(self, message: str = "", *, problem: str = "failed") -> None:
        super().__init__(message)
        self.problem = problem


PROBE_PROBLEMS = (
    "cannot_connect",
    "invalid_auth",
    "bucket_not_found",
    "permission_denied",
    "invalid_url",
    "host_key",
    "failed",
)
"""Every ``BackupAgentProbeError.problem``."""


class BackupNotFound(BackupAgentError, BackupManagerError):
    """No backup with that id or slug."""

    error_code = "backup_not_found"


class ArchiveError(BackupError):
    """Writing, reading or extracting a backup file failed; ``path`` names the file at fault."""

    error_code = "archive_error"

    def __init__(self, message: str = "", *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class InvalidBackupError(ArchiveError):
    """The backup file is corrupt, truncated or unsafe to extract."""

    error_code = "invalid_backup"


class IncorrectPasswordError(ArchiveError):
    """The password does not open this protected backup."""

    error_code = "password_incorrect"


class UnsupportedBackupError(ArchiveError):
    """The backup uses something this version of habackup does not handle."""

    error_code = "unsupported_backup"


__all__ = [
    "PROBE_PROBLEMS",
    "ArchiveError",
    "BackupAgentConfigError",
    "BackupAgentError",
    "BackupAgentProbeError",
    "BackupAgentUnreachableError",
    "BackupError",
    "BackupHookError",
    "BackupManagerError",
    "BackupNotFound",
    "BackupPlatformError",
    "IncorrectPasswordError",
    "InvalidBackupError",
    "UnsupportedBackupError",
]
