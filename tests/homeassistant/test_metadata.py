"""What Home Assistant uploads comes back from a habackup agent field by field.

Home Assistant's restore dialog offers the add-ons and folders a backup lists, so a listing that
loses them restores a Supervisor backup without them. Backups go in through Home Assistant's own
upload view and are read back through its websocket API; Home Assistant's own backup.json reader
is the reference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hahelpers import (
    AGENT_ID,
    STORE,
    FolderSyncAgent,
    download,
    files_in,
    generate_backup,
    ha_agent,
    off_loop,
    setup_backup,
    write_supervisor_backup,
    ws_call,
)
from homeassistant.components.backup.util import read_backup
from homeassistant.core import HomeAssistant

import habackup

pytestmark = pytest.mark.usefixtures(
    "enable_custom_integrations", "ha_config_dir", "blocking_io_detection"
)

ADDONS = [
    {"name": "Mosquitto broker", "slug": "core_mosquitto", "version": "6.4.1", "size": 0.1},
    {"name": "Studio Code Server", "slug": "a0d7b954_vscode", "version": "5.19.0", "size": 1.2},
]
SUPERVISOR_FULL = {
    "slug": "5e1d7c2a",
    "name": "Full Backup 2026-01-02",
    "date": "2026-01-02T03:04:05.123456+00:00",
    "type": "full",
    "supervisor_version": "2026.01.1",
    "protected": False,
    "compressed": True,
    "version": 2,
    "homeassistant": {"version": "2026.1.3", "exclude_database": False, "size": 0.5},
    "addons": ADDONS,
    "folders": ["share", "ssl", "addons/local", "media"],
    "repositories": [],
    "extra": {
        "instance_id": "7b1f0c1e9b1c4d0a8e51e1f2a3b4c5d6",
        "with_automatic_settings": True,
        "supervisor.backup_request_date": "2026-01-02T03:04:00+00:00",
    },
}
# A partial backup of add-ons only: no Home Assistant, so no database and no version.
SUPERVISOR_ADDONS_ONLY = {
    **{k: v for k, v in SUPERVISOR_FULL.items() if k not in ("homeassistant", "folders")},
    "slug": "0a1b2c3d",
    "name": "Add-ons only",
    "type": "partial",
    "addons": ADDONS[:1],
}


def agent_spec(kind: str, tmp_path: Path) -> Any:
    if kind == "object-store":
        return {"name": STORE, "url": f"file://{tmp_path / 'store'}"}
    return FolderSyncAgent(STORE, tmp_path / "folder")


async def upload_through_home_assistant(
    hass_client: Callable[[], Awaitable[Any]], path: Path, data: bytes
) -> str:
    """POST the file to Home Assistant's upload view, for habackup's agent only."""
    client = await hass_client()
    form = aiohttp.FormData()
    form.add_field("file", data, filename=path.name, content_type="application/x-tar")
    response = await client.post(f"/api/backup/upload?agent_id={AGENT_ID}", data=form)
    assert response.status == HTTPStatus.CREATED, await response.text()
    return str((await response.json())["backup_id"])


@pytest.mark.parametrize("kind", ["object-store", "python-agent"])
@pytest.mark.parametrize(
    "backup_json", [SUPERVISOR_FULL, SUPERVISOR_ADDONS_ONLY], ids=["full", "addons-only"]
)
async def test_supervisor_backup_round_trips(
    hass: HomeAssistant,
    hass_ws_client: Callable[..., Awaitable[Any]],
    hass_client: Callable[[], Awaitable[Any]],
    tmp_path: Path,
    kind: str,
    backup_json: dict[str, Any],
) -> None:
    path = tmp_path / "supervisor.tar"
    await off_loop(hass, write_supervisor_backup, path, backup_json)
    data = await off_loop(hass, path.read_bytes)
    expected = await off_loop(hass, read_backup, path)  # Home Assistant's own reading of it
    assert expected.addons
    assert expected.homeassistant_included == ("homeassistant" in backup_json)
    await setup_backup(hass, [agent_spec(kind, tmp_path)])

    backup_id = await upload_through_home_assistant(hass_client, path, data)
    assert backup_id == backup_json["slug"]

    # The agent gives back exactly what Home Assistant read from the file...
    assert await ha_agent(hass).async_get_backup(backup_id) == expected
    assert await ha_agent(hass).async_list_backups() == [expected]

    # ...and so do the websocket commands the UI and its restore dialog use.
    client = await hass_ws_client(hass)
    info = await ws_call(client, type="backup/info")
    assert info["agent_errors"] == {}
    (listed,) = info["backups"]
    details = (await ws_call(client, type="backup/details", backup_id=backup_id))["backup"]
    for shown in (listed, details):
        assert shown["addons"] == [
            {"name": a["name"], "slug": a["slug"], "version": a["version"]}
            for a in backup_json["addons"]
        ]
        assert shown["folders"] == backup_json.get("folders", [])
        assert shown["homeassistant_included"] is expected.homeassistant_included
        assert shown["homeassistant_version"] == expected.homeassistant_version
        assert shown["database_included"] is expected.database_included
        assert shown["date"] == expected.date
        assert shown["name"] == backup_json["name"]
        assert shown["agents"] == {AGENT_ID: {"protected": False, "size": len(data)}}
        # Home Assistant recognises (or not) its own automatic backups by extra_metadata.
        assert shown["extra_metadata"] == backup_json["extra"]

    response = await download(hass_client, backup_id)
    assert response.status == HTTPStatus.OK
    assert hashlib.sha256(await response.read()).digest() == hashlib.sha256(data).digest()


async def test_backup_stored_before_these_fields_still_lists(
    hass: HomeAssistant,
    hass_ws_client: Callable[..., Awaitable[Any]],
    hass_client: Callable[[], Awaitable[Any]],
    tmp_path: Path,
) -> None:
    """A sidecar as habackup wrote it before addons, folders and homeassistant_included."""
    store = tmp_path / "store"
    source = tmp_path / "source"
    await off_loop(hass, lambda: (source / "www").mkdir(parents=True))
    await off_loop(hass, (source / "configuration.yaml").write_text, "homeassistant:\n")
    made = await habackup.async_create_archive(
        source, tmp_path / "old.tar", name="Old", ha_version="2025.4.4"
    )
    assert made.path is not None
    await off_loop(hass, lambda: store.mkdir())
    await off_loop(hass, made.path.rename, store / f"{made.slug}.tar")
    data = await off_loop(hass, (store / f"{made.slug}.tar").read_bytes)
    old_sidecar = {
        "date": made.date,
        "slug": made.slug,
        "size": len(data),
        "name": made.name,
        "homeassistant": made.homeassistant_version,
        "protected": False,
        "sha256": hashlib.sha256(data).hexdigest(),
        "database_included": True,
        "extra": {"instance_id": "older", "with_automatic_settings": False},
    }
    await off_loop(
        hass, (store / f"{made.slug}.metadata.json").write_text, json.dumps(old_sidecar)
    )
    await setup_backup(hass, [{"name": STORE, "url": f"file://{store}"}])

    client = await hass_ws_client(hass)
    info = await ws_call(client, type="backup/info")
    assert info["agent_errors"] == {}
    (listed,) = info["backups"]
    assert listed["backup_id"] == made.slug
    assert listed["addons"] == []
    assert listed["folders"] == []
    assert listed["homeassistant_included"] is True
    assert listed["homeassistant_version"] == made.homeassistant_version
    assert listed["database_included"] is True
    assert listed["agents"] == {AGENT_ID: {"protected": False, "size": len(data)}}
    response = await download(hass_client, made.slug)
    assert response.status == HTTPStatus.OK
    assert await response.read() == data


async def test_backup_decrypted_on_the_fly_for_an_unprotected_agent(
    hass: HomeAssistant,
    hass_ws_client: Callable[..., Awaitable[Any]],
    hass_client: Callable[[], Awaitable[Any]],
    tmp_path: Path,
) -> None:
    """Home Assistant announces the largest size a re-encoded backup can have and pads the
    stream to it: the adapter's size check holds, and the copy is a plain backup."""
    store = tmp_path / "store"
    await setup_backup(hass, [{"name": STORE, "url": f"file://{store}"}])
    client = await hass_ws_client(hass)
    await ws_call(client, type="backup/config/update", agents={AGENT_ID: {"protected": False}})

    backup = await generate_backup(hass, client, password="hunter2")
    backup_id = backup["backup_id"]
    assert backup["agents"][AGENT_ID]["protected"] is False
    assert await off_loop(hass, files_in, store) == [
        f"{backup_id}.metadata.json",
        f"{backup_id}.tar",
    ]
    response = await download(hass_client, backup_id)
    assert response.status == HTTPStatus.OK
    downloaded = tmp_path / "downloaded.tar"
    await off_loop(hass, downloaded.write_bytes, await response.read())
    assert (await off_loop(hass, habackup.read_backup, downloaded)).protected is False
    assert (await habackup.async_verify_archive(downloaded))["protected"] == 0
