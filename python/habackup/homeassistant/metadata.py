"""Home Assistant's ``AgentBackup`` to habackup's metadata and back, field by field."""

from __future__ import annotations

import logging

from ..models import AddonMetadata, BackupSyncMetadata, SyncedBackup
from ._hass import AddonInfo, AgentBackup, Folder

_LOGGER = logging.getLogger(__package__)


def sync_metadata(backup: AgentBackup, size: int, sha256: str) -> BackupSyncMetadata:
    """Every field of Home Assistant's ``AgentBackup``, in habackup's metadata keys (an empty
    ``sha256`` when it is not known yet: the object store computes it on the way)."""
    return {
        "date": backup.date,
        "slug": backup.backup_id,
        "size": size,
        "name": backup.name,
        "homeassistant": backup.homeassistant_version or "",
        "protected": backup.protected,
        "sha256": sha256,
        "database_included": backup.database_included,
        "homeassistant_included": backup.homeassistant_included,
        "addons": [
            AddonMetadata(name=addon.name, slug=addon.slug, version=addon.version)
            for addon in backup.addons
        ],
        "folders": [str(folder) for folder in backup.folders],
        "extra": dict(backup.extra_metadata),
    }


def agent_backup(synced: SyncedBackup) -> AgentBackup:
    """Home Assistant's ``AgentBackup``, field by field from what the sync agent listed."""
    folders = []
    for folder in synced.folders:
        try:
            folders.append(Folder(folder))
        except ValueError:
            # A folder this Home Assistant has no name for (a newer Supervisor's): it stays in
            # the stored metadata; Home Assistant could not restore it anyway.
            _LOGGER.debug("Backup %s: unknown folder %r left out", synced.slug, folder)
    return AgentBackup(
        addons=[
            AddonInfo(name=addon.get("name"), slug=addon["slug"], version=addon.get("version"))
            for addon in synced.addons
        ],
        backup_id=synced.slug,
        date=synced.date,
        database_included=synced.database_included,
        extra_metadata=dict(synced.extra_metadata),
        folders=folders,
        homeassistant_included=synced.homeassistant_included,
        homeassistant_version=synced.homeassistant_version,
        name=synced.name,
        protected=synced.protected,
        size=synced.size,
    )
