"""The integration's actions.

- ``habackup.verify``: verify one backup, or all, where a location stores them (quick, or deep:
  every byte decoded, encrypted backups with Home Assistant's backup encryption key); the
  results are the response.
- ``habackup.copy``: copy a backup Home Assistant already has (on any of its backup locations)
  to a habackup location, then verify it there. Home Assistant itself cannot copy an existing
  backup to a new location.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import voluptuous as vol
from homeassistant.components.backup import BackupAgent, BackupNotFound
from homeassistant.components.backup.const import DATA_MANAGER
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv

import habackup

from .const import (
    ATTR_BACKUP_ID,
    ATTR_CONFIG_ENTRY_ID,
    ATTR_DEEP,
    ATTR_SOURCE_AGENT_ID,
    DOMAIN,
    SERVICE_COPY,
    SERVICE_VERIFY,
)
from .coordinator import HabackupConfigEntry, HabackupCoordinator
from .verification import Verified

READ_CHUNK = 1024 * 1024

VERIFY_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_BACKUP_ID): cv.string,
        vol.Optional(ATTR_DEEP, default=False): cv.boolean,
    }
)
COPY_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Required(ATTR_BACKUP_ID): cv.string,
        vol.Optional(ATTR_SOURCE_AGENT_ID): cv.string,
    }
)


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions (once, when the integration is set up)."""

    async def verify(call: ServiceCall) -> ServiceResponse:
        return await _async_verify(hass, call)

    async def copy(call: ServiceCall) -> ServiceResponse:
        return await _async_copy(hass, call)

    hass.services.async_register(
        DOMAIN,
        SERVICE_VERIFY,
        verify,
        schema=VERIFY_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN, SERVICE_COPY, copy, schema=COPY_SCHEMA, supports_response=SupportsResponse.OPTIONAL
    )


def _coordinator(hass: HomeAssistant, entry_id: str) -> HabackupCoordinator:
    entry: HabackupConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unknown_location",
            translation_placeholders={"location": entry_id},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="location_not_loaded",
            translation_placeholders={"location": entry.title},
        )
    return entry.runtime_data


def _results(coordinator: HabackupCoordinator, results: list[Verified]) -> dict[str, Any]:
    return {
        "location": coordinator.config_entry.title,
        "ok": all(r.ok for r in results),
        "results": [r.as_dict() for r in results],
    }


def _location_error(coordinator: HabackupCoordinator, err: habackup.BackupError) -> Exception:
    if isinstance(err, habackup.BackupNotFound):
        return ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="backup_not_found",
            translation_placeholders={"location": coordinator.config_entry.title},
        )
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="location_error",
        translation_placeholders={"location": coordinator.config_entry.title, "error": str(err)},
    )


async def _async_verify(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    coordinator = _coordinator(hass, call.data[ATTR_CONFIG_ENTRY_ID])
    backup_id = call.data.get(ATTR_BACKUP_ID)
    try:
        results = await coordinator.async_verify(
            [backup_id] if backup_id else None, deep=call.data[ATTR_DEEP]
        )
    except habackup.BackupError as err:
        raise _location_error(coordinator, err) from err
    return _results(coordinator, results)


def _source_agent(
    hass: HomeAssistant, held_by: list[str], wanted: str | None, destination: str
) -> BackupAgent:
    """The agent to copy from: the one asked for, else a local one, else any other."""
    manager = hass.data[DATA_MANAGER]
    if wanted is not None:
        if wanted not in held_by:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="source_without_backup",
                translation_placeholders={"agent_id": wanted},
            )
        return manager.backup_agents[wanted]
    candidates = [agent_id for agent_id in held_by if agent_id != destination]
    local = [agent_id for agent_id in candidates if agent_id in manager.local_backup_agents]
    return manager.backup_agents[(local or candidates)[0]]


async def _async_copy(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    coordinator = _coordinator(hass, call.data[ATTR_CONFIG_ENTRY_ID])
    backup_id: str = call.data[ATTR_BACKUP_ID]
    destination = coordinator.agent_id
    manager = hass.data[DATA_MANAGER]
    backup, _ = await manager.async_get_backup(backup_id)
    if backup is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="backup_unknown",
            translation_placeholders={"backup_id": backup_id},
        )
    held_by = list(backup.agents)
    if destination in held_by:
        results = await coordinator.async_verify([backup_id])
        return {"copied": False, **_results(coordinator, results)}
    source = _source_agent(hass, held_by, call.data.get(ATTR_SOURCE_AGENT_ID), destination)
    target = _destination_agent(hass, destination)
    try:
        agent_backup = await source.async_get_backup(backup_id)

        async def open_stream() -> AsyncIterator[bytes]:
            return await _open_source(hass, source, backup_id)

        # The adapter streams the source's bytes into the store (through a temp file in
        # tmp_backups where it cannot stream yet).
        await target.adapter.async_upload_backup(open_stream=open_stream, backup=agent_backup)
    except (BackupNotFound, habackup.BackupError, HomeAssistantError) as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="copy_failed",
            translation_placeholders={
                "backup_id": backup_id,
                "location": coordinator.config_entry.title,
                "error": str(err),
            },
        ) from err
    results = await coordinator.async_after_upload([backup_id], verify=True)
    if not results or not all(r.ok for r in results):
        problems = "; ".join(p for r in results for p in r.problems) or "not found after upload"
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="copy_not_verified",
            translation_placeholders={
                "backup_id": backup_id,
                "location": coordinator.config_entry.title,
                "error": problems,
            },
        )
    return {"copied": True, "source_agent_id": source.agent_id, **_results(coordinator, results)}


async def _open_source(
    hass: HomeAssistant, source: BackupAgent, backup_id: str
) -> AsyncIterator[bytes]:
    """The backup's bytes from ``source``. Home Assistant's local agents serve no downloads
    (its own views read their files): their file is read here, off the event loop."""
    manager = hass.data[DATA_MANAGER]
    if source.agent_id not in manager.local_backup_agents:
        return await source.async_download_backup(backup_id)
    path: Path = manager.local_backup_agents[source.agent_id].get_backup_path(backup_id)
    file = await hass.async_add_executor_job(path.open, "rb")

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while chunk := await hass.async_add_executor_job(file.read, READ_CHUNK):
                yield chunk
        finally:
            await hass.async_add_executor_job(file.close)

    return chunks()


def _destination_agent(hass: HomeAssistant, agent_id: str) -> Any:
    """The location's agent as Home Assistant's manager holds it (a ``LocationAgent``)."""
    return hass.data[DATA_MANAGER].backup_agents[agent_id]
