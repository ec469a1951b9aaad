"""The data habackup deals in: what a sync agent uploads and lists, and how a backup is made."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, NotRequired, Required, Self, TypedDict


class AddonMetadata(TypedDict):
    """One add-on in a backup, as backup.json's ``addons`` lists it (Supervisor backups)."""

    name: str | None
    slug: str
    version: str | None


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
    homeassistant_included: NotRequired[bool]
    """Whether Home Assistant's own config is in the backup (a Supervisor backup may hold only
    add-ons or folders)."""
    addons: NotRequired[list[AddonMetadata]]
    folders: NotRequired[list[str]]
    """Supervisor folders in the backup: ``share``, ``addons/local``, ``ssl``, ``media``."""
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
    - ``homeassistant_included``: whether Home Assistant's own config is in it
    - ``addons``: the add-ons in it (``AddonMetadata`` mappings: name, slug, version)
    - ``folders``: the Supervisor folders in it
    - ``extra_metadata``: backup.json's ``extra`` as the agent stored it

    An agent that stores the ``BackupSyncMetadata`` it was given and builds this from it
    (:meth:`from_metadata`) gives Home Assistant back exactly what it uploaded. Every field after
    ``size`` has a default, so listings written before a field existed still work.
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
    homeassistant_included: bool = True
    # Left out of the hash: mappings are not hashable, and the other fields identify a copy.
    addons: Sequence[Mapping[str, Any]] = field(default=(), hash=False)
    folders: tuple[str, ...] = ()
    extra_metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], *, id: str | None = None) -> Self:
        """The backup a stored ``BackupSyncMetadata`` describes; ``id`` defaults to its slug.

        What an agent that keeps the metadata it was given returns from its listing. Keys that
        metadata stored by an older version lacks take what Home Assistant would read from
        such a backup; malformed add-on and folder entries are left out.
        """
        slug = str(metadata["slug"])
        version = metadata.get("homeassistant")
        extra = metadata.get("extra")
        sha256 = metadata.get("sha256")
        return cls(
            id=slug if id is None else id,
            slug=slug,
            name=str(metadata.get("name", "")),
            date=str(metadata.get("date", "")),
            size=int(metadata.get("size", 0)),
            protected=bool(metadata.get("protected", False)),
            sha256=str(sha256) if sha256 else None,
            homeassistant_version=str(version) if version else None,
            database_included=bool(metadata.get("database_included", True)),
            homeassistant_included=bool(metadata.get("homeassistant_included", bool(version))),
            addons=_addons(metadata.get("addons")),
            folders=tuple(f for f in metadata.get("folders") or () if isinstance(f, str)),
            extra_metadata=dict(extra) if isinstance(extra, Mapping) else {},
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["addons"] = [dict(addon) for addon in self.addons]
        data["folders"] = list(self.folders)
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
    ``password_incorrect`` tells that ``deep`` stopped at the password (the last of the
    ``problems``): the contents were not checked, and the copy may well be sound, encrypted with
    another password.
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
    password_incorrect: bool = False

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


@dataclass(frozen=True, kw_only=True, slots=True)
class CopyResult:
    """What :func:`habackup.copy_backup` did: backup ``slug`` from ``source`` to ``dest`` (both
    without credentials); ``sent`` is False when ``dest`` already held the same bytes (nothing
    was transferred); ``size`` and ``sha256`` are the copy's, ``metadata`` what ``dest`` keeps
    beside it (a store's sidecar; a folder's backup.json fields)."""

    slug: str
    source: str
    dest: str
    sent: bool
    size: int
    sha256: str | None
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)


# Spelled as a union so that it is one at runtime too (stubtest compares the two).
MemberType = Literal["file"] | Literal["directory"] | Literal["symlink"] | Literal["hardlink"]


@dataclass(frozen=True, kw_only=True, slots=True)
class BackupMember:
    """One entry of a backup's config dir, as :func:`habackup.list_members` finds it.

    ``path`` is inside the config dir (``/``-separated; a name that is not UTF-8 decoded as
    Python decodes file names); ``type`` is ``"file"``, ``"directory"``, ``"symlink"`` or
    ``"hardlink"``; ``size`` the bytes of content (a hard link's file's; 0 for the others);
    ``mtime`` seconds since the epoch; ``mode`` the permission bits; ``link`` a symlink's target
    as stored, or the path of the file a hard link names (None for the others).
    """

    path: str
    type: MemberType
    size: int
    mtime: int
    mode: int
    link: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True, kw_only=True, slots=True)
class ChangedMember:
    """A ``path`` in both backups whose type, content (size or bytes) or link target differs:
    ``before`` is the first backup's entry, ``after`` the second's."""

    path: str
    before: BackupMember
    after: BackupMember


@dataclass(frozen=True, kw_only=True, slots=True)
class BackupDiff:
    """What :func:`habackup.diff_backups` found from backup A to backup B, each by path:
    ``added`` (in B only), ``removed`` (in A only) and ``changed``. Modes and mtimes are not
    compared."""

    added: tuple[BackupMember, ...]
    removed: tuple[BackupMember, ...]
    changed: tuple[ChangedMember, ...]

    def as_dict(self) -> dict[str, Any]:
        """``{"added": [member], "removed": [member], "changed": [{"path", "before",
        "after"}]}``."""
        return {
            "added": [m.as_dict() for m in self.added],
            "removed": [m.as_dict() for m in self.removed],
            "changed": [
                {"path": c.path, "before": c.before.as_dict(), "after": c.after.as_dict()}
                for c in self.changed
            ],
        }


Keep = int | Literal["unlimited"] | None


class KeepRules(TypedDict, total=False):
    """A retention policy's rules (restic's ``--keep-*``), as keyword arguments of
    :func:`habackup.plan_prune` and :func:`habackup.prune`. Counts are a number of backups or
    ``"unlimited"``; 0 or None is no rule."""

    keep_last: Keep
    keep_hourly: Keep
    keep_daily: Keep
    keep_weekly: Keep
    keep_monthly: Keep
    keep_yearly: Keep
    keep_within: str | None
    """A span before the newest backup: years, months, days, hours (``"2y5m7d3h"``)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RetentionPolicy:
    """Which backups to keep, by restic's rules (see :func:`habackup.plan_prune`): the newest
    ``keep_last``; the newest backup of each of the ``keep_hourly``, ``keep_daily``,
    ``keep_weekly``, ``keep_monthly`` and ``keep_yearly`` newest hours, days, ISO weeks, months
    and years that hold one, in time zone ``tz`` (an IANA name; None: this machine's); every
    backup within ``keep_within`` (``"2y5m7d3h"``) of the newest. ``"unlimited"`` keeps every
    bucket. At least one rule must be given.
    """

    keep_last: Keep = None
    keep_hourly: Keep = None
    keep_daily: Keep = None
    keep_weekly: Keep = None
    keep_monthly: Keep = None
    keep_yearly: Keep = None
    keep_within: str | None = None
    tz: str | None = None

    def rules(self) -> KeepRules:
        """The ``keep_*`` rules, as :func:`habackup.plan_prune` takes them."""
        return KeepRules(
            keep_last=self.keep_last,
            keep_hourly=self.keep_hourly,
            keep_daily=self.keep_daily,
            keep_weekly=self.keep_weekly,
            keep_monthly=self.keep_monthly,
            keep_yearly=self.keep_yearly,
            keep_within=self.keep_within,
        )


def _addons(value: Any) -> tuple[AddonMetadata, ...]:
    """The well-formed entries of a stored ``addons`` list (a slug at least)."""
    if not isinstance(value, list | tuple):
        return ()
    return tuple(
        AddonMetadata(
            name=_text_or_none(addon.get("name")),
            slug=addon["slug"],
            version=_text_or_none(addon.get("version")),
        )
        for addon in value
        if isinstance(addon, Mapping) and isinstance(addon.get("slug"), str)
    )


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


__all__ = [
    "AddonMetadata",
    "BackupDiff",
    "BackupMember",
    "BackupSyncMetadata",
    "ChangedMember",
    "CopyResult",
    "CreateOptions",
    "KeepRules",
    "KeptBackup",
    "MemberType",
    "PrunePlan",
    "PrunedBackup",
    "RetentionPolicy",
    "SyncedBackup",
    "VerifyResult",
]
