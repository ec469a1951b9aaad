"""The entities' common part: one device per location, state from its coordinator."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import CONF_TYPE, DOMAIN
from .coordinator import HabackupCoordinator

MODELS = {
    "folder": "Local folder",
    "s3": "S3",
    "azure": "Azure Blob storage",
    "gcs": "Google Cloud Storage",
    "webdav": "WebDAV",
    "sftp": "SFTP",
    "smb": "SMB (Windows share)",
}


class LocationEntity(CoordinatorEntity[HabackupCoordinator]):
    """An entity of a habackup location."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: HabackupCoordinator, description: EntityDescription) -> None:
        super().__init__(coordinator)
        entry = coordinator.config_entry
        self.entity_description = description
        self._attr_unique_id = f"{entry.entry_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            name=entry.title,
            manufacturer="habackup",
            model=MODELS.get(str(entry.data[CONF_TYPE])),
            entry_type=DeviceEntryType.SERVICE,
        )
