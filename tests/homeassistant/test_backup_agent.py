"""habackup agents under Home Assistant's real backup manager, websocket API and HTTP views.

A custom integration (``custom_components/habackup_test``) returns habackup sync agents wrapped in
``habackup.homeassistant.HabackupBackupAgent``; Home Assistant creates, lists, downloads and
deletes backups through them, with its blocking-call detection on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import shutil
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar

import pytest
from custom_components.habackup_test import DOMAIN
from homeassistant.components.backup import AgentBackup, BackupAgentError, BackupNotFound
from homeassistant.components.backup.agent import BackupAgentUnreachableError
from homeassistant.core import HomeAssistant
from homeassistant.helpers.backup import DATA_MANAGER, async_initialize_backup
from homeassistant.setup import async_setup_component

import habackup
from habackup.homeassistant import HabackupBackupAgent

T = TypeVar("T")
STORE = "store"
AGENT_ID = f"{DOMAIN}.{STORE}"

pytestmark = pytest.mark.usefixtures(
    "enable_custom_integrations", "ha_config_dir", "blocking_io_detection"
)


class FolderSyncAgent(habackup.BackupSyncAgent):
    """A plain Python sync agent with ids of its own (``copy-<slug>``), I/O off the loop."""

    def __init__(self, name: str, folder: Path) -> None:
        super().__init__(name)
        self.folder = folder

    async def async_upload_backup(
        self, *, path: Path, metadata: habackup.BackupSyncMetadata, **kwargs: Any
    ) -> None:
        def upload() -> None:
            self.folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, self.folder / f"copy-{metadata['slug']}.tar")
            (self.folder / f"copy-{metadata['slug']}.json").write_text(json.dumps(metadata))

        await asyncio.to_thread(upload)

    async def async_download_backup(self, *, id: str, path: Path, **kwargs: Any) -> None:
        if not await asyncio.to_thread((self.folder / f"{id}.tar").exists):
            raise habackup.BackupNotFound(f"no {id}")
        await asyncio.to_thread(shutil.copyfile, self.folder / f"{id}.tar", path)

    async def async_list_backups(self, **kwargs: Any) -> list[habackup.SyncedBackup]:
        def listing() -> list[habackup.SyncedBackup]:
            backups = []
            for sidecar in sorted(self.folder.glob("*.json")):
                meta = json.loads(sidecar.read_text())
                backups.append(
                    habackup.SyncedBackup(
                        id=sidecar.stem,
                        slug=meta["slug"],
                        name=meta["name"],
                        date=meta["date"],
                        size=meta["size"],
                        protected=meta["protected"],
                        sha256=meta["sha256"],
                        homeassistant_version=meta["homeassistant"],
                        database_included=meta["database_included"],
                        extra_metadata=meta["extra"],
                    )
                )
            return backups

        return await asyncio.to_thread(listing)

    # No async_delete_backup: the base class raises NotImplementedError.


class FailingSyncAgent(habackup.BackupSyncAgent):
    """Raises the given habackup error from every method."""

    def __init__(self, name: str, error: Exception) -> None:
        super().__init__(name)
        self.error = error

    async def async_upload_backup(self, **kwargs: Any) -> None:
        raise self.error

    async def async_download_backup(self, **kwargs: Any) -> None:
        raise self.error

    async def async_list_backups(self, **kwargs: Any) -> list[habackup.SyncedBackup]:
        raise self.error

    async def async_delete_backup(self, **kwargs: Any) -> None:
        raise self.error


async def setup_backup(hass: HomeAssistant, agents: list[Any]) -> None:
    """Home Assistant's backup integration plus habackup_test with ``agents``."""
    async_initialize_backup(hass)
    assert await async_setup_component(hass, DOMAIN, {DOMAIN: {"agents": agents}})
    assert await async_setup_component(hass, "backup", {})
    await hass.async_block_till_done()


async def ws_call(client: Any, **message: Any) -> Any:
    """Send one websocket command and return its result."""
    await client.send_json_auto_id(message)
    response = await client.receive_json()
    assert response["success"], response
    return response["result"]


async def generate_backup(hass: HomeAssistant, client: Any, **options: Any) -> dict[str, Any]:
    """Create a backup through the websocket API, wait for it, and return it from backup/info."""
    await ws_call(client, type="backup/generate", agent_ids=[AGENT_ID], name="Test", **options)
    await hass.async_block_till_done(wait_background_tasks=True)
    info = await ws_call(client, type="backup/info")
    assert info["agent_errors"] == {}
    assert info["last_action_event"]["state"] == "completed", info["last_action_event"]
    (backup,) = info["backups"]
    return backup  # type: ignore[no-any-return]


async def off_loop(hass: HomeAssistant, func: Callable[..., T], *args: Any) -> T:
    """The tests' own file access, kept off the loop too (the detection watches the loop)."""
    return await hass.async_add_executor_job(func, *args)


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


async def download(hass_client: Callable[[], Awaitable[Any]], backup_id: str) -> Any:
    client = await hass_client()
    return await client.get(f"/api/backup/download/{backup_id}?agent_id={AGENT_ID}")


async def test_create_list_download_delete(
    hass: HomeAssistant,
    hass_ws_client: Callable[..., Awaitable[Any]],
    hass_client: Callable[[], Awaitable[Any]],
    ha_config_dir: Path,
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    await setup_backup(hass, [{"name": STORE, "url": f"file://{store}"}])
    client = await hass_ws_client(hass)

    agents = await ws_call(client, type="backup/agents/info")
    assert {"agent_id": AGENT_ID, "name": STORE} in agents["agents"]

    backup = await generate_backup(hass, client)
    backup_id = backup["backup_id"]
    assert backup["agents"] == {
        AGENT_ID: {"protected": False, "size": backup["agents"][AGENT_ID]["size"]}
    }
    assert backup["name"] == "Test"
    assert backup["database_included"] is True
    assert backup["homeassistant_included"] is True
    assert backup["homeassistant_version"]
    assert backup["failed_agent_ids"] == []
    # Home Assistant recognises its own backup through extra_metadata's instance_id.
    assert backup["with_automatic_settings"] is False

    # The object-store agent holds the backup and its metadata; no temp file is left behind.
    assert await off_loop(hass, files_in, store) == [
        f"{backup_id}.metadata.json",
        f"{backup_id}.tar",
    ]
    assert await off_loop(hass, files_in, ha_config_dir / "tmp_backups") == []
    sidecar = json.loads(await off_loop(hass, (store / f"{backup_id}.metadata.json").read_text))
    assert sidecar["slug"] == backup_id
    assert sidecar["size"] == backup["agents"][AGENT_ID]["size"]
    assert sidecar["extra"]["with_automatic_settings"] is False

    details = await ws_call(client, type="backup/details", backup_id=backup_id)
    assert details["backup"]["backup_id"] == backup_id
    assert details["agent_errors"] == {}

    response = await download(hass_client, backup_id)
    assert response.status == HTTPStatus.OK
    body = await response.read()
    assert len(body) == sidecar["size"]
    assert hashlib.sha256(body).hexdigest() == sidecar["sha256"]
    assert await off_loop(hass, files_in, ha_config_dir / "tmp_backups") == []

    # What came out of Home Assistant's download view is a backup habackup reads and decodes.
    downloaded = tmp_path / "downloaded.tar"
    await off_loop(hass, downloaded.write_bytes, body)
    read = await off_loop(hass, habackup.read_backup, downloaded)
    assert read.slug == backup_id
    assert read.name == "Test"
    assert read.protected is False
    verified = await habackup.async_verify_archive(downloaded)
    assert verified["protected"] == 0
    assert verified["members"] >= 5  # data/, three files and www/ from the ha_config_dir fixture

    assert await ws_call(client, type="backup/delete", backup_id=backup_id) == {"agent_errors": {}}
    assert await off_loop(hass, files_in, store) == []
    info = await ws_call(client, type="backup/info")
    assert info["backups"] == []
    assert info["agent_errors"] == {}


async def test_protected_backup(
    hass: HomeAssistant,
    hass_ws_client: Callable[..., Awaitable[Any]],
    hass_client: Callable[[], Awaitable[Any]],
    tmp_path: Path,
) -> None:
    await setup_backup(hass, [{"name": STORE, "url": f"file://{tmp_path / 'store'}"}])
    client = await hass_ws_client(hass)

    backup = await generate_backup(hass, client, password="hunter2")
    assert backup["agents"][AGENT_ID]["protected"] is True

    response = await download(hass_client, backup["backup_id"])
    assert response.status == HTTPStatus.OK
    downloaded = tmp_path / "downloaded.tar"
    await off_loop(hass, downloaded.write_bytes, await response.read())
    assert (await off_loop(hass, habackup.read_backup, downloaded)).protected is True
    verified = await habackup.async_verify_archive(downloaded, password="hunter2")
    assert verified["protected"] == 1
    assert verified["securetar_version"] in (2, 3)
    assert not await off_loop(hass, habackup.validate_password, downloaded, "wrong")


async def test_not_found(
    hass: HomeAssistant,
    hass_ws_client: Callable[..., Awaitable[Any]],
    hass_client: Callable[[], Awaitable[Any]],
    tmp_path: Path,
) -> None:
    await setup_backup(hass, [{"name": STORE, "url": f"file://{tmp_path / 'store'}"}])
    client = await hass_ws_client(hass)

    info = await ws_call(client, type="backup/info")
    assert info["backups"] == []
    assert info["agent_errors"] == {}
    details = await ws_call(client, type="backup/details", backup_id="deadbeef")
    assert details == {"agent_errors": {}, "backup": None}
    # Home Assistant's manager skips BackupNotFound when deleting everywhere.
    assert await ws_call(client, type="backup/delete", backup_id="deadbeef") == {"agent_errors": {}}
    assert (await download(hass_client, "deadbeef")).status == HTTPStatus.NOT_FOUND
    # An id the store could never hold is just as absent.
    for odd in ("bad.id", "a%2Fb"):
        assert (await download(hass_client, odd)).status == HTTPStatus.NOT_FOUND
    for odd in ("bad.id", "a/b", "../x"):
        result = await ws_call(client, type="backup/delete", backup_id=odd)
        assert result == {"agent_errors": {}}

    agent = hass.data[DATA_MANAGER].backup_agents[AGENT_ID]
    assert isinstance(agent, HabackupBackupAgent)
    with pytest.raises(BackupNotFound):
        await agent.async_get_backup("deadbeef")
    with pytest.raises(BackupNotFound):
        await agent.async_delete_backup("deadbeef")
    for backup_id in ("deadbeef", "../x"):
        with pytest.raises(BackupNotFound):
            await agent.async_download_backup(backup_id)


async def test_python_sync_agent_with_its_own_ids(
    hass: HomeAssistant,
    hass_ws_client: Callable[..., Awaitable[Any]],
    hass_client: Callable[[], Awaitable[Any]],
    tmp_path: Path,
) -> None:
    """Home Assistant names backups by slug; the adapter finds the agent's own id for it."""
    folder = tmp_path / "folder"
    await setup_backup(hass, [FolderSyncAgent(STORE, folder)])
    client = await hass_ws_client(hass)

    backup = await generate_backup(hass, client)
    backup_id = backup["backup_id"]
    assert await off_loop(hass, files_in, folder) == [
        f"copy-{backup_id}.json",
        f"copy-{backup_id}.tar",
    ]

    response = await download(hass_client, backup_id)
    assert response.status == HTTPStatus.OK
    assert await response.read() == await off_loop(
        hass, (folder / f"copy-{backup_id}.tar").read_bytes
    )

    # This agent cannot delete: Home Assistant reports it as that agent's error.
    result = await ws_call(client, type="backup/delete", backup_id=backup_id)
    assert AGENT_ID in result["agent_errors"]
    assert "does not support delete" in result["agent_errors"][AGENT_ID]


@pytest.mark.parametrize(
    ("error", "expected", "message"),
    [
        # Home Assistant shows its own fixed message for this one; the detail is the __cause__.
        (
            habackup.BackupAgentUnreachableError("server down"),
            BackupAgentUnreachableError,
            "The backup agent is unreachable.",
        ),
        (habackup.BackupAgentError("quota exceeded"), BackupAgentError, "quota exceeded"),
        (habackup.BackupNotFound("gone"), BackupNotFound, "gone"),
    ],
)
async def test_errors_become_home_assistant_errors(
    hass: HomeAssistant,
    hass_ws_client: Callable[..., Awaitable[Any]],
    error: Exception,
    expected: type[Exception],
    message: str,
) -> None:
    await setup_backup(hass, [FailingSyncAgent(STORE, error)])
    agent = hass.data[DATA_MANAGER].backup_agents[AGENT_ID]

    with pytest.raises(expected) as raised:
        await agent.async_list_backups()
    assert str(raised.value) == message
    assert raised.value.__cause__ is error

    backup = AgentBackup(
        addons=[],
        backup_id="abcd1234",
        date="2025-04-01T12:00:00+00:00",
        database_included=True,
        extra_metadata={},
        folders=[],
        homeassistant_included=True,
        homeassistant_version="2025.4.4",
        name="Test",
        protected=False,
        size=5,
    )

    async def open_stream() -> Any:
        async def chunks() -> Any:
            yield b"hello"

        return chunks()

    with pytest.raises(expected):
        await agent.async_upload_backup(open_stream=open_stream, backup=backup)
    # The spooled upload is gone even though the agent failed.
    assert await off_loop(hass, files_in, Path(hass.config.path("tmp_backups"))) == []

    if expected is not BackupNotFound:
        # Listing errors reach the user as that agent's error, never as a failure of the view.
        client = await hass_ws_client(hass)
        info = await ws_call(client, type="backup/info")
        assert info["agent_errors"] == {AGENT_ID: message}


def agent_backup_of(backup: habackup.Backup) -> AgentBackup:
    """Home Assistant's description of a backup file habackup made."""
    return AgentBackup(
        addons=[],
        backup_id=backup.slug,
        date=backup.date,
        database_included=backup.database_included,
        extra_metadata={"instance_id": "test", "with_automatic_settings": False},
        folders=[],
        homeassistant_included=True,
        homeassistant_version=backup.homeassistant_version,
        name=backup.name,
        protected=backup.protected,
        size=backup.size,
    )


def chunks_of(path: Path, size: int) -> list[bytes]:
    data = path.read_bytes()
    return [data[i : i + size] for i in range(0, len(data), size)]


async def test_large_upload_and_download_stream_through_temp_files(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    """Several write batches and read chunks each way; bytes and sha256 survive."""
    source = tmp_path / "source"
    await off_loop(hass, lambda: source.mkdir())
    # Incompressible, so the backup file is a few MiB: more than one write batch and read chunk.
    await off_loop(hass, (source / "noise.bin").write_bytes, random.randbytes(3_500_000))
    made = await habackup.async_create_archive(
        source, tmp_path / "made", name="Large", ha_version="2025.1.0"
    )
    assert made.path is not None
    original = await off_loop(hass, made.path.read_bytes)
    assert len(original) > 3_000_000

    store = tmp_path / "store"
    await setup_backup(hass, [{"name": STORE, "url": f"file://{store}"}])
    agent = hass.data[DATA_MANAGER].backup_agents[AGENT_ID]
    chunks = await off_loop(hass, chunks_of, made.path, 65_536)

    async def open_stream() -> Any:
        async def stream() -> Any:
            for chunk in chunks:
                await asyncio.sleep(0)
                yield chunk

        return stream()

    await agent.async_upload_backup(open_stream=open_stream, backup=agent_backup_of(made))
    tmp_backups = Path(hass.config.path("tmp_backups"))
    assert await off_loop(hass, files_in, tmp_backups) == []
    sidecar = json.loads(await off_loop(hass, (store / f"{made.slug}.metadata.json").read_text))
    assert sidecar["sha256"] == hashlib.sha256(original).hexdigest()
    assert sidecar["size"] == len(original)
    assert sidecar["extra"] == {"instance_id": "test", "with_automatic_settings": False}

    listed = await agent.async_get_backup(made.slug)
    assert listed == agent_backup_of(made)

    received = [chunk async for chunk in await agent.async_download_backup(made.slug)]
    assert len(received) > 1
    assert b"".join(received) == original
    assert await off_loop(hass, files_in, tmp_backups) == []


async def test_cancelled_upload_and_abandoned_download_leave_no_temp_file(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    await off_loop(hass, lambda: source.mkdir())
    await off_loop(hass, (source / "noise.bin").write_bytes, random.randbytes(3_000_000))
    made = await habackup.async_create_archive(
        source, tmp_path / "made", name="Cancelled", ha_version="2025.1.0"
    )
    assert made.path is not None
    await setup_backup(hass, [{"name": STORE, "url": f"file://{tmp_path / 'store'}"}])
    agent = hass.data[DATA_MANAGER].backup_agents[AGENT_ID]
    tmp_backups = Path(hass.config.path("tmp_backups"))
    streaming = asyncio.Event()

    async def open_stream() -> Any:
        async def stream() -> Any:
            yield b"x" * 2_000_000
            streaming.set()
            await asyncio.Event().wait()  # the rest never comes
            yield b""

        return stream()

    upload = asyncio.ensure_future(
        agent.async_upload_backup(open_stream=open_stream, backup=agent_backup_of(made))
    )
    await streaming.wait()
    assert len(await off_loop(hass, files_in, tmp_backups)) == 1
    upload.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upload
    assert await off_loop(hass, files_in, tmp_backups) == []

    # A real upload, then a download whose reader stops after the first chunk.
    chunks = await off_loop(hass, chunks_of, made.path, 1_048_576)

    async def open_made() -> Any:
        async def stream() -> Any:
            for chunk in chunks:
                yield chunk

        return stream()

    await agent.async_upload_backup(open_stream=open_made, backup=agent_backup_of(made))
    download_stream = await agent.async_download_backup(made.slug)
    # Unlinked once open, even before the first byte is read.
    assert await off_loop(hass, files_in, tmp_backups) == []
    assert await anext(download_stream)
    await download_stream.aclose()
