"""Upload progress in Home Assistant's event stream (``backup/subscribe_events``).

Home Assistant 2026.4 and later pass ``on_progress`` to agents and send what they report as
upload events (``agent_id``, ``uploaded_bytes``, ``total_bytes``), at most one a second plus one
at the end. Older releases pass nothing and have no such events.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hahelpers import (
    AGENT_ID,
    HA_VERSION,
    STORE,
    FolderSyncAgent,
    agent_backup_of,
    chunks_of,
    generate_backup,
    ha_agent,
    off_loop,
    setup_backup,
    stream_of,
)
from homeassistant.core import HomeAssistant

import habackup

pytestmark = pytest.mark.usefixtures(
    "enable_custom_integrations", "ha_config_dir", "blocking_io_detection"
)
PROGRESS_SINCE = (2026, 4)


async def events_until_idle(client: Any) -> list[dict[str, Any]]:
    events = []
    while True:
        message = await client.receive_json()
        assert message["type"] == "event", message
        events.append(message["event"])
        if message["event"].get("manager_state") == "idle" and len(events) > 1:
            return events


@pytest.mark.parametrize("kind", ["object-store", "python-agent"])
async def test_upload_progress_reaches_the_event_stream(
    hass: HomeAssistant,
    hass_ws_client: Callable[..., Awaitable[Any]],
    ha_config_dir: Path,
    tmp_path: Path,
    kind: str,
) -> None:
    # Incompressible, so the backup is about 4 MiB: several chunks for the object-store agent
    # to report, several write batches for the spool of a Python agent.
    noise = ha_config_dir / "www" / "noise.bin"
    await off_loop(hass, noise.write_bytes, random.randbytes(4 << 20))
    # Small parts: the store acknowledges each part, and progress counts acknowledged bytes
    # (a backup sent in one request is only acknowledged at its end).
    tuning = {"multipart_threshold": "1MiB", "part_size": "1MiB"}
    spec: Any = (
        {"name": STORE, "url": f"file://{tmp_path / 'store'}", "options": tuning}
        if kind == "object-store"
        else FolderSyncAgent(STORE, tmp_path / "folder")
    )
    await setup_backup(hass, [spec])
    events_client = await hass_ws_client(hass)
    await events_client.send_json_auto_id({"type": "backup/subscribe_events"})
    # The current state first, then the command's result.
    assert (await events_client.receive_json())["event"]["manager_state"] == "idle"
    assert (await events_client.receive_json())["success"]

    backup = await generate_backup(hass, await hass_ws_client(hass))
    size = backup["agents"][AGENT_ID]["size"]
    assert size > 4 << 20
    events = await events_until_idle(events_client)
    uploads = [e for e in events if e.get("agent_id") == AGENT_ID]

    if HA_VERSION < PROGRESS_SINCE:
        # No on_progress to report to, and no upload events at all.
        assert uploads == []
        return
    # The manager sends the last one itself; any before it came from the adapter's reports.
    assert uploads[-1] == {
        "manager_state": "create_backup",
        "agent_id": AGENT_ID,
        "uploaded_bytes": size,
        "total_bytes": size,
    }
    reported = [e["uploaded_bytes"] for e in uploads[:-1]]
    assert reported, events
    assert all(0 <= n <= size for n in reported)
    assert all(e["total_bytes"] == size for e in uploads)
    if kind == "python-agent":
        # The spool reports after each completed write batch: the first one is never 0.
        assert reported[0] >= 1 << 20


@pytest.mark.parametrize("kind", ["object-store", "python-agent"])
async def test_on_progress_follows_the_upload(
    hass: HomeAssistant, tmp_path: Path, kind: str
) -> None:
    """What the adapter reports, without Home Assistant's one-a-second debouncing."""
    source = tmp_path / "source"
    await off_loop(hass, lambda: source.mkdir())
    await off_loop(hass, (source / "noise.bin").write_bytes, random.randbytes(5 << 20))
    made = await habackup.async_create_archive(
        source, tmp_path / "made", name="Progress", ha_version="2025.4.4"
    )
    assert made.path is not None
    # Small parts: the store acknowledges each part, and progress counts acknowledged bytes
    # (a backup sent in one request is only acknowledged at its end).
    tuning = {"multipart_threshold": "1MiB", "part_size": "1MiB"}
    spec: Any = (
        {"name": STORE, "url": f"file://{tmp_path / 'store'}", "options": tuning}
        if kind == "object-store"
        else FolderSyncAgent(STORE, tmp_path / "folder")
    )
    await setup_backup(hass, [spec])
    chunks = await off_loop(hass, chunks_of, made.path, 256 << 10)
    reported: list[int] = []

    def on_progress(*, bytes_uploaded: int, **kwargs: Any) -> None:
        assert not kwargs
        reported.append(bytes_uploaded)

    await ha_agent(hass).async_upload_backup(
        open_stream=stream_of(chunks), backup=agent_backup_of(made), on_progress=on_progress
    )
    assert reported == sorted(reported)
    assert reported[-1] == made.size
    # Steps between nothing and everything: the object-store agent's per acknowledged part, the
    # spool's per write batch (the engine hands over only the latest figures, so some merge).
    assert len([n for n in reported if 0 < n < made.size]) >= 2
