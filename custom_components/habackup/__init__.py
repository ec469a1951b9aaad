"""habackup: S3, Azure Blob, Google Cloud Storage, WebDAV, SMB and SFTP shares and folders as
Home Assistant backup locations, added from the UI, with habackup's streaming Rust engine moving
the bytes.

Each config entry is one location: a backup agent (``backup.py``), a coordinator with its state
and work (``coordinator.py``), a device with sensors, and the ``habackup.verify`` and
``habackup.copy`` actions (``services.py``).
"""

from __future__ import annotations

from functools import partial

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    ConfigEntryError,
    ConfigEntryNotReady,
)
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.typing import ConfigType

from habackup import BackupAgentConfigError, BackupAgentProbeError, ObjectStoreBackupSyncAgent
from habackup.homeassistant import BackupAgentListeners

from .const import DOMAIN, ISSUE_UNREACHABLE, ISSUE_VERIFICATION_FAILED
from .coordinator import HabackupConfigEntry, HabackupCoordinator
from .locations import Target, kind_of
from .options import store_options
from .services import async_setup_services
from .verification import VerificationRecord

PLATFORMS = [Platform.BINARY_SENSOR, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

# Home Assistant asks the backup platform for agents again whenever a location loads or unloads.
BACKUP_AGENT_LISTENERS = BackupAgentListeners(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    async_setup_services(hass)
    return True


def entry_target(entry: HabackupConfigEntry) -> Target:
    """The entry's store, with its transfer options."""
    target = kind_of(entry.data).target(entry.data)
    return Target(target.url, {**target.options, **store_options(dict(entry.options))})


async def async_build_agent(
    hass: HomeAssistant, name: str, target: Target
) -> ObjectStoreBackupSyncAgent:
    """The store client; built off the event loop (its HTTP clients read the system's
    certificates)."""
    return await hass.async_add_executor_job(
        partial(ObjectStoreBackupSyncAgent, name, target.url, options=target.options)
    )


async def async_setup_entry(hass: HomeAssistant, entry: HabackupConfigEntry) -> bool:
    target = entry_target(entry)
    try:
        agent = await async_build_agent(hass, entry.title, target)
    except BackupAgentConfigError as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="invalid_url",
            translation_placeholders={"error": str(err)},
        ) from err
    try:
        await agent.async_probe()
    except BackupAgentProbeError as err:
        raise _setup_error(err, has_credentials=bool(kind_of(entry.data).secrets)) from err
    coordinator = HabackupCoordinator(hass, entry, agent, target)
    await coordinator.async_start()
    entry.async_on_unload(coordinator.async_stop)
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = coordinator
    BACKUP_AGENT_LISTENERS.async_track_entry(hass, entry)
    entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


def _setup_error(err: BackupAgentProbeError, *, has_credentials: bool) -> Exception:
    """The probe's verdict as Home Assistant's set-up errors: retry later, ask for new
    credentials, or stop until the user fixes the location."""
    placeholders = {"error": str(err)}
    # A changed SSH host key asks the user too: only they can check the new one on the server.
    if err.problem in ("invalid_auth", "permission_denied", "host_key") and has_credentials:
        return ConfigEntryAuthFailed(
            translation_domain=DOMAIN,
            translation_key=err.problem,
            translation_placeholders=placeholders,
        )
    if err.problem in ("bucket_not_found", "invalid_url"):
        return ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key=err.problem,
            translation_placeholders=placeholders,
        )
    # Unreachable for now, or a folder that cannot be written yet (a share not mounted).
    key = err.problem if err.problem in ("cannot_connect", "permission_denied") else "probe_failed"
    return ConfigEntryNotReady(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


async def _async_options_updated(hass: HomeAssistant, entry: HabackupConfigEntry) -> None:
    await hass.config_entries.async_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: HabackupConfigEntry) -> bool:
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: HabackupConfigEntry) -> None:
    """The location is gone: so are its verification record and repair issues. The backups it
    holds stay where they are."""
    await VerificationRecord(hass, entry.entry_id).async_remove()
    for issue in (ISSUE_UNREACHABLE, ISSUE_VERIFICATION_FAILED):
        ir.async_delete_issue(hass, DOMAIN, f"{issue}_{entry.entry_id}")
