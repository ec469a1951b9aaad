"""The data habackup deals in: what a sync agent uploads and lists, and how a backup is made."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NotRequired, Required, TypedDict


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
    """One backup as an agent holds it (what ``BackupSyncAgent.async_list_backups`` returns).

    - ``id``: the agent's own id for its copy (what its download and delete take)
    - ``slug``: Home Assistant's id of the backup; the manager merges copies by it
    - ``name``, ``date`` (ISO 8601 with a UTC offset), ``size`` (bytes)
    - ``protected``: whether it is encrypted
    - ``sha256``: hex digest of the whole file, when the agent keeps one
    - ``homeassistant_version``: the version that made it, when known
    - ``database_included``: whether the recorder database is in it
    - ``extra_metadata``: backup.json's ``extra`` as the agent stored it
    """

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


class CreateOptions(TypedDict, total=False):
    """How :func:`habackup.create_archive` and :func:`habackup.async_create_archive` write a
    backup (keyword arguments; only ``name`` is required).
    """

    name: Required[str]
    """The backup's name (Home Assistant shows it; a blank one is refused); with the date it
    makes the slug."""
    include_database: bool
    """``False`` also leaves out ``home-assistant_v2.db`` and its WAL/SHM (default ``True``)."""
    excludes: Sequence[str]
    """Exclude patterns, default :data:`habackup.DEFAULT_EXCLUDES` (Home Assistant's). Matched
    against paths inside the config dir, anchored at its top: ``*`` stays within one path
    segment, ``**`` spans segments (``**/*.log``). A custom list replaces the defaults."""
    ha_version: str | None
    """The Home Assistant version recorded; default the config dir's ``.HA_VERSION``. A dir
    without one is not a Home Assistant config dir: it is refused (``ArchiveError``) unless
    this is given."""
    extra: Mapping[str, Any] | None
    """More keys for backup.json's ``extra`` (JSON-compatible)."""
    compresslevel: int
    """gzip level 0-9 (default 6, Home Assistant's)."""
    threads: int | None
    """Compression threads (default: every core)."""
    on_progress: Callable[[int, int], None] | None
    """``on_progress(bytes_done, bytes_total)`` of file data read: from a worker thread for
    :func:`~habackup.create_archive`, on the event loop's thread for the async one."""
    password: str | None
    """Encrypt the inner archive with securetar (a protected backup)."""
    securetar_version: int
    """3 (Home Assistant's default since 2025.1) or 2."""


@dataclass(frozen=True, kw_only=True, slots=True)
class VerifyResult:
    """What verifying one stored backup found.

    ``location`` is the folder or store URL (without credentials) and ``slug`` the backup;
    ``ok`` is true when ``problems`` (what is wrong with the stored copy, one sentence each) is
    empty; ``warnings`` say what could not be checked or is odd without being wrong. ``size`` is
    the stored size in bytes, ``sha256`` the digest checked against (a store's sidecar) or
    computed (a folder), None without one. ``deep`` tells whether every byte was decoded; then
    ``members`` and ``bytes`` count the inner archive's members and file data.
    """

    location: str
    slug: str
    ok: bool
    size: int
    sha256: str | None
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    deep: bool = False
    members: int | None = None
    bytes: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["problems"] = list(self.problems)
        data["warnings"] = list(self.warnings)
        return data


@dataclass(frozen=True, kw_only=True, slots=True)
class KeptBackup:
    """A backup a retention policy keeps: its ``slug`` and ``date``, and the ``reasons``, the
    rules that keep it (``daily``, ``oldest monthly``, ``within 7d``, ``newest``, ...)."""

    slug: str
    date: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class PrunedBackup:
    """A backup a retention policy removes: its ``slug`` and ``date``."""

    slug: str
    date: str


@dataclass(frozen=True, kw_only=True, slots=True)
class PrunePlan:
    """Which backups a retention policy keeps (``keep``) and which it removes (``remove``),
    newest first."""

    keep: tuple[KeptBackup, ...]
    remove: tuple[PrunedBackup, ...]

    def as_dict(self) -> dict[str, Any]:
        """``{"keep": [{"slug", "date", "reasons"}], "remove": [{"slug", "date"}]}``."""
        return {
            "keep": [
                {"slug": k.slug, "date": k.date, "reasons": list(k.reasons)} for k in self.keep
            ],
            "remove": [{"slug": r.slug, "date": r.date} for r in self.remove],
        }


__all__ = [
    "BackupSyncMetadata",
    "CreateOptions",
    "KeptBackup",
    "PrunePlan",
    "PrunedBackup",
    "SyncedBackup",
    "VerifyResult",
]
