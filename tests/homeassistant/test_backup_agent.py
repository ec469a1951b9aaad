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
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from hahelpers import (
    AGENT_ID,
    STORE,
    FailingSyncAgent,
    FolderSyncAgent,
    agent_backup_of,
    chunks_of,
    download,
    files_in,
    generate_backup,
    ha_agent,
    off_loop,
    setup_backup,
    stream_of,
    ws_call,
)
from homeassistant.components.backup import AgentBackup, BackupAgentError, BackupNotFound
from homeassistant.components.backup.agent import BackupAgentUnreachableError
from homeassistant.core import HomeAssistant

import habackup

pytestmark = pytest.mark.usefixtures(
    "enable_custom_integrations", "ha_config_dir", "blocking_io_detection"
)


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

    agent = ha_agent(hass)
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
        # What a sync agent may raise besides habackup's errors: all become agent errors, so
        # Home Assistant never logs them as the agent's bug ("Unexpected error").
        (
            PermissionError(13, "Permission denied", "/mnt/nas/ha"),
            BackupAgentError,
            "store: list failed: Permission denied (/mnt/nas/ha)",
        ),
        (TimeoutError(), BackupAgentError, "store: list timed out"),
        (RuntimeError("a bug"), BackupAgentError, "store: list failed: RuntimeError: a bug"),
    ],
    ids=["unreachable", "agent-error", "not-found", "permission", "timeout", "bug"],
)
async def test_errors_become_home_assistant_errors(
    hass: HomeAssistant,
    hass_ws_client: Callable[..., Awaitable[Any]],
    error: Exception,
    expected: type[Exception],
    message: str,
) -> None:
    await setup_backup(hass, [FailingSyncAgent(STORE, error)])
    agent = ha_agent(hass)

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
    with pytest.raises(expected) as raised:
        await agent.async_upload_backup(open_stream=stream_of([b"hello"]), backup=backup)
    assert raised.value.__cause__ is error
    # The spooled upload is gone even though the agent failed.
    assert await off_loop(hass, files_in, Path(hass.config.path("tmp_backups"))) == []

    if expected is not BackupNotFound:
        # Listing errors reach the user as that agent's error, never as a failure of the view.
        client = await hass_ws_client(hass)
        info = await ws_call(client, type="backup/info")
        assert info["agent_errors"] == {AGENT_ID: message}


@pytest.mark.parametrize("kind", ["object-store", "python-agent"])
async def test_large_upload_and_download(hass: HomeAssistant, tmp_path: Path, kind: str) -> None:
    """Several chunks each way; bytes and sha256 survive. The object-store agent streams both
    ways (the adapter makes no temp folder at all); a Python agent goes through temp files."""
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
    spec: Any = (
        {"name": STORE, "url": f"file://{store}"}
        if kind == "object-store"
        else FolderSyncAgent(STORE, store)
    )
    await setup_backup(hass, [spec])
    agent = ha_agent(hass)
    chunks = await off_loop(hass, chunks_of, made.path, 65_536)
    await agent.async_upload_backup(open_stream=stream_of(chunks), backup=agent_backup_of(made))
    tmp_backups = Path(hass.config.path("tmp_backups"))
    assert await off_loop(hass, files_in, tmp_backups) == []
    listed = await agent.async_get_backup(made.slug)
    assert listed == agent_backup_of(made)
    if kind == "object-store":
        sidecar = json.loads(
            await off_loop(hass, (store / f"{made.slug}.metadata.json").read_text)
        )
        assert sidecar["sha256"] == hashlib.sha256(original).hexdigest()
        assert sidecar["size"] == len(original)
        assert sidecar["extra"] == {"instance_id": "test", "with_automatic_settings": False}

    received = [chunk async for chunk in await agent.async_download_backup(made.slug)]
    assert len(received) > 1
    assert b"".join(received) == original
    assert await off_loop(hass, files_in, tmp_backups) == []
    if kind == "object-store":
        assert not await off_loop(hass, tmp_backups.exists)


async def test_cancelled_spooled_upload_and_abandoned_download_leave_no_temp_file(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    """A Python sync agent's temp files: gone when the upload is cancelled mid-spool, and
    unlinked as soon as a download is open."""
    source = tmp_path / "source"
    await off_loop(hass, lambda: source.mkdir())
    await off_loop(hass, (source / "noise.bin").write_bytes, random.randbytes(3_000_000))
    made = await habackup.async_create_archive(
        source, tmp_path / "made", name="Cancelled", ha_version="2025.1.0"
    )
    assert made.path is not None
    await setup_backup(hass, [FolderSyncAgent(STORE, tmp_path / "folder")])
    agent = ha_agent(hass)
    tmp_backups = Path(hass.config.path("tmp_backups"))
    stream = StuckStream()

    upload = asyncio.ensure_future(
        agent.async_upload_backup(open_stream=stream.open, backup=agent_backup_of(made))
    )
    await stream.streaming.wait()
    assert len(await off_loop(hass, files_in, tmp_backups)) == 1
    upload.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upload
    assert await off_loop(hass, files_in, tmp_backups) == []
    assert stream.closed

    # A real upload, then a download whose reader stops after the first chunk.
    chunks = await off_loop(hass, chunks_of, made.path, 1_048_576)
    await agent.async_upload_backup(open_stream=stream_of(chunks), backup=agent_backup_of(made))
    download_stream = await agent.async_download_backup(made.slug)
    # Unlinked once open, even before the first byte is read.
    assert await off_loop(hass, files_in, tmp_backups) == []
    assert await anext(download_stream)
    await download_stream.aclose()


async def test_cancelled_streamed_upload_leaves_nothing(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    """The object store takes the stream as it comes: cancelled half way, nothing is stored,
    no temp file was ever made, and Home Assistant's stream is closed."""
    store = tmp_path / "store"
    await setup_backup(hass, [{"name": STORE, "url": f"file://{store}"}])
    agent = ha_agent(hass)
    backup = AgentBackup(
        addons=[],
        backup_id="abcd1234",
        date="2025-04-01T12:00:00+00:00",
        database_included=True,
        extra_metadata={},
        folders=[],
        homeassistant_included=True,
        homeassistant_version="2025.4.4",
        name="Cancelled",
        protected=False,
        size=40_000_000,
    )
    stream = StuckStream()
    upload = asyncio.ensure_future(
        agent.async_upload_backup(open_stream=stream.open, backup=backup)
    )
    await stream.streaming.wait()
    upload.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upload
    assert stream.closed
    assert await agent.async_list_backups() == []
    assert await off_loop(hass, files_in, store) == []
    assert not await off_loop(hass, Path(hass.config.path("tmp_backups")).exists)


class StuckStream:
    """An ``open_stream`` whose stream yields 2 MB, then waits for ever."""

    def __init__(self) -> None:
        self.streaming = asyncio.Event()
        self.closed = False

    async def open(self) -> AsyncIterator[bytes]:
        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b"x" * 2_000_000
                self.streaming.set()
                await asyncio.Event().wait()  # the rest never comes
                yield b""
            finally:
                self.closed = True

        return stream()
