"""The backup platform: every configured habackup agent, wrapped for Home Assistant."""

from __future__ import annotations

from typing import Any

from homeassistant.components.backup import BackupAgent
from homeassistant.core import HomeAssistant

from habackup import BackupSyncAgent, ObjectStoreBackupSyncAgent
from habackup.homeassistant import HabackupBackupAgent

from . import BACKUP_AGENT_LISTENERS, DOMAIN

async_register_backup_agents_listener = BACKUP_AGENT_LISTENERS.async_register


async def async_get_backup_agents(hass: HomeAssistant, **kwargs: Any) -> list[BackupAgent]:
    """One Home Assistant agent per spec; agent ids are ``habackup_test.<name>``."""
    specs = list(hass.data.get(DOMAIN, []))
    specs += [dict(entry.data) for entry in hass.config_entries.async_loaded_entries(DOMAIN)]
    return [agent_of(hass, spec) for spec in specs]


def agent_of(hass: HomeAssistant, spec: Any) -> HabackupBackupAgent:
    if isinstance(spec, BackupSyncAgent):
        spec = {"agent": spec}
    sync_agent = spec.get("agent") or ObjectStoreBackupSyncAgent(
        spec["name"], spec["url"], options=spec.get("options")
    )
    return HabackupBackupAgent(
        hass,
        sync_agent,
        domain=spec.get("domain", DOMAIN),
        temp_dir=spec.get("temp_dir"),
        limits=spec.get("limits"),
    )
