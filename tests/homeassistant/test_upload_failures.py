"""Failures reach Home Assistant as its own agent errors, and leave nothing behind.

Home Assistant logs anything but a ``BackupAgentError`` as "Unexpected error" (the agent's bug);
a failed upload must leave no temp file and nothing listed.
"""

from __future__ import annotations

import errno
import random
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hahelpers import (
    AGENT_ID,
    STORE,
    agent_backup_of,
    chunks_of,
    files_in,
    ha_agent,
    off_loop,
    setup_backup,
    stream_of,
    ws_call,
)
from homeassistant.components.backup import BackupAgentError
from homeassistant.components.backup.agent import BackupAgentUnreachableError
from homeassistant.core import HomeAssistant

import habackup

pytestmark = pytest.mark.usefixtures(
    "enable_custom_integrations", "ha_config_dir", "blocking_io_detection"
)
LOCAL_AGENT_ID = "backup.local"  # Home Assistant's own agent, in the config dir's backups/


async def test_disk_full_while_spooling(
    hass: HomeAssistant,
    hass_ws_client: Callable[..., Awaitable[Any]],
    ha_config_dir: Path,
    small_tmpfs: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The temp dir is a 1 MiB tmpfs and the backup is 3 MB: the spool hits ENOSPC."""
    noise = ha_config_dir / "www" / "noise.bin"
    await off_loop(hass, noise.write_bytes, random.randbytes(3 << 20))
    store = tmp_path / "store"
    await setup_backup(
        hass, [{"name": STORE, "url": f"file://{store}", "temp_dir": str(small_tmpfs)}]
    )
    client = await hass_ws_client(hass)

    # Through Home Assistant: the backup is made and kept locally; habackup's agent fails.
    await ws_call(
        client, type="backup/generate", agent_ids=[LOCAL_AGENT_ID, AGENT_ID], name="Big"
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    info = await ws_call(client, type="backup/info")
    (backup,) = info["backups"]
    assert backup["failed_agent_ids"] == [AGENT_ID]
    assert list(backup["agents"]) == [LOCAL_AGENT_ID]
    # An agent error, named and explained: not an "Unexpected error" with a traceback.
    messages = [r.getMessage() for r in caplog.records]
    reason = f"{STORE}: upload failed: No space left on device (temp files in {small_tmpfs})"
    assert f"Upload failed for {AGENT_ID}: {reason}" in messages
    assert not [m for m in messages if m.startswith("Unexpected error")]
    assert await off_loop(hass, files_in, small_tmpfs) == []
    assert await off_loop(hass, files_in, store) == []

    # Directly: Home Assistant's error, the OSError as its cause.
    local = Path(hass.config.path("backups"))
    (made,) = await off_loop(hass, files_in, local)
    made_backup = await off_loop(hass, habackup.read_backup, local / made)
    chunks = await off_loop(hass, chunks_of, local / made, 1 << 20)
    with pytest.raises(BackupAgentError) as raised:
        await ha_agent(hass).async_upload_backup(
            open_stream=stream_of(chunks),
            backup=agent_backup_of(made_backup, size=sum(map(len, chunks))),
        )
    assert isinstance(raised.value.__cause__, OSError)
    assert raised.value.__cause__.errno == errno.ENOSPC
    assert await off_loop(hass, files_in, small_tmpfs) == []
    assert await ha_agent(hass).async_list_backups() == []


@pytest.mark.parametrize("difference", [-1, +1], ids=["short", "long"])
async def test_stream_of_another_size_fails_the_upload(
    hass: HomeAssistant, tmp_path: Path, difference: int
) -> None:
    source = tmp_path / "source"
    await off_loop(hass, lambda: source.mkdir())
    await off_loop(hass, (source / "noise.bin").write_bytes, random.randbytes(1_500_000))
    made = await habackup.async_create_archive(
        source, tmp_path / "made", name="Sized", ha_version="2025.4.4"
    )
    assert made.path is not None
    data = await off_loop(hass, made.path.read_bytes)
    store = tmp_path / "store"
    await setup_backup(hass, [{"name": STORE, "url": f"file://{store}"}])
    agent = ha_agent(hass)

    sent = data[:-1] if difference < 0 else data + b"\0"
    mismatch = rf"announced {len(data)} bytes but sent {len(sent)}"
    with pytest.raises(BackupAgentError, match=mismatch):
        await agent.async_upload_backup(
            open_stream=stream_of([sent[: 1 << 20], sent[1 << 20 :]]), backup=agent_backup_of(made)
        )
    assert await agent.async_list_backups() == []
    assert await off_loop(hass, files_in, store) == []
    assert await off_loop(hass, files_in, Path(hass.config.path("tmp_backups"))) == []

    # The right length goes through.
    await agent.async_upload_backup(open_stream=stream_of([data]), backup=agent_backup_of(made))
    assert await agent.async_get_backup(made.slug) == agent_backup_of(made)


async def test_unreachable_store(
    hass: HomeAssistant, hass_ws_client: Callable[..., Awaitable[Any]], tmp_path: Path
) -> None:
    """A WebDAV server that is not there: refused connections, after the (no) retries."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = {"max_retries": 0, "connect_timeout": "2s", "timeout": "5s"}
    url = f"http://127.0.0.1:{port}/dav"
    await setup_backup(hass, [{"name": STORE, "url": url, "options": options}])

    with pytest.raises(BackupAgentUnreachableError) as raised:
        await ha_agent(hass).async_list_backups()
    assert isinstance(raised.value.__cause__, habackup.BackupAgentUnreachableError)
    client = await hass_ws_client(hass)
    info = await ws_call(client, type="backup/info")
    assert info["agent_errors"] == {AGENT_ID: "The backup agent is unreachable."}
