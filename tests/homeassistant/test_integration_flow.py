"""The habackup integration's config flow, options, set-up, unload, reload and reauthentication,
in a real Home Assistant against the real test servers (moto, Azurite, wsgidav, sshd, smbd, a
folder)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hahelpers import off_loop, ws_call
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from integration import (
    DOMAIN,
    LocationSpec,
    Servers,
    add_location,
    agent_id,
    setup_backup_integration,
    start_flow,
    state_of,
    submit,
)
from servers import free_port

# socket_enabled: the tests make buckets and pick free ports; pytest-homeassistant still lets
# connections reach 127.0.0.1 only.
pytestmark = pytest.mark.usefixtures(
    "enable_custom_integrations", "ha_config_dir", "blocking_io_detection", "socket_enabled"
)
WsClient = Callable[..., Awaitable[Any]]


async def agent_ids(hass: HomeAssistant, hass_ws_client: WsClient) -> list[str]:
    client = await hass_ws_client(hass)
    info = await ws_call(client, type="backup/agents/info")
    return sorted(agent["agent_id"] for agent in info["agents"])


async def test_add_location(
    hass: HomeAssistant, hass_ws_client: WsClient, location: LocationSpec
) -> None:
    """Each type's form, probed, becomes an entry whose agent appears in Home Assistant's backup
    settings, with a device and its entities; unloading removes the agent, reloading brings it
    back."""
    spec = location
    await setup_backup_integration(hass)
    entry = await add_location(hass, spec)
    assert entry.data["type"] == spec.type
    assert entry.unique_id

    assert await agent_ids(hass, hass_ws_client) == sorted(["backup.local", agent_id(entry)])
    (device,) = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    assert (DOMAIN, entry.entry_id) in device.identifiers
    assert device.name == entry.title
    assert state_of(hass, entry, "backups") == "0"
    assert float(state_of(hass, entry, "size")) == 0
    assert state_of(hass, entry, "problem") == "off"

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert await agent_ids(hass, hass_ws_client) == ["backup.local"]

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await agent_ids(hass, hass_ws_client) == sorted(["backup.local", agent_id(entry)])

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    assert await agent_ids(hass, hass_ws_client) == sorted(["backup.local", agent_id(entry)])


async def test_same_location_twice_is_refused(
    hass: HomeAssistant, s3_location: LocationSpec
) -> None:
    await setup_backup_integration(hass)
    await add_location(hass, s3_location)
    result = await start_flow(hass, "s3")
    # The same bucket and prefix, written a little differently.
    form = s3_location.form | {
        "prefix": "/home/assistant/",
        "endpoint_url": s3_location.form["endpoint_url"] + "/",
    }
    result = await submit(hass, result["flow_id"], form)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    # Another prefix in the same bucket is another location.
    result = await start_flow(hass, "s3")
    result = await submit(hass, result["flow_id"], s3_location.form | {"prefix": "other"})
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def form_error(
    hass: HomeAssistant, location_type: str, form: dict[str, Any]
) -> dict[str, Any]:
    """Submit ``form`` and return the form shown again, with its errors."""
    result = await start_flow(hass, location_type)
    result = await submit(hass, result["flow_id"], form)
    assert result["type"] is FlowResultType.FORM, result
    assert result["step_id"] == location_type
    assert result["errors"]
    return result


async def refused(
    hass: HomeAssistant, location_type: str, form: dict[str, Any]
) -> dict[str, Any]:
    """``form_error``, then the user closes the dialog (a flow for the same location would
    otherwise still be in progress)."""
    result = await form_error(hass, location_type, form)
    hass.config_entries.flow.async_abort(result["flow_id"])
    return result


async def test_s3_errors(hass: HomeAssistant, s3_location: LocationSpec) -> None:
    await setup_backup_integration(hass)
    form = s3_location.form
    result = await form_error(hass, "s3", form | {"bucket": "no-such-bucket-here"})
    assert result["errors"] == {"base": "bucket_not_found"}
    assert "NoSuchBucket" in result["description_placeholders"]["error"]

    stopped = f"http://127.0.0.1:{free_port()}"
    result = await form_error(hass, "s3", form | {"endpoint_url": stopped})
    assert result["errors"] == {"base": "cannot_connect"}

    result = await form_error(hass, "s3", form | {"endpoint_url": "ftp://nas.local"})
    assert result["errors"] == {"endpoint_url": "invalid_url"}

    # Fixed, the same flow goes through.
    result = await submit(hass, result["flow_id"], form)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_webdav_errors(
    hass: HomeAssistant, servers: Servers, webdav_location: LocationSpec
) -> None:
    await setup_backup_integration(hass)
    form = webdav_location.form
    result = await form_error(hass, "webdav", form | {"password": "wrong-password"})
    assert result["errors"] == {"base": "invalid_auth"}
    assert "wrong-password" not in json.dumps(result, default=str)

    readonly = servers.webdav.url + servers.webdav.readonly_path
    result = await form_error(hass, "webdav", form | {"url": readonly})
    assert result["errors"] == {"base": "permission_denied"}

    # moto answers HTTP but is no WebDAV server.
    result = await form_error(hass, "webdav", form | {"url": servers.s3.endpoint + "/dav"})
    assert result["errors"] == {"base": "invalid_url"}

    with_user = form["url"].replace("http://", "http://someone:pw@")
    result = await form_error(hass, "webdav", form | {"url": with_user})
    assert result["errors"] == {"url": "url_with_credentials"}

    result = await form_error(hass, "webdav", form | {"url": f"http://127.0.0.1:{free_port()}/x"})
    assert result["errors"] == {"base": "cannot_connect"}


async def test_azure_errors(hass: HomeAssistant, azure_location: LocationSpec) -> None:
    await setup_backup_integration(hass)
    form = azure_location.form
    result = await form_error(hass, "azure", form | {"container": "no-such-container"})
    assert result["errors"] == {"base": "bucket_not_found"}
    wrong_key = "A" * 86 + "=="
    result = await form_error(hass, "azure", form | {"account_key": wrong_key})
    assert result["errors"] == {"base": "invalid_auth"}
    assert wrong_key not in json.dumps(result, default=str)


async def test_sftp_host_key_is_checked_by_the_user(
    hass: HomeAssistant, servers: Servers, sftp_location: LocationSpec
) -> None:
    """Without a host key the form shows the key the server presents and adds nothing; a key
    that is not the server's is refused; the fingerprint the user checked lets it through."""
    await setup_backup_integration(hass)
    ssh = servers.sftp
    # The key, not the password: the test user's password is the machine's (chpasswd), which a
    # concurrent test session elsewhere on this machine may have changed since.
    form = sftp_location.form | {"host_key": ""}
    result = await form_error(hass, "sftp", form)
    assert result["errors"] == {"host_key": "host_key_unknown"}
    presented = result["description_placeholders"]["fingerprint"]
    assert presented == f"ssh-ed25519 {ssh.host_fingerprint}"
    assert not hass.config_entries.async_entries(DOMAIN)
    assert ssh.client_key not in json.dumps(result, default=str)

    # Another server's key, pinned (the connection may be intercepted).
    other = "SHA256:" + "A" * 43
    result = await submit(hass, result["flow_id"], form | {"host_key": other})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"host_key": "host_key_mismatch"}
    assert ssh.host_fingerprint in result["description_placeholders"]["fingerprint"]
    assert not hass.config_entries.async_entries(DOMAIN)

    result = await submit(hass, result["flow_id"], form | {"host_key": ssh.host_fingerprint})
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    entry = result["result"]
    assert entry.data["host_key"] == ssh.host_fingerprint
    assert entry.title == f"SFTP 127.0.0.1:{form['path']}"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED


async def test_sftp_errors(
    hass: HomeAssistant, servers: Servers, sftp_location: LocationSpec
) -> None:
    await setup_backup_integration(hass)
    form = sftp_location.form
    no_key = form | {"private_key": ""}
    result = await refused(hass, "sftp", no_key)
    assert result["errors"] == {"base": "password_or_key"}
    result = await refused(hass, "sftp", no_key | {"password": "wrong-password"})
    assert result["errors"] == {"base": "invalid_auth"}
    assert "wrong-password" not in json.dumps(result, default=str)
    result = await refused(hass, "sftp", form | {"host": "sftp://127.0.0.1"})
    assert result["errors"] == {"host": "invalid_host"}
    result = await refused(hass, "sftp", form | {"host": "127.0.0.1:22"})
    assert result["errors"] == {"host": "invalid_host"}
    result = await refused(hass, "sftp", form | {"port": free_port()})
    assert result["errors"] == {"base": "cannot_connect"}
    # Pasted, but not a key; and the path of a file that does not exist.
    broken = "-----BEGIN OPENSSH PRIVATE KEY-----\nbroken\n-----END OPENSSH PRIVATE KEY-----"
    result = await refused(hass, "sftp", form | {"private_key": broken})
    assert result["errors"] == {"private_key": "invalid_private_key"}
    result = await refused(hass, "sftp", form | {"private_key": "/no/such/id_ed25519"})
    assert result["errors"] == {"private_key": "invalid_private_key"}
    assert "/no/such/id_ed25519" in result["description_placeholders"]["error"]
    result = await refused(hass, "sftp", form | {"host_key": "my server's key"})
    assert result["errors"] == {"host_key": "invalid_host_key"}
    # The same folder, written differently, is the same location.
    await add_location(hass, sftp_location)
    result = await start_flow(hass, "sftp")
    result = await submit(hass, result["flow_id"], form | {"path": form["path"] + "/"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_smb_errors(
    hass: HomeAssistant, servers: Servers, smb_location: LocationSpec
) -> None:
    await setup_backup_integration(hass)
    form = smb_location.form
    result = await refused(hass, "smb", form | {"password": "wrong-password"})
    assert result["errors"] == {"base": "invalid_auth"}
    assert "wrong-password" not in json.dumps(result, default=str)
    result = await refused(hass, "smb", form | {"share": "nosuchshare"})
    assert result["errors"] == {"base": "bucket_not_found"}
    result = await refused(hass, "smb", form | {"share": "backups/sub"})
    assert result["errors"] == {"share": "invalid_share"}
    result = await refused(hass, "smb", form | {"port": free_port()})
    assert result["errors"] == {"base": "cannot_connect"}
    # The share that requires encryption works as well.
    result = await start_flow(hass, "smb")
    result = await submit(hass, result["flow_id"], form | {"share": "secure"})
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    assert result["result"].title == f"SMB //127.0.0.1/secure/{form['path']}"


async def test_sftp_reauth_after_the_host_key_changed(
    hass: HomeAssistant, servers: Servers, sftp_location: LocationSpec
) -> None:
    """A server that presents another key than the pinned one does not load: Home Assistant
    asks for the key (showing the pinned one), and only the server's real key brings it back."""
    await setup_backup_integration(hass)
    entry = await add_location(hass, sftp_location)
    assert await hass.config_entries.async_unload(entry.entry_id)
    other = "SHA256:" + "B" * 43
    hass.config_entries.async_update_entry(entry, data=entry.data | {"host_key": other})
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["context"]["source"] == "reauth"
    result = await hass.config_entries.flow.async_configure(flow["flow_id"])
    assert result["step_id"] == "reauth_confirm"
    schema = result["data_schema"].schema
    assert {str(k) for k in schema} == {
        "password",
        "private_key",
        "private_key_passphrase",
        "host_key",
    }
    shown = {str(k): (k.description or {}).get("suggested_value") for k in schema}
    assert shown["host_key"] == other
    assert shown["private_key"] is None  # secrets are never shown back

    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {"private_key": sftp_location.form["private_key"], "host_key": other}
    )
    assert result["errors"] == {"host_key": "host_key_mismatch"}
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"],
        {
            "private_key": sftp_location.form["private_key"],
            "host_key": servers.sftp.host_fingerprint,
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED


async def test_folder_errors(
    hass: HomeAssistant, ha_config_dir: Path, tmp_path: Path, small_tmpfs: Path
) -> None:
    await setup_backup_integration(hass)
    result = await form_error(hass, "folder", {"path": "relative/folder"})
    assert result["errors"] == {"path": "path_not_absolute"}
    result = await form_error(hass, "folder", {"path": str(ha_config_dir / "nas")})
    assert result["errors"] == {"path": "inside_config_dir"}
    # A read-only disk (the tests run as root, which file modes do not stop).
    remount = ["mount", "-o", "remount,ro", str(small_tmpfs)]
    await off_loop(hass, lambda: subprocess.run(remount, check=True))
    result = await form_error(hass, "folder", {"path": str(small_tmpfs / "backups")})
    assert result["errors"] == {"base": "permission_denied"}
    await off_loop(hass, (tmp_path / "a-file").write_text, "not a folder")
    result = await form_error(hass, "folder", {"path": str(tmp_path / "a-file" / "sub")})
    assert result["errors"] == {"base": "probe_failed"}


async def test_gcs_errors(hass: HomeAssistant) -> None:
    """No GCS emulator speaks object_store's API: the key's own base URL points at a port where
    nothing listens (a real key goes to Google, which the tests never reach)."""
    await setup_backup_integration(hass)
    form = {"bucket": "bucket", "prefix": "ha", "service_account_json": "{not json"}
    result = await form_error(hass, "gcs", form)
    assert result["errors"] == {"service_account_json": "invalid_service_account"}
    key = {
        "client_email": "backup@project.iam.gserviceaccount.com",
        "private_key": "-----BEGIN PRIVATE KEY-----\nunused\n-----END PRIVATE KEY-----\n",
        "private_key_id": "unused",
        "disable_oauth": True,
        "gcs_base_url": f"http://127.0.0.1:{free_port()}",
    }
    result = await form_error(hass, "gcs", form | {"service_account_json": json.dumps(key)})
    assert result["errors"] == {"base": "cannot_connect"}


async def test_options(hass: HomeAssistant, folder_location: LocationSpec) -> None:
    """The options form shows the defaults; saving reloads the location with the new ones."""
    await setup_backup_integration(hass)
    entry = await add_location(hass, folder_location)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    options = {
        "transfers": {
            "limit_upload_mbit": 8.0,
            "limit_download_mbit": 0,
            "part_size_mib": 16,
            "max_concurrency": 2,
        },
        "retention": {"keep_daily": 7, "keep_weekly": 4, "keep_monthly": 12, "keep_yearly": 0},
        "verification": {
            "verify_after_upload": True,
            "verify_interval_days": 30,
            "verify_deep": True,
        },
    }
    result = await hass.config_entries.options.async_configure(result["flow_id"], options)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.options == options
    assert entry.state is ConfigEntryState.LOADED
    target = entry.runtime_data.target
    assert target.options["limit_upload"] == "1000000"  # 8 Mbit/s
    assert target.options["part_size"] == "16MiB"
    assert target.options["max_concurrency"] == "2"
    assert "limit_download" not in target.options


async def test_reauth(hass: HomeAssistant, webdav_location: LocationSpec) -> None:
    """Credentials that stop working: the entry does not load and asks for new ones; a wrong
    one is refused by the probe, the right one reloads the location."""
    await setup_backup_integration(hass)
    entry = await add_location(hass, webdav_location)
    assert await hass.config_entries.async_unload(entry.entry_id)
    hass.config_entries.async_update_entry(entry, data=entry.data | {"password": "changed"})
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["context"]["source"] == "reauth"
    result = await hass.config_entries.flow.async_configure(flow["flow_id"])
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert set(result["data_schema"].schema) == {"username", "password"}

    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {"username": webdav_location.form["username"], "password": "still-wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"],
        {
            "username": webdav_location.form["username"],
            "password": webdav_location.form["password"],
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    assert entry.data["password"] == webdav_location.form["password"]


async def test_setup_retries_while_unreachable(
    hass: HomeAssistant, s3_location: LocationSpec
) -> None:
    """A location that does not answer when Home Assistant starts is retried later."""
    await setup_backup_integration(hass)
    entry = await add_location(hass, s3_location)
    assert await hass.config_entries.async_unload(entry.entry_id)
    stopped = f"http://127.0.0.1:{free_port()}"
    hass.config_entries.async_update_entry(entry, data=entry.data | {"endpoint_url": stopped})
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
