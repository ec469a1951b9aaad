"""Streams through the object-store agent, end to end through Home Assistant's own views.

A 1 GiB backup goes up through Home Assistant's upload view and down through its download view:
nothing but Home Assistant's own file is written under the config dir, and the first byte of the
download arrives long before the last. A stored copy that changed fails its download before the
end. ``backup/can_decrypt_on_download`` reads the start of a backup and stops the transfer
there.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import shutil
from collections.abc import Awaitable, Callable, Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from disk_watch import DiskWatch
from hahelpers import (
    AGENT_ID,
    STORE,
    FileStream,
    agent_backup_of,
    files_in,
    ha_agent,
    make_big_backup,
    off_loop,
    open_files,
    read_bytes_so_far,
    setup_backup,
    ws_call,
)
from homeassistant.components.backup import BackupAgentError
from homeassistant.core import HomeAssistant

import habackup

# aiohttp's client gives a request 5 minutes in all; a GiB through Home Assistant's views on a
# loaded 2-core machine took longer once. A hang still ends, in half an hour.
GIB_TRANSFER = aiohttp.ClientTimeout(total=1800)

pytestmark = pytest.mark.usefixtures(
    "enable_custom_integrations", "ha_config_dir", "blocking_io_detection"
)
GIB = 1 << 30
MIB = 1 << 20


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    """The object store's folder, emptied after the test: big backups must not wait for
    pytest's rotation of old temp dirs (the machine's disk is shared)."""
    yield tmp_path / "store"
    shutil.rmtree(tmp_path / "store", ignore_errors=True)


@pytest.fixture(scope="module")
def gib_backup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[habackup.Backup]:
    """A 1 GiB backup (made once per module, outside any event loop), removed afterwards."""
    root = tmp_path_factory.mktemp("gib")
    backup = make_big_backup(root, GIB)
    assert backup.path is not None
    yield backup
    backup.path.unlink()


async def test_a_1gib_backup_streams_both_ways(
    hass: HomeAssistant,
    hass_client: Callable[[], Awaitable[Any]],
    ha_config_dir: Path,
    store: Path,
    gib_backup: habackup.Backup,
) -> None:
    assert gib_backup.path is not None
    await setup_backup(hass, [{"name": STORE, "url": f"file://{store}"}])
    client = await hass_client()
    # Home Assistant's upload view writes what it receives to tmp_backups/<file name> (its own
    # file, removed once every agent has the backup); its storage rewrites small JSON files.
    received = f"tmp_backups/{gib_backup.path.name}"

    def homeassistants_own(name: str) -> bool:
        return name == received or name.startswith(".storage/")

    async with DiskWatch(ha_config_dir, homeassistants_own) as upload_watch:
        file = await off_loop(hass, gib_backup.path.open, "rb")
        try:
            response = await client.post(
                f"/api/backup/upload?agent_id={AGENT_ID}",
                data={"file": file},
                timeout=GIB_TRANSFER,
            )
        finally:
            await off_loop(hass, file.close)
        assert response.status == HTTPStatus.CREATED, await response.text()
        await hass.async_block_till_done(wait_background_tasks=True)
    assert (await response.json())["backup_id"] == gib_backup.slug

    # Home Assistant's own copy was there (the whole GiB), and nothing else of any size.
    assert upload_watch.peak_allowed >= GIB
    assert upload_watch.peak_extra < MIB, upload_watch.appeared
    assert not [name for name in upload_watch.appeared if not homeassistants_own(name)]
    assert await off_loop(hass, files_in, ha_config_dir / "tmp_backups") == []
    sidecar = await ha_agent(hass).sync_agent.async_list_backups()
    assert [(s.slug, s.size, s.sha256) for s in sidecar] == [
        (gib_backup.slug, gib_backup.size, gib_backup.sha256)
    ]

    # Download through Home Assistant's view: chunks come as the store yields them.
    loop = asyncio.get_running_loop()
    digest = hashlib.sha256()
    size = 0
    first_byte: float | None = None
    async with DiskWatch(ha_config_dir) as download_watch:
        start = loop.time()
        response = await client.get(
            f"/api/backup/download/{gib_backup.slug}?agent_id={AGENT_ID}", timeout=GIB_TRANSFER
        )
        assert response.status == HTTPStatus.OK
        async for chunk in response.content.iter_chunked(MIB):
            if first_byte is None:
                first_byte = loop.time() - start
            size += len(chunk)
            await off_loop(hass, digest.update, chunk)
        last_byte = loop.time() - start
    assert (size, digest.hexdigest()) == (gib_backup.size, gib_backup.sha256)
    assert first_byte is not None
    # Streamed, not fetched whole first: the first chunk comes after a small part of the time
    # the whole takes (a temp copy first would put it past the half).
    assert first_byte < last_byte / 4, (first_byte, last_byte)
    assert download_watch.appeared == set()
    assert download_watch.peak_extra == 0

    await ha_agent(hass).async_delete_backup(gib_backup.slug)
    assert await off_loop(hass, files_in, store) == []


async def test_a_changed_copy_fails_its_download_before_the_end(
    hass: HomeAssistant,
    hass_client: Callable[[], Awaitable[Any]],
    tmp_path: Path,
    store: Path,
) -> None:
    """One byte of the stored copy flipped after the upload (bit rot, a meddling server): the
    size matches, the sha256 does not. The adapter's iterator raises Home Assistant's
    ``BackupAgentError`` instead of ending, so Home Assistant's download view breaks the
    response off and the client never holds a complete-looking file."""
    made = await off_loop(hass, make_big_backup, tmp_path, 24 * MIB)
    assert made.path is not None
    await setup_backup(hass, [{"name": STORE, "url": f"file://{store}"}])
    await ha_agent(hass).async_upload_backup(
        open_stream=FileStream(hass, made.path).open, backup=agent_backup_of(made)
    )
    await off_loop(hass, made.path.unlink)

    def flip_a_byte(path: Path, offset: int) -> None:
        with path.open("r+b") as file:
            file.seek(offset)
            byte = file.read(1)
            file.seek(offset)
            file.write(bytes([byte[0] ^ 0xFF]))

    await off_loop(hass, flip_a_byte, store / f"{made.slug}.tar", made.size // 2)

    # Directly: chunks come as they arrive, then Home Assistant's error naming the digest.
    chunks = await ha_agent(hass).async_download_backup(made.slug)
    received: list[int] = []

    async def read_to_the_end() -> None:
        async for chunk in chunks:
            received.append(len(chunk))

    with pytest.raises(BackupAgentError, match="sha256") as raised:
        await read_to_the_end()
    assert 0 < sum(received) <= made.size
    assert isinstance(raised.value.__cause__, habackup.BackupAgentError)

    # Through Home Assistant's download view: the response is cut off, not completed.
    client = await hass_client()
    response = await client.get(f"/api/backup/download/{made.slug}?agent_id={AGENT_ID}")
    assert response.status == HTTPStatus.OK
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()
    # The copy stays where it is, for its owner to look at; Home Assistant still lists it.
    assert [b.backup_id for b in await ha_agent(hass).async_list_backups()] == [made.slug]


async def test_can_decrypt_on_download_reads_only_the_start(
    hass: HomeAssistant,
    hass_ws_client: Callable[..., Awaitable[Any]],
    tmp_path: Path,
    store: Path,
) -> None:
    """Home Assistant checks a password by decrypting the first bytes of the first inner tar:
    the transfer stops there, and the store's file is closed afterwards."""
    size = 96 * MIB
    made = await off_loop(
        hass,
        lambda: make_big_backup(tmp_path, size, password="hunter2", securetar_version=2),
    )
    assert made.path is not None
    await setup_backup(hass, [{"name": STORE, "url": f"file://{store}"}])
    await ha_agent(hass).async_upload_backup(
        open_stream=FileStream(hass, made.path).open, backup=agent_backup_of(made)
    )
    await off_loop(hass, made.path.unlink)
    stored = str(store / f"{made.slug}.tar")
    client = await hass_ws_client(hass)

    before = await off_loop(hass, read_bytes_so_far)
    result = await ws_call(
        client,
        type="backup/can_decrypt_on_download",
        backup_id=made.slug,
        agent_id=AGENT_ID,
        password="hunter2",
    )
    assert result is None
    read = await off_loop(hass, read_bytes_so_far) - before
    # A few MiB at most (the first chunks), not the 96 MiB backup.
    assert read < size // 8, read

    await client.send_json_auto_id(
        {
            "type": "backup/can_decrypt_on_download",
            "backup_id": made.slug,
            "agent_id": AGENT_ID,
            "password": "wrong",
        }
    )
    response = await client.receive_json()
    assert response["error"]["code"] == "password_incorrect", response

    # Home Assistant 2026.11 closes the stream; older ones drop it, and the adapter closes the
    # transfer when it is collected.
    for _ in range(100):
        gc.collect()
        await asyncio.sleep(0.02)
        if stored not in await off_loop(hass, open_files):
            break
    assert stored not in await off_loop(hass, open_files)
