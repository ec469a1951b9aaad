"""Helpers shared by the Home Assistant tests: set-up, websocket calls, sync agents, backups.

Written against every Home Assistant release the tests run on (2025.4.4, 2026.2.3, 2026.10.4):
where they differ, the difference is spelled out here.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import random
import shutil
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from custom_components.habackup_test import DOMAIN
from homeassistant.components.backup import AgentBackup
from homeassistant.components.backup.const import DATA_MANAGER
from homeassistant.const import MAJOR_VERSION, MINOR_VERSION
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component

import habackup
from habackup.homeassistant import HabackupBackupAgent

try:
    # 2025.3 - 2025.7: core set this up before any integration; 2025.8 dropped the module and the
    # backup integration initialises itself.
    from homeassistant.helpers.backup import async_initialize_backup
except ImportError:
    async_initialize_backup = None

T = TypeVar("T")
HA_VERSION = (MAJOR_VERSION, MINOR_VERSION)
# Home Assistant 2026.4 - 2026.10 cancel an agent's upload-progress debouncer only when the upload
# succeeded (2026.11 does it in a finally): after a failed upload that reported progress, its
# one-second timer may still be pending when the test ends. Not the agent's to cancel.
PROGRESS_TIMER_OUTLIVES_A_FAILED_UPLOAD = pytest.mark.parametrize(
    "expected_lingering_timers", [(2026, 4) <= HA_VERSION < (2026, 11)]
)
STORE = "store"
AGENT_ID = f"{DOMAIN}.{STORE}"
OpenStream = Callable[[], Coroutine[Any, Any, AsyncIterator[bytes]]]


class FolderSyncAgent(habackup.BackupSyncAgent):
    """A plain Python sync agent with ids of its own (``copy-<slug>``), I/O off the loop.

    It keeps the metadata it was given and lists it back with ``SyncedBackup.from_metadata``.
    """

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
            sidecars = sorted(self.folder.glob("*.json"))
            return [
                habackup.SyncedBackup.from_metadata(json.loads(s.read_text()), id=s.stem)
                for s in sidecars
            ]

        return await asyncio.to_thread(listing)

    # No async_delete_backup: the base class raises NotImplementedError.


class FailingSyncAgent(habackup.BackupSyncAgent):
    """Raises the given error from every method."""

    def __init__(self, name: str, error: BaseException) -> None:
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
    if async_initialize_backup is not None:
        async_initialize_backup(hass)
    assert await async_setup_component(hass, DOMAIN, {DOMAIN: {"agents": agents}})
    assert await async_setup_component(hass, "backup", {})
    await hass.async_block_till_done()


def ha_agent(hass: HomeAssistant, agent_id: str = AGENT_ID) -> HabackupBackupAgent:
    agent = hass.data[DATA_MANAGER].backup_agents[agent_id]
    assert isinstance(agent, HabackupBackupAgent)
    return agent


async def ws_call(client: Any, **message: Any) -> Any:
    """Send one websocket command and return its result."""
    await client.send_json_auto_id(message)
    response = await client.receive_json()
    assert response["success"], response
    return response["result"]


async def generate_backup(
    hass: HomeAssistant, client: Any, agent_ids: list[str] | None = None, **options: Any
) -> dict[str, Any]:
    """Create a backup through the websocket API, wait for it, and return it from backup/info."""
    agent_ids = agent_ids or [AGENT_ID]
    await ws_call(client, type="backup/generate", agent_ids=agent_ids, name="Test", **options)
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


async def download(
    hass_client: Callable[[], Awaitable[Any]], backup_id: str, agent_id: str = AGENT_ID
) -> Any:
    client = await hass_client()
    return await client.get(f"/api/backup/download/{backup_id}?agent_id={agent_id}")


def agent_backup_of(backup: habackup.Backup, **changes: Any) -> AgentBackup:
    """Home Assistant's description of a backup file habackup made."""
    fields: dict[str, Any] = {
        "addons": [],
        "backup_id": backup.slug,
        "date": backup.date,
        "database_included": backup.database_included,
        "extra_metadata": {"instance_id": "test", "with_automatic_settings": False},
        "folders": [],
        "homeassistant_included": True,
        "homeassistant_version": backup.homeassistant_version,
        "name": backup.name,
        "protected": backup.protected,
        "size": backup.size,
    }
    return AgentBackup(**(fields | changes))


def chunks_of(path: Path, size: int) -> list[bytes]:
    data = path.read_bytes()
    return [data[i : i + size] for i in range(0, len(data), size)]


def stream_of(chunks: list[bytes]) -> OpenStream:
    """An ``open_stream`` as Home Assistant passes it, yielding ``chunks``."""

    async def open_stream() -> AsyncIterator[bytes]:
        async def stream() -> AsyncIterator[bytes]:
            for chunk in chunks:
                await asyncio.sleep(0)
                yield chunk

        return stream()

    return open_stream


def write_supervisor_backup(path: Path, backup_json: dict[str, Any]) -> None:
    """A backup as Supervisor writes it: backup.json plus one inner tar per part it names."""
    inner = ["homeassistant"] if "homeassistant" in backup_json else []
    inner += [addon["slug"] for addon in backup_json.get("addons", [])]
    inner += [folder.replace("/", "_") for folder in backup_json.get("folders", [])]
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as outer:
        _add_bytes(outer, "./backup.json", json.dumps(backup_json).encode())
        for name in inner:
            _add_bytes(outer, f"./{name}.tar.gz", _inner_tar_gz(name))


def _inner_tar_gz(name: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as inner:
        _add_bytes(inner, f"{name}.txt", f"data of {name}\n".encode())
    return buffer.getvalue()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 1_700_000_000
    tar.addfile(info, io.BytesIO(data))


class FileStream:
    """An ``open_stream`` for a backup file, as Home Assistant's manager makes it for the file
    it wrote or received (``send_backup``: 1 MiB reads in the executor); every call opens the
    file anew. Counts the streams opened and the ones closed."""

    def __init__(self, hass: HomeAssistant, path: Path) -> None:
        self.hass = hass
        self.path = path
        self.opened = 0
        self.closed = 0

    async def open(self) -> AsyncIterator[bytes]:
        self.opened += 1
        run = self.hass.async_add_executor_job

        async def send_backup() -> AsyncIterator[bytes]:
            file = await run(self.path.open, "rb")
            try:
                while chunk := await run(file.read, 1 << 20):
                    yield chunk
            finally:
                await run(file.close)
                self.closed += 1

        return send_backup()


def make_big_backup(root: Path, size: int, **options: Any) -> habackup.Backup:
    """A backup of a config dir holding ``size`` pseudo-random bytes, stored (gzip level 0) so
    the backup is about as big; the config dir is removed again. Blocking: call it off the
    loop."""
    source = root / "source"
    (source / "www").mkdir(parents=True)
    (source / ".HA_VERSION").write_text("2025.4.4")
    rng = random.Random(size)
    with (source / "www" / "big.bin").open("wb") as file:
        for offset in range(0, size, 8 << 20):
            file.write(rng.randbytes(min(8 << 20, size - offset)))
    try:
        return habackup.create_archive(
            source, root / "made", name="Big", compresslevel=0, **options
        )
    finally:
        shutil.rmtree(source)


def read_bytes_so_far() -> int:
    """Bytes this process has read with read() and its kin, all threads (``rchar``)."""
    with open("/proc/self/io") as io_file:
        for line in io_file:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def open_files() -> set[str]:
    """The files this process has open."""
    paths = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            paths.add(os.readlink(f"/proc/self/fd/{fd}"))
    return paths
