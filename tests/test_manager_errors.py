"""Every failure path of the manager: hooks, archive, agents, timeouts, cancellation, busy state
and malformed platforms."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import make_config_dir
from test_manager import FolderAgent, Hass, leftovers, platform

import habackup
from habackup import BackupSyncAgent, BackupSyncMetadata


class HookFailure(Exception):
    """A hook's own exception type."""


class Recorder:
    """Hooks that record what ran and can fail or wait."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    def hooks(
        self,
        domain: str,
        *,
        pre_fails: bool = False,
        post_fails: bool = False,
        pre_waits: bool = False,
    ) -> Any:
        async def async_pre_backup(hass: Any) -> None:
            self.events.append(f"pre:{domain}:start")
            self.started.set()
            try:
                if pre_waits:
                    await self.release.wait()
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                self.events.append(f"pre:{domain}:cancelled")
                raise
            if pre_fails:
                raise HookFailure(f"{domain} cannot pause")
            self.events.append(f"pre:{domain}:done")

        async def async_post_backup(hass: Any) -> None:
            await asyncio.sleep(0.01)
            self.events.append(f"post:{domain}")
            if post_fails:
                raise HookFailure(f"{domain} cannot resume")

        return platform(async_pre_backup=async_pre_backup, async_post_backup=async_post_backup)


def tars(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.tar") if p.name != "old.tar")


@pytest.fixture
def manager(tmp_path: Path) -> habackup.BackupManager:
    return habackup.BackupManager(Hass(), config_dir=make_config_dir(tmp_path / "config"))


async def test_failing_pre_hook(manager: habackup.BackupManager) -> None:
    hooks = Recorder()
    await manager.async_add_platform("good", hooks.hooks("good"))
    await manager.async_add_platform("bad", hooks.hooks("bad", pre_fails=True))

    with pytest.raises(habackup.BackupHookError) as caught:
        await manager.async_create_backup(name="x")

    assert caught.value.domain == "bad"
    assert caught.value.stage == "pre_backup"
    assert isinstance(caught.value.__cause__, HookFailure)
    assert str(caught.value.__cause__) == "bad cannot pause"
    # Every pre hook completed, every post hook ran, no archive was written.
    assert "pre:good:done" in hooks.events
    assert sorted(e for e in hooks.events if e.startswith("post")) == ["post:bad", "post:good"]
    assert tars(manager.backup_dir) == []
    assert manager.state == "idle"


async def test_failing_post_hook(manager: habackup.BackupManager) -> None:
    hooks = Recorder()
    await manager.async_add_platform("good", hooks.hooks("good"))
    await manager.async_add_platform("bad", hooks.hooks("bad", post_fails=True))

    with pytest.raises(habackup.BackupHookError) as caught:
        await manager.async_create_backup(name="x")

    assert (caught.value.domain, caught.value.stage) == ("bad", "post_backup")
    assert isinstance(caught.value.__cause__, HookFailure)
    assert "post:good" in hooks.events
    assert tars(manager.backup_dir) == []
    assert leftovers(manager.backup_dir) == []
    assert manager.state == "idle"


async def test_archive_failure_still_runs_post_hooks(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("not a directory")
    manager = habackup.BackupManager(
        Hass(),
        config_dir=make_config_dir(tmp_path / "config"),
        backup_dir=tmp_path / "a_file" / "backups",
    )
    hooks = Recorder()
    await manager.async_add_platform("a", hooks.hooks("a"))

    with pytest.raises(habackup.ArchiveError):
        await manager.async_create_backup(name="x")

    assert hooks.events == ["pre:a:start", "pre:a:done", "post:a"]
    assert manager.state == "idle"


async def test_one_agent_raises_one_hangs_one_works(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    class Raising(FolderAgent):
        async def async_upload_backup(self, **kwargs: Any) -> None:
            raise ConnectionRefusedError("remote refused")

    class Hanging(FolderAgent):
        async def async_upload_backup(self, **kwargs: Any) -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                seen.append("hanging:cancelled")
                raise

    remote = tmp_path / "remote"

    async def agents(hass: Any) -> list[BackupSyncAgent]:
        return [Raising("raising", remote), Hanging("hanging", remote), FolderAgent("ok", remote)]

    manager = habackup.BackupManager(
        Hass(), config_dir=make_config_dir(tmp_path / "config"), agent_timeout=0.5
    )
    await manager.async_add_platform("three", platform(async_get_backup_sync_agents=agents))
    caplog.set_level(logging.WARNING, logger="habackup")

    started = time.monotonic()
    backup = await manager.async_create_backup(name="Three agents")
    elapsed = time.monotonic() - started

    assert elapsed < 5
    assert backup.synced_agents == ["three.ok"]
    assert backup.failed_agents == {
        "three.raising": "ConnectionRefusedError: remote refused",
        "three.hanging": "BackupAgentError: upload timed out after 0.5 s",
    }
    assert backup.path is not None
    assert backup.path.exists()
    assert (remote / f"{backup.slug}.tar").exists()
    await asyncio.sleep(0.05)
    assert seen == ["hanging:cancelled"]
    logged = [r.getMessage() for r in caplog.records if r.name == "habackup.manager"]
    assert any("three.raising" in m and "remote refused" in m for m in logged), logged
    assert any("three.hanging" in m and "timed out" in m for m in logged), logged
    assert manager.state == "idle"


async def test_listing_errors_are_reported_per_agent(tmp_path: Path) -> None:
    class Broken(FolderAgent):
        async def async_list_backups(self, **kwargs: Any) -> Any:
            raise PermissionError("token expired")

    class Hanging(FolderAgent):
        async def async_list_backups(self, **kwargs: Any) -> Any:
            await asyncio.sleep(3600)

    remote = tmp_path / "remote"

    async def agents(hass: Any) -> list[BackupSyncAgent]:
        return [Broken("broken", remote), Hanging("hanging", remote), FolderAgent("ok", remote)]

    manager = habackup.BackupManager(
        Hass(), config_dir=make_config_dir(tmp_path / "config"), agent_timeout=0.3
    )
    await manager.async_add_platform("d", platform(async_get_backup_sync_agents=agents))
    backup = await manager.async_create_backup(name="Listed", agent_ids=["d.ok"])

    backups, errors = await manager.async_get_backups()

    assert set(errors) == {"d.broken", "d.hanging"}
    assert all(type(e) is habackup.BackupAgentError for e in errors.values())
    assert isinstance(errors["d.broken"].__cause__, PermissionError)
    assert "token expired" in str(errors["d.broken"])
    assert "timed out" in str(errors["d.hanging"])
    assert backups[backup.slug].agents == {"d.ok": backup.slug}


async def test_second_create_while_one_runs(manager: habackup.BackupManager) -> None:
    hooks = Recorder()
    await manager.async_add_platform("slow", hooks.hooks("slow", pre_waits=True))
    first = asyncio.create_task(manager.async_create_backup(name="first"))
    await hooks.started.wait()
    assert manager.state == "create_backup"

    with pytest.raises(habackup.BackupManagerError, match=r"^Backup manager busy: create_backup$"):
        await manager.async_create_backup(name="second")
    with pytest.raises(habackup.BackupManagerError, match="busy: create_backup"):
        await manager.async_restore_backup("00000000")

    hooks.release.set()
    backup = await first
    assert backup.name == "first"
    assert manager.state == "idle"


async def test_cancel_during_pre_hook(manager: habackup.BackupManager) -> None:
    hooks = Recorder()
    await manager.async_add_platform("slow", hooks.hooks("slow", pre_waits=True))
    task = asyncio.create_task(manager.async_create_backup(name="x"))
    await hooks.started.wait()

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert hooks.events == ["pre:slow:start", "pre:slow:cancelled", "post:slow"]
    assert tars(manager.backup_dir) == []
    assert manager.state == "idle"


def make_big_config(root: Path, megabytes: int) -> None:
    make_config_dir(root)
    rnd = random.Random(3)
    for i in range(megabytes // 2):
        (root / f"media{i}.bin").write_bytes(rnd.randbytes(2 * 1024 * 1024))


async def test_cancel_during_archive(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    make_big_config(config_dir, 60)
    manager = habackup.BackupManager(Hass(), config_dir=config_dir)
    hooks = Recorder()
    await manager.async_add_platform("a", hooks.hooks("a"))
    uploads: list[str] = []

    class Agent(FolderAgent):
        async def async_upload_backup(self, **kwargs: Any) -> None:
            uploads.append("upload")

    async def agents(hass: Any) -> list[BackupSyncAgent]:
        return [Agent("x", tmp_path / "remote")]

    await manager.async_add_platform("b", platform(async_get_backup_sync_agents=agents))
    task = asyncio.create_task(manager.async_create_backup(name="big"))
    deadline = time.monotonic() + 10
    while not leftovers(manager.backup_dir):
        assert not task.done(), "finished before its temp file was seen"
        assert time.monotonic() < deadline
        await asyncio.sleep(0.001)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert hooks.events == ["pre:a:start", "pre:a:done", "post:a"]
    assert leftovers(manager.backup_dir) == []
    assert tars(manager.backup_dir) == []
    assert uploads == []
    assert manager.state == "idle"


async def test_cancel_during_upload(manager: habackup.BackupManager, tmp_path: Path) -> None:
    hooks = Recorder()
    await manager.async_add_platform("a", hooks.hooks("a"))
    seen: list[str] = []
    uploading = asyncio.Event()

    class Slow(FolderAgent):
        async def async_upload_backup(
            self, *, path: Path, metadata: BackupSyncMetadata, **kwargs: Any
        ) -> None:
            partial = self.remote / f"{metadata['slug']}.partial"
            self.remote.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(b"part")
            uploading.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                seen.append("cancelled")
                partial.unlink()
                raise

    remote = tmp_path / "remote"

    async def agents(hass: Any) -> list[BackupSyncAgent]:
        return [Slow("slow", remote)]

    await manager.async_add_platform("b", platform(async_get_backup_sync_agents=agents))
    task = asyncio.create_task(manager.async_create_backup(name="x"))
    await uploading.wait()

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert seen == ["cancelled"]
    assert hooks.events[-1] == "post:a"
    assert leftovers(manager.backup_dir, remote) == []
    assert manager.state == "idle"
    # The manager is usable again.
    hooks.events.clear()
    await manager.async_create_backup(name="again", agent_ids=[])
    assert hooks.events[-1] == "post:a"


def test_keyboard_interrupt_in_an_agent_is_not_swallowed(tmp_path: Path) -> None:
    class Interrupting(FolderAgent):
        async def async_upload_backup(self, **kwargs: Any) -> None:
            raise KeyboardInterrupt

    async def agents(hass: Any) -> list[BackupSyncAgent]:
        return [Interrupting("ki", tmp_path / "remote")]

    loop = asyncio.new_event_loop()
    try:
        manager = habackup.BackupManager(Hass(), config_dir=make_config_dir(tmp_path / "config"))
        loop.run_until_complete(
            manager.async_add_platform("ki", platform(async_get_backup_sync_agents=agents))
        )
        task = loop.create_task(manager.async_create_backup(name="x"))
        # asyncio re-raises KeyboardInterrupt out of the loop from the agent's task...
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(task)
        # ...and the manager raises it too instead of recording a failed agent.
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(task)
        assert task.done()
        assert isinstance(task.exception(), KeyboardInterrupt)
        assert manager.state == "idle"
    finally:
        loop.close()


@pytest.mark.parametrize(
    "functions",
    [
        pytest.param("pre_only", id="only-pre-hook"),
        pytest.param("post_only", id="only-post-hook"),
        pytest.param("not_an_agent", id="not-an-agent"),
        pytest.param("duplicate", id="duplicate-agent-id"),
        pytest.param("raises", id="factory-raises"),
        pytest.param("not_a_list", id="factory-returns-non-list"),
    ],
)
async def test_bad_platforms(
    manager: habackup.BackupManager, tmp_path: Path, functions: str
) -> None:
    async def hook(hass: Any) -> None:
        pass

    remote = tmp_path / "remote"

    async def not_an_agent(hass: Any) -> list[Any]:
        return [object()]

    async def duplicate(hass: Any) -> list[BackupSyncAgent]:
        return [FolderAgent("same", remote), FolderAgent("same", remote)]

    async def raises(hass: Any) -> list[BackupSyncAgent]:
        raise LookupError("no credentials configured")

    async def not_a_list(hass: Any) -> int:
        return 42

    bad = {
        "pre_only": platform(async_pre_backup=hook),
        "post_only": platform(async_post_backup=hook),
        "not_an_agent": platform(async_get_backup_sync_agents=not_an_agent),
        "duplicate": platform(async_get_backup_sync_agents=duplicate),
        "raises": platform(async_get_backup_sync_agents=raises),
        "not_a_list": platform(async_get_backup_sync_agents=not_a_list),
    }[functions]

    with pytest.raises(habackup.BackupPlatformError) as caught:
        await manager.async_add_platform("bad", bad)

    if functions == "raises":
        assert isinstance(caught.value.__cause__, LookupError)
        assert "no credentials configured" in str(caught.value)
    assert dict(manager.sync_agents) == {}
    # Nothing was registered: the same domain can be added once fixed.
    await manager.async_add_platform("bad", platform(async_pre_backup=hook, async_post_backup=hook))


async def test_duplicate_agent_id_across_registrations(
    manager: habackup.BackupManager, tmp_path: Path
) -> None:
    async def agents(hass: Any) -> list[BackupSyncAgent]:
        return [FolderAgent("one", tmp_path)]

    await manager.async_add_platform("d", platform(async_get_backup_sync_agents=agents))
    with pytest.raises(habackup.BackupPlatformError, match="already registered"):
        await manager.async_add_platform("d", platform(async_get_backup_sync_agents=agents))
    assert list(manager.sync_agents) == ["d.one"]
