"""The manager end to end with an integration written the way the seed page shows: hooks, the real
archiver, and a sync agent that stores its backups in a local "remote" directory.

The other manager test modules import the integration and helpers from here."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import sqlite3
import types
from pathlib import Path
from typing import Any

import pytest
from helpers import is_temp_name, make_config_dir

import habackup
from habackup import BackupSyncAgent, BackupSyncMetadata, SyncedBackup


class FolderAgent(BackupSyncAgent):
    """Stores `<slug>.tar` and `<slug>.json` (the metadata) in `remote`."""

    def __init__(self, name: str, remote: Path, calls: list[str] | None = None) -> None:
        super().__init__(name)
        self.remote = remote
        self.calls = calls if calls is not None else []
        self.uploads: list[tuple[Path, BackupSyncMetadata]] = []

    async def async_upload_backup(
        self, *, path: Path, metadata: BackupSyncMetadata, **kwargs: Any
    ) -> None:
        self.calls.append(f"upload:{self.name}")
        self.uploads.append((path, metadata))
        self.remote.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.copyfile, path, self.remote / f"{metadata['slug']}.tar")
        (self.remote / f"{metadata['slug']}.json").write_text(json.dumps(metadata))

    async def async_download_backup(self, *, id: str, path: Path, **kwargs: Any) -> None:
        self.calls.append(f"download:{self.name}")
        await asyncio.to_thread(shutil.copyfile, self.remote / f"{id}.tar", path)

    async def async_list_backups(self, **kwargs: Any) -> list[SyncedBackup]:
        self.calls.append(f"list:{self.name}")
        if not self.remote.exists():
            return []
        backups = []
        for meta_file in sorted(self.remote.glob("*.json")):
            meta = json.loads(meta_file.read_text())
            backups.append(
                SyncedBackup(
                    id=meta["slug"],
                    slug=meta["slug"],
                    name=meta["name"],
                    date=meta["date"],
                    size=meta["size"],
                    protected=meta["protected"],
                )
            )
        return backups

    async def async_delete_backup(self, *, id: str, **kwargs: Any) -> None:
        self.calls.append(f"delete:{self.name}")
        (self.remote / f"{id}.tar").unlink()
        (self.remote / f"{id}.json").unlink()


def lorem_ipsum_platform(remote: Path, calls: list[str], backup_dir: Path) -> types.ModuleType:
    """The seed page's integration, verbatim in shape: hooks and `LoremIpsumBackupSyncAgent`."""
    module = types.ModuleType("lorem_ipsum.backup")

    class LoremIpsumBackupSyncAgent(FolderAgent):
        def __init__(self, name: str) -> None:
            super().__init__(name, remote, calls)

    async def async_pre_backup(hass: Any) -> None:
        """Perform operations before a backup starts."""
        calls.append("pre")
        module.tars_at_pre = sorted(p.name for p in backup_dir.glob("*.tar"))  # type: ignore[attr-defined]

    async def async_post_backup(hass: Any) -> None:
        """Perform operations after a backup finishes."""
        calls.append("post")
        module.tars_at_post = sorted(p.name for p in backup_dir.glob("*.tar"))  # type: ignore[attr-defined]

    async def async_get_backup_sync_agents(hass: Any) -> list[BackupSyncAgent]:
        """Register the backup sync agents."""
        return [LoremIpsumBackupSyncAgent("syncer")]

    module.LoremIpsumBackupSyncAgent = LoremIpsumBackupSyncAgent  # type: ignore[attr-defined]
    module.async_pre_backup = async_pre_backup  # type: ignore[attr-defined]
    module.async_post_backup = async_post_backup  # type: ignore[attr-defined]
    module.async_get_backup_sync_agents = async_get_backup_sync_agents  # type: ignore[attr-defined]
    return module


def platform(**functions: Any) -> types.SimpleNamespace:
    """A backup platform with exactly the given functions."""
    return types.SimpleNamespace(**functions)


def leftovers(*directories: Path) -> list[str]:
    """Temp or partial files anywhere under the directories."""
    found = []
    for directory in directories:
        if directory.exists():
            found += [
                str(p)
                for p in directory.rglob("*")
                if is_temp_name(p.name)
            ]
    return found


class Hass:
    """Stands in for HomeAssistant: opaque to the manager."""


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    return tmp_path / "remote"


@pytest.fixture
def setup(
    tmp_path: Path, remote: Path
) -> tuple[habackup.BackupManager, types.ModuleType, list[str]]:
    config_dir = make_config_dir(tmp_path / "config")
    manager = habackup.BackupManager(Hass(), config_dir=config_dir, ha_version="2025.4.4")
    calls: list[str] = []
    module = lorem_ipsum_platform(remote, calls, manager.backup_dir)
    return manager, module, calls


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_seed_integration_create_order_and_upload(
    setup: tuple[habackup.BackupManager, types.ModuleType, list[str]],
) -> None:
    manager, module, calls = setup
    await manager.async_add_platform("lorem_ipsum", module)
    agent = manager.sync_agents["lorem_ipsum.syncer"]
    assert list(manager.sync_agents) == ["lorem_ipsum.syncer"]
    assert isinstance(agent, module.LoremIpsumBackupSyncAgent)
    assert agent.name == "syncer"

    backup = await manager.async_create_backup(name="Seed")

    assert calls == ["pre", "post", "upload:syncer"]
    # The archive was written between the hooks.
    assert f"{backup.slug}.tar" not in module.tars_at_pre
    assert set(module.tars_at_post) - set(module.tars_at_pre) == {f"{backup.slug}.tar"}
    assert backup.synced_agents == ["lorem_ipsum.syncer"]
    assert backup.failed_agents == {}
    assert manager.state == "idle"

    [(path, metadata)] = agent.uploads
    assert isinstance(path, Path)
    assert path == backup.path == manager.backup_dir / f"{backup.slug}.tar"
    assert habackup.read_backup(path).slug == backup.slug
    types_by_key = {
        "date": str,
        "slug": str,
        "size": int,
        "name": str,
        "homeassistant": str,
        "protected": bool,
        "sha256": str,
        "database_included": bool,
        "homeassistant_included": bool,
        "addons": list,
        "folders": list,
        "extra": dict,
    }
    assert set(metadata) == set(types_by_key)
    for key, kind in types_by_key.items():
        assert type(metadata[key]) is kind, key
    assert metadata["slug"] == backup.slug
    assert len(metadata["slug"]) == 8
    assert int(metadata["slug"], 16) >= 0
    assert metadata["date"].endswith("+00:00")
    assert metadata["size"] == path.stat().st_size
    assert metadata["sha256"] == sha256(path)
    assert metadata["name"] == "Seed"
    assert metadata["homeassistant"] == "2025.4.4"
    assert metadata["protected"] is False
    # backup.json's extra, as Home Assistant's retention reads it back.
    assert set(metadata["extra"]) == {"instance_id", "with_automatic_settings"}
    assert metadata["homeassistant_included"] is True
    assert metadata["addons"] == metadata["folders"] == []


async def test_list_merges_local_and_agent_backups(
    setup: tuple[habackup.BackupManager, types.ModuleType, list[str]], tmp_path: Path
) -> None:
    manager, module, _calls = setup
    await manager.async_add_platform("lorem_ipsum", module)
    both = await manager.async_create_backup(name="Both", agent_ids=["lorem_ipsum.syncer"])
    local_only = await manager.async_create_backup(name="Local", agent_ids=[])
    # A backup only the agent holds.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    remote_only = habackup.create_archive(manager.config_dir, elsewhere, name="Remote")
    assert remote_only.path is not None
    agent = manager.sync_agents["lorem_ipsum.syncer"]
    await agent.async_upload_backup(
        path=remote_only.path,
        metadata={
            "date": remote_only.date,
            "slug": remote_only.slug,
            "size": remote_only.size,
            "name": remote_only.name,
            "homeassistant": "2025.4.4",
            "protected": False,
            "sha256": sha256(remote_only.path),
        },
    )

    backups, errors = await manager.async_get_backups()

    assert errors == {}
    assert set(backups) == {both.slug, local_only.slug, remote_only.slug}
    assert backups[both.slug].path == both.path
    assert backups[both.slug].agents == {"lorem_ipsum.syncer": both.slug}
    assert backups[local_only.slug].agents == {}
    assert backups[local_only.slug].path == local_only.path
    assert backups[remote_only.slug].path is None
    assert backups[remote_only.slug].agents == {"lorem_ipsum.syncer": remote_only.slug}
    assert backups[remote_only.slug].size == remote_only.size
    assert await manager.async_get_backup(remote_only.slug) == backups[remote_only.slug]
    assert await manager.async_get_backup("00000000") is None


async def test_download_through_agent_gives_back_a_valid_backup(
    setup: tuple[habackup.BackupManager, types.ModuleType, list[str]],
) -> None:
    manager, module, _calls = setup
    await manager.async_add_platform("lorem_ipsum", module)
    backup = await manager.async_create_backup(name="Round trip")
    assert backup.path is not None
    digest = sha256(backup.path)
    backup.path.unlink()

    path = await manager.async_download_backup(agent_id="lorem_ipsum.syncer", id=backup.slug)

    assert path == manager.backup_dir / f"{backup.slug}.tar"
    assert sha256(path) == digest
    assert habackup.read_backup(path).slug == backup.slug
    assert leftovers(manager.backup_dir) == []
    restored = (await manager.async_get_backups())[0][backup.slug]
    assert restored.path == path


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other_slug", "size"])
async def test_bad_download_leaves_nothing_behind(
    setup: tuple[habackup.BackupManager, types.ModuleType, list[str]],
    remote: Path,
    tmp_path: Path,
    damage: str,
) -> None:
    manager, module, _calls = setup
    await manager.async_add_platform("lorem_ipsum", module)
    backup = await manager.async_create_backup(name="Damaged")
    assert backup.path is not None
    backup.path.unlink()
    stored = remote / f"{backup.slug}.tar"
    if damage == "garbage":
        stored.write_bytes(b"not a tar" * 100)
    elif damage == "truncated":
        stored.write_bytes(stored.read_bytes()[:700])
    elif damage == "other_slug":
        other = habackup.create_archive(manager.config_dir, tmp_path / "other.tar", name="Other")
        assert other.path is not None
        shutil.copyfile(other.path, stored)
        meta = json.loads((remote / f"{backup.slug}.json").read_text())
        meta["size"] = other.size
        (remote / f"{backup.slug}.json").write_text(json.dumps(meta))
    else:
        with stored.open("ab") as f:
            f.write(b"\0" * 10240)
    before = sorted(manager.backup_dir.iterdir())

    with pytest.raises(habackup.InvalidBackupError):
        await manager.async_download_backup(agent_id="lorem_ipsum.syncer", id=backup.slug)

    assert sorted(manager.backup_dir.iterdir()) == before
    assert manager.state == "idle"


async def test_download_of_unknown_id_is_backup_not_found(
    setup: tuple[habackup.BackupManager, types.ModuleType, list[str]],
) -> None:
    manager, module, _calls = setup
    await manager.async_add_platform("lorem_ipsum", module)
    with pytest.raises(habackup.BackupNotFound):
        await manager.async_download_backup(agent_id="lorem_ipsum.syncer", id="deadbeef")
    with pytest.raises(habackup.BackupManagerError, match="Unknown backup agent"):
        await manager.async_download_backup(agent_id="nope.nope", id="deadbeef")


async def test_sync_backup_uploads_an_existing_backup_again(
    setup: tuple[habackup.BackupManager, types.ModuleType, list[str]], remote: Path
) -> None:
    manager, module, _calls = setup
    await manager.async_add_platform("lorem_ipsum", module)
    backup = await manager.async_create_backup(name="Later", agent_ids=[])
    assert backup.path is not None
    assert not remote.exists()

    synced = await manager.async_sync_backup(backup.slug)

    assert synced.synced_agents == ["lorem_ipsum.syncer"]
    assert synced.failed_agents == {}
    assert sha256(remote / f"{backup.slug}.tar") == sha256(backup.path)
    agent = manager.sync_agents["lorem_ipsum.syncer"]
    assert agent.uploads[-1][1]["sha256"] == sha256(backup.path)
    with pytest.raises(habackup.BackupNotFound):
        await manager.async_sync_backup("00000000")


async def test_remove_backup_locally_and_from_agents(
    setup: tuple[habackup.BackupManager, types.ModuleType, list[str]], remote: Path
) -> None:
    manager, module, _calls = setup
    await manager.async_add_platform("lorem_ipsum", module)
    backup = await manager.async_create_backup(name="Doomed")
    assert backup.path is not None
    assert backup.path.exists()

    await manager.async_remove_backup(backup.slug)

    assert not backup.path.exists()
    assert list(remote.iterdir()) == []
    assert (await manager.async_get_backups()) == ({}, {})
    with pytest.raises(habackup.BackupNotFound):
        await manager.async_remove_backup(backup.slug)


async def test_remove_with_an_agent_that_cannot_delete(tmp_path: Path) -> None:
    class NoDelete(FolderAgent):
        async_delete_backup = BackupSyncAgent.async_delete_backup

    remote = tmp_path / "remote"

    async def agents(hass: Any) -> list[BackupSyncAgent]:
        return [NoDelete("keeper", remote)]

    manager = habackup.BackupManager(Hass(), config_dir=make_config_dir(tmp_path / "config"))
    await manager.async_add_platform("keep", platform(async_get_backup_sync_agents=agents))
    backup = await manager.async_create_backup(name="Kept")

    with pytest.raises(habackup.BackupAgentError, match=r"keep\.keeper") as caught:
        await manager.async_remove_backup(backup.slug)

    assert isinstance(caught.value.__cause__, NotImplementedError)
    assert backup.path is not None
    assert not backup.path.exists()
    assert (remote / f"{backup.slug}.tar").exists()


async def test_restore_backup(tmp_path: Path) -> None:
    config_dir = make_config_dir(tmp_path / "config")
    manager = habackup.BackupManager(Hass(), config_dir=config_dir)
    backup = await manager.async_create_backup(name="Before")
    original = (config_dir / "configuration.yaml").read_text()
    (config_dir / "configuration.yaml").write_text("broken: true\n")
    (config_dir / "new_file.yaml").write_text("x: 1\n")
    db = sqlite3.connect(config_dir / "home-assistant_v2.db")
    db.execute("INSERT INTO states (entity_id, state) VALUES ('sensor.new', '1')")
    db.commit()
    db.close()
    db_after_change = sha256(config_dir / "home-assistant_v2.db")

    await manager.async_restore_backup(backup.slug, restore_database=False)

    assert (config_dir / "configuration.yaml").read_text() == original
    assert not (config_dir / "new_file.yaml").exists()
    assert sha256(config_dir / "home-assistant_v2.db") == db_after_change
    assert backup.path is not None
    assert backup.path.exists()
    assert manager.state == "idle"
    assert leftovers(config_dir) == []

    await manager.async_restore_backup(backup.slug)
    assert sha256(config_dir / "home-assistant_v2.db") != db_after_change
    with pytest.raises(habackup.BackupNotFound):
        await manager.async_restore_backup("00000000")


async def test_events_use_home_assistants_stage_and_state_names(
    setup: tuple[habackup.BackupManager, types.ModuleType, list[str]],
) -> None:
    manager, module, _calls = setup
    await manager.async_add_platform("lorem_ipsum", module)
    events: list[dict[str, Any]] = []
    unsubscribe = manager.async_subscribe_events(events.append)

    await manager.async_create_backup(name="Events")

    stages = [(e.get("stage"), e.get("state")) for e in events if "state" in e]
    assert stages == [
        (None, "in_progress"),
        ("home_assistant", "in_progress"),
        ("upload_to_agents", "in_progress"),
        ("cleaning_up", "in_progress"),
        (None, "completed"),
    ]
    assert events[-1] == {"manager_state": "idle"}
    progress = [e for e in events if "bytes_done" in e]
    assert progress
    assert progress[-1]["bytes_done"] == progress[-1]["bytes_total"]
    uploads = [e for e in events if "uploaded_bytes" in e]
    assert uploads == [
        {
            "manager_state": "create_backup",
            "stage": "upload_to_agents",
            "agent_id": "lorem_ipsum.syncer",
            "uploaded_bytes": uploads[0]["total_bytes"],
            "total_bytes": uploads[0]["total_bytes"],
        }
    ]
    unsubscribe()
    count = len(events)
    await manager.async_create_backup(name="Quiet")
    assert len(events) == count


async def test_protected_backup_through_the_manager(tmp_path: Path) -> None:
    config_dir = make_config_dir(tmp_path / "config")
    manager = habackup.BackupManager(Hass(), config_dir=config_dir)
    backup = await manager.async_create_backup(name="Secret", password="s3cret")
    assert backup.protected
    assert backup.path is not None
    assert habackup.validate_password(backup.path, "s3cret")
    original = (config_dir / "configuration.yaml").read_text()
    (config_dir / "configuration.yaml").write_text("broken: true\n")

    with pytest.raises(habackup.IncorrectPasswordError):
        await manager.async_restore_backup(backup.slug, password="wrong")
    assert (config_dir / "configuration.yaml").read_text() == "broken: true\n"
    assert manager.state == "idle"
    assert leftovers(config_dir) == []

    await manager.async_restore_backup(backup.slug, password="s3cret")
    assert (config_dir / "configuration.yaml").read_text() == original


async def test_restore_of_a_backup_without_database_keeps_the_current_one(tmp_path: Path) -> None:
    config_dir = make_config_dir(tmp_path / "config")
    manager = habackup.BackupManager(Hass(), config_dir=config_dir)
    backup = await manager.async_create_backup(name="No DB", include_database=False)
    db_before = sha256(config_dir / "home-assistant_v2.db")
    (config_dir / "configuration.yaml").write_text("changed: true\n")

    await manager.async_restore_backup(backup.slug, restore_database=True)

    assert sha256(config_dir / "home-assistant_v2.db") == db_before
    assert (config_dir / "configuration.yaml").read_text() != "changed: true\n"
    assert sorted(p.name for p in config_dir.iterdir() if p.name.startswith(".habackup")) == []



async def test_default_name_and_version_come_from_the_config_dir(tmp_path: Path) -> None:
    config_dir = make_config_dir(tmp_path / "config")
    manager = habackup.BackupManager(Hass(), config_dir=config_dir)
    for name in (None, "  "):
        backup = await manager.async_create_backup(name=name)
        assert backup.name == "Core 2025.1.2"
        assert backup.homeassistant_version == "2025.1.2"
        assert backup.path is not None
        backup.path.unlink()

    (config_dir / ".HA_VERSION").unlink()
    with pytest.raises(habackup.ArchiveError, match="not a Home Assistant config dir"):
        await manager.async_create_backup()
    assert manager.state == "idle"
    given = habackup.BackupManager(Hass(), config_dir=config_dir, ha_version="2024.6.0")
    backup = await given.async_create_backup()
    assert backup.name == "Core 2024.6.0"
    assert backup.homeassistant_version == "2024.6.0"
