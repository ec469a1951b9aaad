"""Helpers for the tests of the habackup integration (``custom_components/habackup``): setting
up Home Assistant's backup integration, adding a location through the config flow as the UI
does, and reading the location's entities."""

from __future__ import annotations

import itertools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hahelpers import async_initialize_backup
from homeassistant import config_entries
from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from servers import AzuriteServer, S3Server, WebDavServer

DOMAIN = "habackup"


@dataclass(frozen=True)
class SshEndpoint:
    """sshd of this run (``net_servers``): the test user logs in with a password or a key."""

    port: int
    user: str
    password: str
    client_key: str  # an Ed25519 private key the server accepts, OpenSSH format
    host_key: str  # the server's public key line
    host_fingerprint: str  # its SHA256:... fingerprint
    data: str  # a folder the user may write to (absolute)


@dataclass(frozen=True)
class SmbEndpoint:
    """smbd of this run: share ``backups`` (and ``secure``, which requires encryption)."""

    port: int
    user: str
    password: str


def _network(endpoint: dict[str, Any], kind: type[Any]) -> Any:
    """sshd and smbd need root and Debian's packages; without them their tests skip."""
    if "unavailable" in endpoint:
        pytest.skip(f"no test server: {endpoint['unavailable']}")
    return kind(**endpoint)


@dataclass(frozen=True)
class Servers:
    """The test servers of this run: ``tests/serve.py`` started them (``scripts/ha-test.sh``)
    and put their endpoints in ``HABACKUP_TEST_SERVERS``."""

    s3: S3Server
    webdav: WebDavServer
    azure: AzuriteServer
    sftp_endpoint: dict[str, Any]
    smb_endpoint: dict[str, Any]

    @property
    def sftp(self) -> SshEndpoint:
        return _network(self.sftp_endpoint, SshEndpoint)  # type: ignore[no-any-return]

    @property
    def smb(self) -> SmbEndpoint:
        return _network(self.smb_endpoint, SmbEndpoint)  # type: ignore[no-any-return]

    @classmethod
    def from_environment(cls) -> Servers:
        raw = os.environ.get("HABACKUP_TEST_SERVERS")
        if not raw:
            pytest.fail(
                "HABACKUP_TEST_SERVERS is not set: run the Home Assistant suite through "
                "scripts/ha-test.sh, which starts the test servers"
            )
        endpoints = json.loads(raw)
        dav = endpoints["webdav"]
        return cls(
            s3=S3Server(**endpoints["s3"]),
            webdav=WebDavServer(**{**dav, "root": Path(dav["root"])}),
            azure=AzuriteServer(**endpoints["azure"]),
            sftp_endpoint=endpoints["sftp"],
            smb_endpoint=endpoints["smb"],
        )


@dataclass(frozen=True)
class LocationSpec:
    """A location as the config flow takes it: the menu option, the form, and its secrets."""

    type: str
    form: dict[str, Any]
    secrets: tuple[str, ...] = ()


_names = itertools.count()


def unique_name(request: pytest.FixtureRequest) -> str:
    """A bucket, container or folder name of 3-63 of [a-z0-9-], unique in the run."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    return f"ha{next(_names)}-{os.getpid()}-{stem or 'x'}"[:63].strip("-")


async def setup_backup_integration(hass: HomeAssistant) -> None:
    """Home Assistant's backup integration (which the location's manifest depends on)."""
    if async_initialize_backup is not None:
        async_initialize_backup(hass)
    assert await async_setup_component(hass, "backup", {})
    await hass.async_block_till_done()


async def start_flow(hass: HomeAssistant, location_type: str) -> dict[str, Any]:
    """The user picks "Add integration", habackup, then a location type from the menu."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert location_type in result["menu_options"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": location_type}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == location_type
    return dict(result)


async def submit(hass: HomeAssistant, flow_id: str, form: dict[str, Any]) -> dict[str, Any]:
    return dict(await hass.config_entries.flow.async_configure(flow_id, form))


async def add_location(hass: HomeAssistant, spec: LocationSpec) -> ConfigEntry:
    """Add ``spec`` through the config flow, as the UI does, and wait until it is loaded."""
    result = await start_flow(hass, spec.type)
    result = await submit(hass, result["flow_id"], spec.form)
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    entry: ConfigEntry = result["result"]
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    return entry


def agent_id(entry: ConfigEntry) -> str:
    return f"{DOMAIN}.{entry.entry_id}"


def entity_id(hass: HomeAssistant, entry: ConfigEntry, key: str) -> str:
    """The entity of ``entry`` with unique-id suffix ``key``."""
    registry = er.async_get(hass)
    platform = "binary_sensor" if key == "problem" else "sensor"
    found = registry.async_get_entity_id(platform, DOMAIN, f"{entry.entry_id}_{key}")
    assert found is not None, f"no {platform} {key} for {entry.title}"
    return found


def state_of(hass: HomeAssistant, entry: ConfigEntry, key: str) -> str:
    state = hass.states.get(entity_id(hass, entry, key))
    assert state is not None
    return state.state
