"""The backup platform: one agent per loaded location, habackup's adapter inside.

Home Assistant's backup manager drops this integration's agents and asks again whenever a
location is loaded or unloaded (``BackupAgentListeners``), so a location appears in Settings ->
System -> Backups as soon as it is added and disappears when it is removed or disabled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from homeassistant.components.backup import AgentBackup, BackupAgent
from homeassistant.core import HomeAssistant

from habackup.homeassistant import HabackupBackupAgent

from . import BACKUP_AGENT_LISTENERS
from .const import DOMAIN
from .coordinator import HabackupConfigEntry, HabackupCoordinator

async_register_backup_agents_listener = BACKUP_AGENT_LISTENERS.async_register


async def async_get_backup_agents(hass: HomeAssistant, **kwargs: Any) -> list[BackupAgent]:
    """An agent for every loaded location; its id is ``habackup.<entry id>``."""
    entries: list[HabackupConfigEntry] = hass.config_entries.async_loaded_entries(DOMAIN)
    return [LocationAgent(hass, entry) for entry in entries]


class LocationAgent(BackupAgent):
    """A location as Home Assistant's backup manager sees it: habackup's adapter does the
    transfers; uploads and deletes are then followed by the location's own work (verification,
    retention, a fresh listing for its entities)."""

    domain = DOMAIN

    def __init__(self, hass: HomeAssistant, entry: HabackupConfigEntry) -> None:
        super().__init__()
        self.coordinator: HabackupCoordinator = entry.runtime_data
        self.adapter = HabackupBackupAgent(
            hass,
            self.coordinator.agent,
            domain=DOMAIN,
            name=entry.title,
            unique_id=entry.entry_id,
        )
        self.name = self.adapter.name
        self.unique_id = self.adapter.unique_id

    async def async_upload_backup(
        self,
        *,
        open_stream: Callable[[], Coroutine[Any, Any, AsyncIterator[bytes]]],
        backup: AgentBackup,
        **kwargs: Any,
    ) -> None:
        await self.adapter.async_upload_backup(open_stream=open_stream, backup=backup, **kwargs)
        self.coordinator.async_backup_landed(backup.backup_id)

    async def async_download_backup(self, backup_id: str, **kwargs: Any) -> AsyncIterator[bytes]:
        return await self.adapter.async_download_backup(backup_id, **kwargs)

    async def async_delete_backup(self, backup_id: str, **kwargs: Any) -> None:
        await self.adapter.async_delete_backup(backup_id, **kwargs)
        await self.coordinator.async_request_refresh()

    async def async_list_backups(self, **kwargs: Any) -> list[AgentBackup]:
        return await self.adapter.async_list_backups(**kwargs)

    async def async_get_backup(self, backup_id: str, **kwargs: Any) -> AgentBackup:
        return await self.adapter.async_get_backup(backup_id, **kwargs)
