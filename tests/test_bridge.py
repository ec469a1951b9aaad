"""The Rust <-> asyncio bridge: contextvars, exception types, event loops, and the agent base
class as integrations see it."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import traceback
from pathlib import Path
from typing import Any

import pytest
from helpers import make_config_dir
from test_manager import FolderAgent, Hass, platform

import habackup
from habackup import BackupSyncAgent, SyncedBackup

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


class QuotaExceeded(Exception):
    """An integration's own exception type."""

    def __init__(self, message: str, quota: int) -> None:
        super().__init__(message)
        self.quota = quota


async def test_contextvars_reach_hooks_and_agents(tmp_path: Path) -> None:
    seen: dict[str, str] = {}

    class Agent(FolderAgent):
        async def async_upload_backup(self, **kwargs: Any) -> None:
            seen["upload"] = request_id.get()
            request_id.set("changed by the agent")

        async def async_list_backups(self, **kwargs: Any) -> list[SyncedBackup]:
            seen["list"] = request_id.get()
            return []

    async def pre(hass: Any) -> None:
        seen["pre"] = request_id.get()

    async def post(hass: Any) -> None:
        seen["post"] = request_id.get()

    async def agents(hass: Any) -> list[BackupSyncAgent]:
        seen["factory"] = request_id.get()
        return [Agent("a", tmp_path / "remote")]

    manager = habackup.BackupManager(Hass(), config_dir=make_config_dir(tmp_path / "config"))
    request_id.set("registration")
    await manager.async_add_platform(
        "ctx",
        platform(async_pre_backup=pre, async_post_backup=post, async_get_backup_sync_agents=agents),
    )
    request_id.set("create")
    await manager.async_create_backup(name="ctx")
    request_id.set("listing")
    await manager.async_get_backups()

    assert seen == {
        "factory": "registration",
        "pre": "create",
        "post": "create",
        "upload": "create",
        "list": "listing",
    }
    # A hook's or agent's changes stay in its own task's copy of the context.
    assert request_id.get() == "listing"


async def test_exception_types_survive_the_trip_through_rust(tmp_path: Path) -> None:
    async def pre(hass: Any) -> None:
        raise QuotaExceeded("disk quota exceeded", quota=42)

    async def post(hass: Any) -> None:
        pass

    manager = habackup.BackupManager(Hass(), config_dir=make_config_dir(tmp_path / "config"))
    await manager.async_add_platform(
        "quota", platform(async_pre_backup=pre, async_post_backup=post)
    )

    with pytest.raises(habackup.BackupHookError) as caught:
        await manager.async_create_backup(name="x")

    cause = caught.value.__cause__
    assert type(cause) is QuotaExceeded
    assert str(cause) == "disk quota exceeded"
    assert cause.quota == 42
    frames = [frame.name for frame in traceback.extract_tb(cause.__traceback__)]
    assert "pre" in frames
    assert "quota" in str(caught.value)
    assert "QuotaExceeded" in str(caught.value)


async def test_agent_errors_keep_their_type(tmp_path: Path) -> None:
    class Agent(FolderAgent):
        async def async_list_backups(self, **kwargs: Any) -> list[SyncedBackup]:
            return [SyncedBackup(id="r1", slug="abcd0123", name="n", date="d", size=1)]

        async def async_download_backup(self, *, id: str, path: Path, **kwargs: Any) -> None:
            raise habackup.BackupAgentUnreachableError("remote is down")

    async def agents(hass: Any) -> list[BackupSyncAgent]:
        return [Agent("a", tmp_path / "remote")]

    manager = habackup.BackupManager(Hass(), config_dir=make_config_dir(tmp_path / "config"))
    await manager.async_add_platform("t", platform(async_get_backup_sync_agents=agents))
    with pytest.raises(habackup.BackupAgentUnreachableError, match="remote is down"):
        await manager.async_download_backup(agent_id="t.a", id="r1")
    assert [p.name for p in manager.backup_dir.iterdir() if p.name != "old.tar"] == []


async def test_agent_base_class() -> None:
    class Minimal(BackupSyncAgent):
        pass

    class WithOwnInit(BackupSyncAgent):
        def __init__(self, hass: Any, client: str, *, name: str = "default") -> None:
            super().__init__(name)
            self.client = client

    agent = Minimal("syncer")
    assert agent.name == "syncer"
    assert "syncer" in repr(agent)
    custom = WithOwnInit(Hass(), "client", name="mine")
    assert (custom.name, custom.client) == ("mine", "client")
    with pytest.raises(NotImplementedError, match="Minimal does not implement async_list_backups"):
        await agent.async_list_backups()
    with pytest.raises(NotImplementedError):
        await agent.async_upload_backup(path=Path("x"), metadata={})  # type: ignore[typeddict-item]
    with pytest.raises(NotImplementedError):
        await agent.async_download_backup(id="x", path=Path("x"))
    with pytest.raises(NotImplementedError):
        await agent.async_delete_backup(id="x")


async def test_unimplemented_upload_is_an_agent_failure(tmp_path: Path) -> None:
    async def agents(hass: Any) -> list[BackupSyncAgent]:
        return [BackupSyncAgent("bare")]

    manager = habackup.BackupManager(Hass(), config_dir=make_config_dir(tmp_path / "config"))
    await manager.async_add_platform("b", platform(async_get_backup_sync_agents=agents))
    backup = await manager.async_create_backup(name="x")
    assert backup.synced_agents == []
    assert backup.failed_agents == {
        "b.bare": "NotImplementedError: BackupSyncAgent does not implement async_upload_backup"
    }


def test_synced_backup_model() -> None:
    a = SyncedBackup(id="1", slug="abcd0123", name="n", date="2025-01-01T00:00:00+00:00", size=3)
    b = SyncedBackup(id="1", slug="abcd0123", name="n", date="2025-01-01T00:00:00+00:00", size=3)
    assert a == b
    assert hash(a) == hash(b)
    assert a.protected is False
    assert a.as_dict() == {
        "id": "1",
        "slug": "abcd0123",
        "name": "n",
        "date": "2025-01-01T00:00:00+00:00",
        "size": 3,
        "protected": False,
        "sha256": None,
        "homeassistant_version": None,
        "database_included": True,
        "homeassistant_included": True,
        "addons": [],
        "folders": [],
        "extra_metadata": {},
    }
    c = SyncedBackup(
        id="1",
        slug="abcd0123",
        name="n",
        date="2025-01-01T00:00:00+00:00",
        size=3,
        extra_metadata={"instance_id": "x"},
    )
    assert c != a
    assert hash(c) == hash(a)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.size = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        SyncedBackup("1", "abcd0123", "n", "d", 3)  # type: ignore[misc]


def test_one_manager_across_event_loops(tmp_path: Path) -> None:
    """Task locals are captured per call, so each loop gets its own hooks' tasks."""
    loops: list[asyncio.AbstractEventLoop] = []

    async def pre(hass: Any) -> None:
        loops.append(asyncio.get_running_loop())

    async def post(hass: Any) -> None:
        loops.append(asyncio.get_running_loop())

    manager = habackup.BackupManager(Hass(), config_dir=make_config_dir(tmp_path / "config"))

    async def first() -> asyncio.AbstractEventLoop:
        await manager.async_add_platform(
            "l", platform(async_pre_backup=pre, async_post_backup=post)
        )
        await manager.async_create_backup(name="one")
        return asyncio.get_running_loop()

    async def second() -> asyncio.AbstractEventLoop:
        await manager.async_create_backup(name="two")
        return asyncio.get_running_loop()

    loop_one = asyncio.run(first())
    loop_two = asyncio.run(second())
    assert loops == [loop_one, loop_one, loop_two, loop_two]


async def test_loop_keeps_running_while_rust_waits_on_an_agent(tmp_path: Path) -> None:
    release = asyncio.Event()
    ticks = 0

    class Waiting(FolderAgent):
        async def async_upload_backup(self, **kwargs: Any) -> None:
            await release.wait()

    async def agents(hass: Any) -> list[BackupSyncAgent]:
        return [Waiting("w", tmp_path / "remote")]

    manager = habackup.BackupManager(Hass(), config_dir=make_config_dir(tmp_path / "config"))
    await manager.async_add_platform("w", platform(async_get_backup_sync_agents=agents))
    task = asyncio.create_task(manager.async_create_backup(name="x"))
    while ticks < 50:
        await asyncio.sleep(0.001)
        ticks += 1
    assert not task.done()
    release.set()
    backup = await task
    assert backup.synced_agents == ["w.w"]
