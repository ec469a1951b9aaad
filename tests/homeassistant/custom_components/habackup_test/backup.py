"""The backup platform: every configured habackup agent, wrapped for Home Assistant."""

from __future__ import annotations

from typing import Any

from homeassistant.components.backup import BackupAgent
from homeassistant.core import HomeAssistant

from habackup import BackupSyncAgent, ObjectStoreBackupSyncAgent
from habackup.homeassistant import HabackupBackupAgent

from . import DOMAIN


async def async_get_backup_agents(hass: HomeAssistant, **kwargs: Any) -> list[BackupAgent]:
    """One Home Assistant agent per habackup agent; agent ids are ``habackup_test.<name>``."""
    agents: list[BackupAgent] = []
    for spec in hass.data.get(DOMAIN, []):
        sync_agent = (
            spec
            if isinstance(spec, BackupSyncAgent)
            else ObjectStoreBackupSyncAgent(spec["name"], spec["url"])
        )
        agents.append(HabackupBackupAgent(hass, sync_agent, domain=DOMAIN))
    return agents
