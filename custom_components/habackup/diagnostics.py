"""Diagnostics of a location: its settings without credentials, its state, what it holds and
what verification found."""

from __future__ import annotations

from typing import Any

from homeassistant.components.backup.const import DATA_MANAGER
from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .coordinator import HabackupConfigEntry
from .locations import SECRET_FIELDS


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: HabackupConfigEntry
) -> dict[str, Any]:
    coordinator = entry.runtime_data
    state = coordinator.data
    agent = coordinator.agent
    manager = hass.data[DATA_MANAGER]
    return {
        "entry": {
            "title": entry.title,
            "data": async_redact_data(dict(entry.data), SECRET_FIELDS),
            "options": dict(entry.options),
        },
        # The store URL as the engine shows it: without credentials or query string.
        "store": {"kind": agent.kind, "url": agent.url},
        "agent_id": coordinator.agent_id,
        "agent_loaded": coordinator.agent_id in manager.backup_agents,
        "state": {
            "reachable": state.reachable,
            "error": state.error,
            "backups": [
                {
                    "backup_id": b.slug,
                    "name": b.name,
                    "date": b.date,
                    "size": b.size,
                    "protected": b.protected,
                }
                for b in state.backups
            ],
        },
        "verification": {
            "last_full_run": _iso(coordinator.verifications.last_full_run),
            "last_success": _iso(coordinator.verifications.last_success),
            "results": [r.as_dict() for r in coordinator.verifications.results.values()],
        },
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
