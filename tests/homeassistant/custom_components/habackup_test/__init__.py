"""A custom integration whose backup platform hands habackup agents to Home Assistant.

Agents come from its YAML config, ``{"habackup_test": {"agents": [...]}}``, and from its config
entries (one agent each, the entry's data). Each agent is a spec: a ``habackup.BackupSyncAgent``
instance, or a dict with either ``"agent"`` (an instance) or ``"name"`` and ``"url"`` (an
``ObjectStoreBackupSyncAgent``, with ``"options"`` if given), plus optional ``"domain"``,
``"temp_dir"`` and ``"limits"`` for ``HabackupBackupAgent``.
"""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

from habackup.homeassistant import BackupAgentListeners

DOMAIN = "habackup_test"

# Home Assistant asks the backup platform for agents again whenever an entry loads or unloads.
BACKUP_AGENT_LISTENERS = BackupAgentListeners(DOMAIN)


async def async_setup(hass: HomeAssistant, config: dict[str, Any]) -> bool:
    """Keep the YAML agent list for the backup platform."""
    hass.data[DOMAIN] = list(config.get(DOMAIN, {}).get("agents", []))
    return True


async def async_setup_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """An entry is one more agent (its data is the spec); nothing to set up but the listener."""
    BACKUP_AGENT_LISTENERS.async_track_entry(hass, entry)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    return True
