"""A custom integration whose backup platform hands habackup agents to Home Assistant.

Its YAML config lists the agents: ``{"habackup_test": {"agents": [...]}}``, each either a
``habackup.BackupSyncAgent`` instance (tests build Python ones) or ``{"name": ..., "url": ...}`` for
an ``ObjectStoreBackupSyncAgent``.
"""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant

DOMAIN = "habackup_test"


async def async_setup(hass: HomeAssistant, config: dict[str, Any]) -> bool:
    """Keep the agent list for the backup platform."""
    hass.data[DOMAIN] = list(config.get(DOMAIN, {}).get("agents", []))
    return True
