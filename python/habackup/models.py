"""The data an integration's sync agent deals in: what it uploads and what it lists."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, NotRequired, TypedDict


class BackupSyncMetadata(TypedDict):
    """What ``BackupSyncAgent.async_upload_backup`` gets as ``metadata``."""

    date: str
    """ISO 8601 with a UTC offset."""
    slug: str
    """8 lowercase hex digits."""
    size: int
    """Bytes of the backup file."""
    name: str
    homeassistant: str
    """The Home Assistant version that made the backup."""
    protected: bool
    sha256: str
    """Hex digest of the whole backup file."""
    database_included: NotRequired[bool]
    extra: NotRequired[dict[str, Any]]
    """backup.json's ``extra`` (Home Assistant keeps ``instance_id`` and
    ``with_automatic_settings`` there)."""


class VerifyReport(TypedDict):
    """What :func:`habackup.verify_archive` found in a backup that passed every check."""

    members: int
    """Members of the inner archive (files, directories, links)."""
    bytes: int
    """Bytes of file data in the inner archive."""
    protected: bool
    securetar_version: int | None
    """1, 2 or 3 for a protected backup, None otherwise."""
    warnings: list[str]
    """What restores but deserves a look, one sentence each (escaped, printable): symlinks
    that point outside the config dir."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SyncedBackup:
    """One backup as an agent holds it; ``id`` is the agent's own id for its copy."""

    id: str
    slug: str
    name: str
    date: str
    size: int
    protected: bool = False
    sha256: str | None = None
    homeassistant_version: str | None = None
    database_included: bool = True
    # Left out of the hash: a mapping is not hashable, and the other fields identify a copy.
    extra_metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["extra_metadata"] = dict(self.extra_metadata)
        return data


__all__ = ["BackupSyncMetadata", "SyncedBackup"]
