"""Backups on habackup locations, through Home Assistant's own websocket API and HTTP views:
created, listed, downloaded and restored on each type of location against its real server;
retention; verification finding a damaged backup (problem sensor, repair issue); a location
that stays unreachable; the verify and copy actions; diagnostics and logs without secrets."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from hahelpers import download, off_loop, ws_call
from homeassistant.components.backup.const import DATA_MANAGER
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from integration import (
    DOMAIN,
    LocationSpec,
    add_location,
    agent_id,
    setup_backup_integration,
    state_of,
)
from pytest_homeassistant_custom_component.common import (
    async_fire_time_changed,
    async_mock_service,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from servers import free_port

# Every test also takes blocking_io_detection, as its last argument: freezegun (the freezer
# fixture) imports modules as it starts, which must happen before the detection is on.
pytestmark = pytest.mark.usefixtures(
    "enable_custom_integrations", "ha_config_dir", "socket_enabled"
)
WsClient = Callable[..., Awaitable[Any]]
ClientFactory = Callable[[], Awaitable[Any]]
LOCAL = "backup.local"


async def generate(
    hass: HomeAssistant, client: Any, agent_ids: list[str], **options: Any
) -> dict[str, Any]:
    """A backup created through the websocket API; waits until it and the location's own work
    after it (verification, retention) are done; returns it from backup/details."""
    await ws_call(client, type="backup/generate", agent_ids=agent_ids, name="Test", **options)
    await hass.async_block_till_done(wait_background_tasks=True)
    info = await ws_call(client, type="backup/info")
    assert info["last_action_event"]["state"] == "completed", info["last_action_event"]
    return max(info["backups"], key=lambda b: b["date"])  # type: ignore[no-any-return]


async def local_bytes(hass: HomeAssistant, backup_id: str) -> bytes:
    """The file Home Assistant's own local agent holds for ``backup_id``."""
    path: Path = hass.data[DATA_MANAGER].local_backup_agents[LOCAL].get_backup_path(backup_id)
    return await off_loop(hass, path.read_bytes)


async def test_backup_lands_lists_downloads_and_restores(
    hass: HomeAssistant,
    hass_ws_client: WsClient,
    hass_client: ClientFactory,
    ha_config_dir: Path,
    location: LocationSpec,
    blocking_io_detection: None,
) -> None:
    """On each type of location: a backup Home Assistant generates lands there (and is verified
    there), lists in backup/info, downloads through the HTTP view byte for byte, and restores
    through backup/restore (the restore file is written, naming what was downloaded)."""
    await setup_backup_integration(hass)
    entry = await add_location(hass, location)
    ours = agent_id(entry)
    client = await hass_ws_client(hass)

    backup = await generate(hass, client, [LOCAL, ours])
    backup_id = backup["backup_id"]
    assert backup["failed_agent_ids"] == []
    assert set(backup["agents"]) == {LOCAL, ours}
    info = await ws_call(client, type="backup/info")
    assert info["agent_errors"] == {}
    assert [b["backup_id"] for b in info["backups"]] == [backup_id]
    original = await local_bytes(hass, backup_id)
    assert backup["agents"][ours]["size"] == len(original)

    # The location's own view: one backup, verified after upload, no problem.
    assert state_of(hass, entry, "backups") == "1"
    assert state_of(hass, entry, "problem") == "off"
    assert dt_util.parse_datetime(state_of(hass, entry, "last_verified")) is not None
    assert dt_util.parse_datetime(state_of(hass, entry, "newest_backup")) is not None
    result = entry.runtime_data.verifications.results[backup_id]
    assert result.ok, result.problems

    response = await download(hass_client, backup_id, ours)
    assert response.status == HTTPStatus.OK
    assert await response.read() == original

    restarts = async_mock_service(hass, "homeassistant", "restart")
    await ws_call(client, type="backup/restore", backup_id=backup_id, agent_id=ours)
    await hass.async_block_till_done()
    assert len(restarts) == 1
    restore = json.loads(await off_loop(hass, (ha_config_dir / ".HA_RESTORE").read_text))
    assert restore["remove_after_restore"] is True  # downloaded from the location, not local
    assert restore["restore_homeassistant"] is True
    assert await off_loop(hass, Path(restore["path"]).read_bytes) == original


async def test_retention(
    hass: HomeAssistant,
    hass_ws_client: WsClient,
    folder_location: LocationSpec,
    freezer: FrozenDateTimeFactory,
    blocking_io_detection: None,
) -> None:
    """Keep the newest backup of each of the last 3 days: after each backup lands, what falls
    out is deleted through Home Assistant's manager, so backup/info agrees."""
    await setup_backup_integration(hass)
    entry = await add_location(hass, folder_location)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    options = {
        "transfers": {
            "limit_upload_mbit": 0,
            "limit_download_mbit": 0,
            "part_size_mib": 8,
            "max_concurrency": 4,
        },
        "retention": {"keep_daily": 3, "keep_weekly": 0, "keep_monthly": 0, "keep_yearly": 0},
        "verification": {
            "verify_after_upload": True,
            "verify_interval_days": 0,
            "verify_deep": False,
        },
    }
    await hass.config_entries.options.async_configure(result["flow_id"], options)
    await hass.async_block_till_done(wait_background_tasks=True)
    client = await hass_ws_client(hass)
    tz = dt_util.get_time_zone(hass.config.time_zone)
    made: dict[str, str] = {}
    for when in ("03-01 12:00", "03-02 12:00", "03-03 09:00", "03-03 15:00", "03-04 12:00"):
        freezer.move_to(dt_util.parse_datetime(f"2025-{when}:00").replace(tzinfo=tz))
        backup = await generate(hass, client, [agent_id(entry)])
        made[when] = backup["backup_id"]
    info = await ws_call(client, type="backup/info")
    kept = {b["backup_id"] for b in info["backups"]}
    assert kept == {made["03-02 12:00"], made["03-03 15:00"], made["03-04 12:00"]}
    stored = {b.slug for b in await entry.runtime_data.agent.async_list_backups()}
    assert stored == kept
    assert state_of(hass, entry, "backups") == "3"


async def flip_a_byte(hass: HomeAssistant, folder: Path, backup_id: str) -> None:
    path = folder / f"{backup_id}.tar"

    def flip() -> None:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))

    await off_loop(hass, flip)


async def test_damaged_backup_flips_the_problem_sensor_and_raises_a_repair(
    hass: HomeAssistant,
    hass_ws_client: WsClient,
    folder_location: LocationSpec,
    freezer: FrozenDateTimeFactory,
    blocking_io_detection: None,
) -> None:
    """A stored object damaged after upload is found by the periodic verification: the problem
    sensor turns on and a repair issue names the backup; deleting it clears both."""
    await setup_backup_integration(hass)
    entry = await add_location(hass, folder_location)
    client = await hass_ws_client(hass)
    backup = await generate(hass, client, [agent_id(entry)])
    assert state_of(hass, entry, "problem") == "off"

    await flip_a_byte(hass, Path(folder_location.form["path"]), backup["backup_id"])
    freezer.tick(timedelta(days=8))  # the periodic verification is due (every 7 days)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert state_of(hass, entry, "problem") == "on"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"verification_failed_{entry.entry_id}")
    assert issue is not None
    assert issue.translation_key == "verification_failed"
    assert "sha256" in issue.translation_placeholders["problem"]
    assert "Test" in issue.translation_placeholders["backups"]
    (failed,) = entry.runtime_data.verifications.failed()
    assert failed.backup_id == backup["backup_id"]

    await ws_call(client, type="backup/delete", backup_id=backup["backup_id"])
    await hass.async_block_till_done(wait_background_tasks=True)
    assert state_of(hass, entry, "problem") == "off"
    assert (
        ir.async_get(hass).async_get_issue(DOMAIN, f"verification_failed_{entry.entry_id}") is None
    )


class Forwarder:
    """A TCP relay to the S3 server that can be switched off: a location that stops answering
    (connections refused) and comes back at the same address."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
async def forwarder(s3_location: LocationSpec) -> AsyncIterator[Forwarder]:
    port = int(s3_location.form["endpoint_url"].rsplit(":", 1)[1])
    relay = Forwarder(port)
    await relay.start()
    yield relay
    if relay._server is not None and relay._server.is_serving():
        await relay.stop()


async def test_unreachable_location_raises_a_repair_until_it_answers(
    hass: HomeAssistant,
    s3_location: LocationSpec,
    forwarder: Forwarder,
    freezer: FrozenDateTimeFactory,
    blocking_io_detection: None,
) -> None:
    await setup_backup_integration(hass)
    spec = LocationSpec("s3", s3_location.form | {"endpoint_url": forwarder.url})
    entry = await add_location(hass, spec)
    issue_id = f"unreachable_{entry.entry_id}"
    await forwarder.stop()

    async def refresh() -> None:
        freezer.tick(timedelta(minutes=16))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)

    await refresh()
    # At once: the problem sensor; the listing's sensors are unknown now.
    assert state_of(hass, entry, "problem") == "on"
    assert state_of(hass, entry, "backups") == STATE_UNAVAILABLE
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    await refresh()
    await refresh()
    # Three failed listings in a row: it stays unreachable, a repair issue says so.
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "unreachable"
    assert issue.translation_placeholders["location"] == entry.title

    await forwarder.start()  # the same port again
    await refresh()
    assert state_of(hass, entry, "problem") == "off"
    assert state_of(hass, entry, "backups") == "0"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_verify_action(
    hass: HomeAssistant,
    hass_ws_client: WsClient,
    folder_location: LocationSpec,
    blocking_io_detection: None,
) -> None:
    """habackup.verify returns the results; deep verification opens an encrypted backup with
    Home Assistant's backup encryption key, and a backup under another password is no failure."""
    await setup_backup_integration(hass)
    entry = await add_location(hass, folder_location)
    client = await hass_ws_client(hass)
    key = "the encryption key 1234"
    await ws_call(client, type="backup/config/update", create_backup={"password": key})
    backup = await generate(hass, client, [agent_id(entry)], password=key)
    assert backup["agents"][agent_id(entry)]["protected"] is True

    async def verify(**data: Any) -> dict[str, Any]:
        response = await hass.services.async_call(
            DOMAIN,
            "verify",
            {"config_entry_id": entry.entry_id, **data},
            blocking=True,
            return_response=True,
        )
        assert response is not None
        return dict(response)

    quick = await verify()
    assert quick["ok"] is True
    (result,) = quick["results"]
    assert result["backup_id"] == backup["backup_id"]
    assert result["deep"] is False

    deep = await verify(backup_id=backup["backup_id"], deep=True)
    (result,) = deep["results"]
    assert result["ok"] is True
    assert result["deep"] is True, result
    assert key not in json.dumps(deep)

    await ws_call(client, type="backup/config/update", create_backup={"password": "another key"})
    other = await verify(backup_id=backup["backup_id"], deep=True)
    (result,) = other["results"]
    assert result["ok"] is True
    assert result["deep"] is False
    assert any("another password" in w or "other than" in w for w in result["warnings"])

    with pytest.raises(Exception, match="does not hold that backup"):
        await verify(backup_id="0123456789")


async def test_copy_action(
    hass: HomeAssistant,
    hass_ws_client: WsClient,
    hass_client: ClientFactory,
    location: LocationSpec,
    blocking_io_detection: None,
) -> None:
    """habackup.copy puts a backup Home Assistant already has (here only on its local agent) on
    a location, verified; the location then lists it and serves it byte for byte."""
    await setup_backup_integration(hass)
    entry = await add_location(hass, location)
    client = await hass_ws_client(hass)
    backup = await generate(hass, client, [LOCAL])
    backup_id = backup["backup_id"]

    response = await hass.services.async_call(
        DOMAIN,
        "copy",
        {"config_entry_id": entry.entry_id, "backup_id": backup_id},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert response["copied"] is True
    assert response["source_agent_id"] == LOCAL
    assert response["ok"] is True
    info = await ws_call(client, type="backup/details", backup_id=backup_id)
    assert set(info["backup"]["agents"]) == {LOCAL, agent_id(entry)}
    served = await download(hass_client, backup_id, agent_id(entry))
    assert await served.read() == await local_bytes(hass, backup_id)

    again = await hass.services.async_call(
        DOMAIN,
        "copy",
        {"config_entry_id": entry.entry_id, "backup_id": backup_id},
        blocking=True,
        return_response=True,
    )
    assert again is not None
    assert again["copied"] is False
    assert again["ok"] is True


async def test_diagnostics_and_logs_hold_no_secret(
    hass: HomeAssistant,
    hass_ws_client: WsClient,
    hass_client: ClientFactory,
    location: LocationSpec,
    caplog: pytest.LogCaptureFixture,
    blocking_io_detection: None,
) -> None:
    """Every log line at debug level, while a location is added (once with a wrong secret),
    backed up to, verified and diagnosed, and the diagnostics themselves: no credential."""
    caplog.set_level(logging.DEBUG)
    await setup_backup_integration(hass)
    # Before the HTTP server starts (Home Assistant 2025.4 cannot add its view later).
    assert await async_setup_component(hass, "diagnostics", {})
    if location.secrets:
        wrong = {k: "wrong-" + v for k, v in location.form.items() if v in location.secrets}
        if location.type == "s3":
            # moto takes any credentials: this attempt fails on the connection instead.
            wrong["endpoint_url"] = f"http://127.0.0.1:{free_port()}"
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": "user"})
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"next_step_id": location.type}
        )
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], location.form | wrong
        )
        assert result["errors"]
        hass.config_entries.flow.async_abort(result["flow_id"])  # the user closes the dialog
        secrets = [*location.secrets, *(v for k, v in wrong.items() if k != "endpoint_url")]
    else:
        secrets = []
    entry: ConfigEntry = await add_location(hass, location)
    client = await hass_ws_client(hass)
    await generate(hass, client, [agent_id(entry)])
    await hass.services.async_call(
        DOMAIN,
        "verify",
        {"config_entry_id": entry.entry_id, "deep": True},
        blocking=True,
        return_response=True,
    )
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    dumped = json.dumps(diagnostics)
    assert diagnostics["state"]["backups"]
    assert diagnostics["entry"]["data"]["type"] == location.type
    logged = caplog.text  # every record, formatted, tracebacks included
    assert "habackup" in logged  # the integration's and the engine's debug lines are there
    for secret in secrets:
        assert secret not in dumped
        assert secret not in logged, f"a secret in the log: ...{secret[-4:]}"
