"""Retries and limits, against a real WebDAV server (wsgidav) through Home Assistant's manager.

A streamed upload that fails as a whole because the store was unreachable starts again from a
stream the adapter opens anew: Home Assistant's ``open_stream`` opens the backup from its start
on every call in every supported release (its own cloud agent has relied on that since 2025.1;
2026.11 documents it and closes every stream an agent opened). A sync agent that hangs ends in
Home Assistant's ``BackupAgentError`` once a limit is reached, instead of hanging the backup.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flaky_proxy import flaky_proxy
from hahelpers import (
    AGENT_ID,
    PROGRESS_TIMER_OUTLIVES_A_FAILED_UPLOAD,
    STORE,
    FileStream,
    agent_backup_of,
    files_in,
    ha_agent,
    make_big_backup,
    off_loop,
    setup_backup,
    ws_call,
)
from homeassistant.components.backup import BackupAgentError
from homeassistant.core import HomeAssistant

import habackup
from habackup.homeassistant import Limits

pytestmark = pytest.mark.usefixtures(
    "enable_custom_integrations", "ha_config_dir", "blocking_io_detection"
)
LOCAL_AGENT_ID = "backup.local"
# The engine's own retries off: every failure reaches the adapter at once.
NO_ENGINE_RETRIES = {"max_retries": "0", "connect_timeout": "5s", "timeout": "10min"}


async def generate(hass: HomeAssistant, client: Any, agent_ids: list[str]) -> dict[str, Any]:
    await ws_call(client, type="backup/generate", agent_ids=agent_ids, name="Test")
    await hass.async_block_till_done(wait_background_tasks=True)
    info = await ws_call(client, type="backup/info")
    (backup,) = info["backups"]
    return backup  # type: ignore[no-any-return]


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


async def test_unreachable_upload_is_retried_from_a_new_stream(
    hass: HomeAssistant,
    hass_ws_client: Callable[..., Awaitable[Any]],
    webdav_server: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The first PUT of the backup gets a 503 (the server is unavailable): the adapter opens
    Home Assistant's stream again and the second attempt stores it."""

    def first_put_of_the_backup(method: str, path: str, n: int) -> bool:
        return method == "PUT" and path.endswith(".tar") and n == 0

    with flaky_proxy(webdav_server.url, first_put_of_the_backup) as proxy:
        host = proxy.url.removeprefix("http://")
        url = f"http://{webdav_server.user}:{webdav_server.password}@{host}/retried"
        spec = {
            "name": STORE,
            "url": url,
            "options": NO_ENGINE_RETRIES,
            "limits": Limits(retry_delay=0.05),
        }
        await setup_backup(hass, [spec])
        client = await hass_ws_client(hass)
        backup = await generate(hass, client, [AGENT_ID])

    assert backup["failed_agent_ids"] == []
    assert list(backup["agents"]) == [AGENT_ID]
    slug = backup["backup_id"]
    assert proxy.failures == [f"PUT /retried/{slug}.tar"]
    assert f"PUT /retried/{slug}.tar" in proxy.forwarded
    retried = f"retrying in 0.05 s (1 of {Limits().upload_retries})"
    assert any(retried in message for message in messages(caplog))
    stored = webdav_server.root / "retried" / f"{slug}.tar"
    assert (await off_loop(hass, stored.stat)).st_size == backup["agents"][AGENT_ID]["size"]


@PROGRESS_TIMER_OUTLIVES_A_FAILED_UPLOAD
async def test_retries_end(
    hass: HomeAssistant,
    hass_ws_client: Callable[..., Awaitable[Any]],
    webdav_server: Any,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """A store that stays unavailable: ``upload_retries`` more attempts, each from a stream
    opened anew and closed again, then Home Assistant's unreachable error."""
    def every_put_of_the_backup(method: str, path: str, n: int) -> bool:
        return method == "PUT" and path.endswith(".tar")

    with flaky_proxy(webdav_server.url, every_put_of_the_backup) as proxy:
        host = proxy.url.removeprefix("http://")
        url = f"http://{webdav_server.user}:{webdav_server.password}@{host}/down"
        spec = {
            "name": STORE,
            "url": url,
            "options": NO_ENGINE_RETRIES,
            "limits": Limits(upload_retries=2, retry_delay=0.05),
        }
        await setup_backup(hass, [spec])
        client = await hass_ws_client(hass)
        backup = await generate(hass, client, [LOCAL_AGENT_ID, AGENT_ID])
        assert backup["failed_agent_ids"] == [AGENT_ID]
        assert len(proxy.failures) == 3, proxy.failures
        assert f"Upload failed for {AGENT_ID}: The backup agent is unreachable." in messages(
            caplog
        )

        # The same through the adapter directly: three streams opened, three closed.
        made = await off_loop(hass, lambda: make_big_backup(tmp_path, 1 << 20))
        assert made.path is not None
        stream = FileStream(hass, made.path)
        with pytest.raises(BackupAgentError) as raised:
            await ha_agent(hass).async_upload_backup(
                open_stream=stream.open, backup=agent_backup_of(made)
            )
        assert isinstance(raised.value.__cause__, habackup.BackupAgentUnreachableError)
        assert (stream.opened, stream.closed) == (3, 3)
    assert await off_loop(hass, files_in, webdav_server.root / "down") == []


@pytest.fixture
def black_hole(socket_enabled: None) -> Iterator[str]:
    """``127.0.0.1:PORT`` where connections are taken (by the kernel's backlog) and requests
    sent, but nothing ever answers: a store that hangs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"127.0.0.1:{sock.getsockname()[1]}"


async def test_a_hanging_store_ends_in_agent_errors(
    hass: HomeAssistant,
    hass_ws_client: Callable[..., Awaitable[Any]],
    black_hole: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    limits = Limits(call=0.5, stall=0.5)
    spec = {
        "name": STORE,
        "url": f"http://user:pw@{black_hole}/dav",
        "options": NO_ENGINE_RETRIES,
        "limits": limits,
    }
    await setup_backup(hass, [spec])
    client = await hass_ws_client(hass)

    info = await ws_call(client, type="backup/info")
    assert info["agent_errors"] == {AGENT_ID: "store: list timed out after 0.5 s"}

    backup = await generate(hass, client, [LOCAL_AGENT_ID, AGENT_ID])
    assert backup["failed_agent_ids"] == [AGENT_ID]
    reason = "store: upload stalled: no data moved for 0.5 s"
    assert f"Upload failed for {AGENT_ID}: {reason}" in messages(caplog)

    agent = ha_agent(hass)
    with pytest.raises(BackupAgentError, match=r"^store: download timed out after 0\.5 s$"):
        await agent.async_download_backup("abcd1234")
    with pytest.raises(BackupAgentError, match=r"^store: delete timed out after 0\.5 s$"):
        await agent.async_delete_backup("abcd1234")


class HangingSyncAgent(habackup.BackupSyncAgent):
    """A Python sync agent whose upload never ends (and reports no progress)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.uploading = asyncio.Event()

    async def async_upload_backup(self, **kwargs: Any) -> None:
        self.uploading.set()
        await asyncio.Event().wait()

    async def async_list_backups(self, **kwargs: Any) -> list[habackup.SyncedBackup]:
        return []


async def test_a_hanging_python_agent_ends_at_the_transfer_limit(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    """Its bytes cannot be seen, so the stall limit does not apply; the transfer limit does,
    and its temp file goes."""
    sync_agent = HangingSyncAgent(STORE)
    await setup_backup(hass, [{"agent": sync_agent, "limits": Limits(stall=0.2, transfer=1.0)}])
    made = await off_loop(hass, lambda: make_big_backup(tmp_path, 1 << 20))
    assert made.path is not None
    stream = FileStream(hass, made.path)
    with pytest.raises(BackupAgentError, match=r"^store: upload stalled: not done after 1\.0 s$"):
        await ha_agent(hass).async_upload_backup(
            open_stream=stream.open, backup=agent_backup_of(made)
        )
    assert sync_agent.uploading.is_set()
    assert (stream.opened, stream.closed) == (1, 1)
    assert await off_loop(hass, files_in, Path(hass.config.path("tmp_backups"))) == []

