"""Retention by calendar for one location: after backups land there, the location's own
listing is planned with habackup's ``plan_prune`` (restic's rules: the newest backup of each of
the last N days, weeks, months, years) and what the plan removes is deleted through Home
Assistant's backup manager, for this location only, so its records stay true."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.components.backup.const import DATA_MANAGER
from homeassistant.core import HomeAssistant

import habackup
from habackup import SyncedBackup

from .const import (
    LOGGER,
    OPT_KEEP_DAILY,
    OPT_KEEP_MONTHLY,
    OPT_KEEP_WEEKLY,
    OPT_KEEP_YEARLY,
    SECTION_RETENTION,
)

RULES = {
    OPT_KEEP_DAILY: "keep_daily",
    OPT_KEEP_WEEKLY: "keep_weekly",
    OPT_KEEP_MONTHLY: "keep_monthly",
    OPT_KEEP_YEARLY: "keep_yearly",
}


def policy(options: Mapping[str, Any]) -> dict[str, int]:
    """The rules set in the options (a count above 0), as ``plan_prune`` keywords."""
    section = options.get(SECTION_RETENTION, {})
    return {
        keyword: int(section[option])
        for option, keyword in RULES.items()
        if int(section.get(option) or 0) > 0
    }


def plan(
    hass: HomeAssistant, backups: list[SyncedBackup], rules: Mapping[str, int]
) -> habackup.PrunePlan:
    """Which backups the rules keep; calendar days in Home Assistant's time zone."""
    return habackup.plan_prune(backups, tz=hass.config.time_zone, **rules)


async def async_apply(
    hass: HomeAssistant, agent_id: str, backups: list[SyncedBackup], rules: Mapping[str, int]
) -> list[str]:
    """Delete what the plan removes from this location; returns the backup ids deleted."""
    removed: list[str] = []
    manager = hass.data[DATA_MANAGER]
    for backup in plan(hass, backups, rules).remove:
        errors = await manager.async_delete_backup(backup.slug, agent_ids=[agent_id])
        if errors:
            LOGGER.warning(
                "Retention could not delete backup %s from %s: %s",
                backup.slug,
                agent_id,
                errors[agent_id],
            )
            continue
        removed.append(backup.slug)
    if removed:
        LOGGER.info("Retention removed %d backup(s) from %s: %s", len(removed), agent_id, removed)
    return removed
