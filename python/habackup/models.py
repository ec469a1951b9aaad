"""The data an integration's sync agent deals in: what it uploads and what it lists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NotRequired, TypedDict


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


@dataclass(frozen=True, kw_only=True, slots=True)
class SyncedBackup:
    """One backup as an agent holds it; ``id`` is the agent's own id for its copy.

    An agent that stores the ``BackupSyncMetadata`` it was given and builds this from it gives
    Home Assistant back exactly what it uploaded. Every field after ``size`` has a default, so
    listings written before a field existed still work.
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
    """Add-ons in the backup: ``{"name", "slug", "version"}`` mappings (``AddonMetadata``)."""
    folders: tuple[str, ...] = ()
    extra_metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], *, id: str | None = None) -> SyncedBackup:
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


__all__ = ["AddonMetadata", "BackupSyncMetadata", "SyncedBackup"]
