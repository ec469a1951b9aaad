"""The manager's verify (a result per place a copy is stored) and its retention policy (applied
after each backup, per agent), with an object-store agent on moto, agents written in Python
and the backup dir."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
from helpers import make_config_dir
from stores import Backend, s3_backend
from test_manager import FolderAgent, Hass, leftovers

import habackup
from habackup import BackupSyncAgent, RetentionPolicy, SyncedBackup

PASSWORD = "s3cret"


class ListingAgent(FolderAgent):
    """A FolderAgent whose listing carries everything it was given, the sha256 included."""

    async def async_list_backups(self, **kwargs: Any) -> list[SyncedBackup]:
        self.calls.append(f"list:{self.name}")
        if not self.remote.exists():
            return []
        return [
            SyncedBackup.from_metadata(json.loads(p.read_text()))
            for p in sorted(self.remote.glob("*.json"))
        ]


class Platform:
    def __init__(self, *agents: BackupSyncAgent) -> None:
        self.agents = list(agents)

    async def async_get_backup_sync_agents(self, hass: Any) -> list[BackupSyncAgent]:
        return self.agents


async def manager_with_agents(
    tmp_path: Path, store: Backend, retention: RetentionPolicy | None = None
) -> habackup.BackupManager:
    manager = habackup.BackupManager(
        Hass(), config_dir=make_config_dir(tmp_path / "config"), retention=retention
    )
    await manager.async_add_platform(
        "test",
        Platform(
            store.agent("s3"),
            ListingAgent("listing", tmp_path / "listing"),
            FolderAgent("plain", tmp_path / "plain"),
        ),
    )
    return manager


@pytest.fixture
def store(s3_server: object) -> Backend:
    return s3_backend(s3_server, f"mgr{random.getrandbits(32):x}")


async def test_verify_where_each_copy_is_stored(
    store: Backend, tmp_path: Path
) -> None:
    manager = await manager_with_agents(tmp_path, store)
    backup = await manager.async_create_backup(name="Checked", password=PASSWORD)
    slug = backup.slug
    places = ["local", "test.s3", "test.listing", "test.plain"]

    results = await manager.async_verify_backup(slug)
    assert sorted(results) == sorted(places)
    assert all(r.ok for r in results.values()), results
    assert results["test.s3"].location == store.agent().url
    assert results["local"].location == str(manager.backup_dir)
    assert results["test.s3"].sha256 == results["test.listing"].sha256 == backup_sha(backup)
    # The plain agent lists no sha256: its copy is checked by size, and that is said.
    assert any("no sha256" in w for w in results["test.plain"].warnings)
    deep = await manager.async_verify_backup(slug, deep=True, password=PASSWORD)
    assert all(r.ok and r.deep for r in deep.values()), deep
    wrong = await manager.async_verify_backup(slug, deep=True, password="nope")
    assert not any(r.ok for r in wrong.values())
    assert all("password" in r.problems[0] for r in wrong.values()), wrong

    # One byte flipped in the store's copy and in the listing agent's; the plain agent's copy
    # cut short.
    data = bytearray(store.get(f"{slug}.tar"))
    data[len(data) // 2] ^= 0x01
    store.put(f"{slug}.tar", bytes(data))
    (tmp_path / "listing" / f"{slug}.tar").write_bytes(bytes(data))
    (tmp_path / "plain" / f"{slug}.tar").write_bytes(bytes(data[:-4096]))
    results = await manager.async_verify_backup(slug)
    assert [p for p in places if results[p].ok] == ["local"]
    assert any("sha256" in p for p in results["test.s3"].problems)
    assert any("sha256" in p for p in results["test.listing"].problems)
    assert any("bytes" in p for p in results["test.plain"].problems)
    # Nothing of the downloads is left in the backup dir, nor named in a problem.
    assert leftovers(manager.backup_dir) == []
    assert all(".habackup-" not in p for r in results.values() for p in r.problems)

    only = await manager.async_verify_backup(slug, agent_ids=["local", "test.s3"])
    assert sorted(only) == ["local", "test.s3"]
    await manager.async_remove_backup(slug)
    with pytest.raises(habackup.BackupNotFound):
        await manager.async_verify_backup(slug)


def backup_sha(backup: habackup.Backup) -> str:
    assert backup.path is not None
    return hashlib.sha256(backup.path.read_bytes()).hexdigest()


async def test_verify_names_a_place_that_lacks_the_backup(
    store: Backend, tmp_path: Path
) -> None:
    manager = await manager_with_agents(tmp_path, store)
    backup = await manager.async_create_backup(name="Here")
    await store.agent().async_delete_backup(id=backup.slug)
    by_default = await manager.async_verify_backup(backup.slug)
    assert "test.s3" not in by_default
    named = await manager.async_verify_backup(backup.slug, agent_ids=["test.s3", "local"])
    assert named["local"].ok
    assert not named["test.s3"].ok
    assert "not found" in named["test.s3"].problems[0]


async def test_retention_after_each_backup(store: Backend, tmp_path: Path) -> None:
    policy = RetentionPolicy(keep_last=2, tz="UTC")
    manager = await manager_with_agents(tmp_path, store, retention=policy)
    assert manager.retention == policy
    events: list[dict[str, Any]] = []
    manager.async_subscribe_events(events.append)
    made = [await manager.async_create_backup(name=f"Nightly {i}") for i in range(3)]
    assert made[0].pruned == made[1].pruned == {}
    first = made[0].slug
    assert made[2].pruned == {
        "local": [first],
        "test.s3": [first],
        "test.listing": [first],
        "test.plain": [first],
    }
    cleaned = [e for e in events if e.get("removed")]
    assert sorted(e["agent_id"] for e in cleaned) == sorted(made[2].pruned)
    assert all(e["stage"] == "cleaning_up" and e["removed"] == [first] for e in cleaned)
    backups, failed = await manager.async_get_backups()
    kept = {made[1].slug, made[2].slug}
    assert (set(backups), failed) == (kept, {})
    assert all(len(backups[s].agents) == 3 for s in kept)
    assert {b.slug for b in await store.agent().async_list_backups()} == kept
    assert not (manager.backup_dir / f"{first}.tar").exists()
    assert store.names() == {f"{s}{ext}" for s in kept for ext in (".tar", ".metadata.json")}


class Undeletable(FolderAgent):
    async def async_delete_backup(self, *, id: str, **kwargs: Any) -> None:
        raise habackup.BackupAgentError(f"{id} is under legal hold")


async def test_a_failed_removal_never_fails_the_backup(tmp_path: Path) -> None:
    manager = habackup.BackupManager(
        Hass(),
        config_dir=make_config_dir(tmp_path / "config"),
        retention=RetentionPolicy(keep_last=1),
    )
    await manager.async_add_platform("test", Platform(Undeletable("held", tmp_path / "held")))
    events: list[dict[str, Any]] = []
    manager.async_subscribe_events(events.append)
    first = await manager.async_create_backup(name="One")
    second = await manager.async_create_backup(name="Two")
    assert second.synced_agents == ["test.held"]
    assert second.pruned == {"local": [first.slug]}
    [failure] = [e for e in events if e.get("error")]
    assert failure["agent_id"] == "test.held"
    assert "legal hold" in failure["error"]
    assert (tmp_path / "held" / f"{first.slug}.tar").exists()


@pytest.mark.parametrize(
    "policy",
    [RetentionPolicy(), RetentionPolicy(keep_last=0), RetentionPolicy(keep_within="1w"),
     RetentionPolicy(keep_last=1, tz="Nowhere/Atlantis")],
)
def test_a_bad_policy_is_refused_up_front(policy: RetentionPolicy, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"keep rule|duration|time zone"):
        habackup.BackupManager(
            Hass(), config_dir=make_config_dir(tmp_path / "config"), retention=policy
        )
