"""The built-in object-store agent against real stores: a folder, moto's S3 server, a wsgidav
WebDAV server, Azurite, OpenSSH's sshd (SFTP) and Samba's smbd (SMB), all on 127.0.0.1 and
started by the fixtures in ``servers`` and ``net_servers``."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from helpers import make_config_dir
from stores import MIB, Backend, sha256

import habackup
from habackup import ObjectStoreBackupSyncAgent


def stray_files(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir()] if directory.exists() else []


async def test_round_trip_of_a_multipart_backup(
    backend: Backend, big_backup: Path, tmp_path: Path
) -> None:
    info = habackup.read_backup(big_backup)
    agent = backend.agent()
    progress: list[tuple[int, int]] = []
    await agent.async_upload_backup(
        path=big_backup, metadata=None, on_progress=lambda d, t: progress.append((d, t))
    )
    size = big_backup.stat().st_size
    assert backend.names() == {f"{info.slug}.tar", f"{info.slug}.metadata.json"}
    assert backend.pending_uploads() == 0
    sidecar = json.loads(backend.get(f"{info.slug}.metadata.json"))
    assert sidecar["sha256"] == sha256(big_backup)
    assert sidecar["size"] == size
    assert progress[-1] == (size, size)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)

    listed = await agent.async_list_backups()
    assert [b.slug for b in listed] == [info.slug]
    copy = listed[0]
    assert (copy.id, copy.name, copy.date, copy.size) == (info.slug, "Big backup", info.date, size)
    assert copy.sha256 == sidecar["sha256"]
    assert copy.homeassistant_version == info.homeassistant_version

    dest = tmp_path / "downloads" / f"{info.slug}.tar"
    await agent.async_download_backup(id=info.slug, path=dest)
    assert sha256(dest) == sidecar["sha256"]
    assert stray_files(dest.parent) == [dest.name]

    await agent.async_delete_backup(id=info.slug)
    assert backend.names() == set()
    assert await agent.async_list_backups() == []
    with pytest.raises(habackup.BackupNotFound, match=info.slug):
        await agent.async_delete_backup(id=info.slug)
    with pytest.raises(habackup.BackupNotFound, match=info.slug):
        await agent.async_download_backup(id=info.slug, path=tmp_path / "again.tar")
    assert not (tmp_path / "again.tar").exists()


async def test_corrupted_object_is_refused_and_nothing_is_kept(
    backend: Backend, small_backup: Path, tmp_path: Path
) -> None:
    slug = habackup.read_backup(small_backup).slug
    agent = backend.agent()
    await agent.async_upload_backup(path=small_backup)
    data = bytearray(backend.get(f"{slug}.tar"))
    data[len(data) // 2] ^= 0xFF
    backend.put(f"{slug}.tar", bytes(data))
    dest = tmp_path / "dl" / f"{slug}.tar"
    dest.parent.mkdir()
    dest.write_bytes(b"the previous file")
    with pytest.raises(habackup.BackupAgentError, match="sha256"):
        await agent.async_download_backup(id=slug, path=dest)
    assert dest.read_bytes() == b"the previous file"
    assert stray_files(dest.parent) == [dest.name]

    # Truncated: the size check catches it before the hash is even compared.
    backend.put(f"{slug}.tar", bytes(data[:-10240]))
    with pytest.raises(habackup.BackupAgentError, match="bytes"):
        await agent.async_download_backup(id=slug, path=tmp_path / "dl2" / "x.tar")
    assert stray_files(tmp_path / "dl2") == []


async def test_tar_without_sidecar_is_listed_and_orphan_sidecar_skipped(
    backend: Backend, small_backup: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    info = habackup.read_backup(small_backup)
    backend.put(f"{info.slug}.tar", small_backup.read_bytes())
    backend.put("deadbeef.metadata.json", json.dumps({"slug": "deadbeef", "size": 1}).encode())
    agent = backend.agent()
    with caplog.at_level(logging.WARNING, logger="habackup"):
        listed = await agent.async_list_backups()
    assert [(b.slug, b.name, b.date, b.size) for b in listed] == [
        (info.slug, info.name, info.date, small_backup.stat().st_size)
    ]
    assert listed[0].sha256 is None
    assert "deadbeef" in caplog.text
    # Without a sidecar there is no sha256, but the download still checks size and backup.json.
    dest = tmp_path / "x.tar"
    await agent.async_download_backup(id=info.slug, path=dest)
    assert dest.read_bytes() == small_backup.read_bytes()


async def test_upload_whose_file_does_not_match_its_metadata_stores_nothing(
    backend: Backend, small_backup: Path
) -> None:
    info = habackup.read_backup(small_backup)
    metadata: habackup.BackupSyncMetadata = {
        "date": info.date,
        "slug": info.slug,
        "size": small_backup.stat().st_size,
        "name": info.name,
        "homeassistant": "2025.4.4",
        "protected": False,
        "sha256": "0" * 64,
    }
    agent = backend.agent()
    with pytest.raises(habackup.InvalidBackupError, match="sha256") as raised:
        await agent.async_upload_backup(path=small_backup, metadata=metadata)
    assert raised.value.path == str(small_backup)
    assert backend.names() == set()
    with pytest.raises(habackup.ArchiveError, match=r"missing\.tar"):
        await agent.async_upload_backup(path=small_backup.parent / "missing.tar")
    assert backend.names() == set()


async def test_cancelled_upload_leaves_no_object(backend: Backend, big_backup: Path) -> None:
    agent = backend.agent()
    started = asyncio.Event()

    def on_progress(done: int, total: int) -> None:
        if done >= 10 * MIB:
            started.set()

    task = asyncio.create_task(
        agent.async_upload_backup(path=big_backup, on_progress=on_progress)
    )
    await asyncio.wait_for(started.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert backend.names() == set()
    assert backend.pending_uploads() == 0


async def test_repeated_upload_sends_nothing_and_a_replacement_takes_over(
    backend: Backend, small_backup: Path, big_backup: Path
) -> None:
    info = habackup.read_backup(small_backup)
    agent = backend.agent()
    await agent.async_upload_backup(path=small_backup)
    before = backend.get(f"{info.slug}.tar")
    progress: list[tuple[int, int]] = []
    await agent.async_upload_backup(
        path=small_backup,
        metadata={**_metadata(small_backup), "sha256": sha256(small_backup)},
        on_progress=lambda d, t: progress.append((d, t)),
    )
    size = small_backup.stat().st_size
    # Only the start and the end: no bytes went anywhere in between.
    assert set(progress) <= {(0, size), (size, size)}
    assert backend.get(f"{info.slug}.tar") == before

    # Other bytes under the same slug replace the stored copy, sidecar included.
    replacement = {**_metadata(big_backup), "slug": info.slug, "sha256": sha256(big_backup)}
    await agent.async_upload_backup(path=big_backup, metadata=replacement)
    [listed] = await agent.async_list_backups()
    assert (listed.slug, listed.size, listed.sha256) == (
        info.slug,
        big_backup.stat().st_size,
        replacement["sha256"],
    )


def _metadata(path: Path) -> habackup.BackupSyncMetadata:
    info = habackup.read_backup(path)
    return {
        "date": info.date,
        "slug": info.slug,
        "size": path.stat().st_size,
        "name": info.name,
        "homeassistant": info.homeassistant_version or "",
        "protected": info.protected,
        "sha256": "",
    }


async def test_an_unreadable_sidecar_does_not_block_the_upload(
    backend: Backend, small_backup: Path
) -> None:
    slug = habackup.read_backup(small_backup).slug
    backend.put(f"{slug}.metadata.json", b"{not json")
    await backend.agent().async_upload_backup(path=small_backup)
    assert json.loads(backend.get(f"{slug}.metadata.json"))["sha256"] == sha256(small_backup)


async def test_a_repeated_upload_without_metadata_sends_nothing(
    backend: Backend, small_backup: Path
) -> None:
    # What `habackup upload` does: no metadata, so no digest given; the stored copy's sidecar
    # has one, and a file of the same size is hashed locally rather than sent again.
    agent = backend.agent()
    await agent.async_upload_backup(path=small_backup)
    progress: list[tuple[int, int]] = []
    await agent.async_upload_backup(
        path=small_backup, on_progress=lambda d, t: progress.append((d, t))
    )
    size = small_backup.stat().st_size
    assert set(progress) <= {(0, size), (size, size)}


async def test_a_listed_backup_with_an_unreadable_sidecar_downloads(
    backend: Backend, small_backup: Path, tmp_path: Path
) -> None:
    agent = backend.agent()
    await agent.async_upload_backup(path=small_backup)
    slug = habackup.read_backup(small_backup).slug
    backend.put(f"{slug}.metadata.json", b"garbage{")
    [listed] = await agent.async_list_backups()
    assert listed.slug == slug
    await agent.async_download_backup(id=slug, path=tmp_path / "got.tar")
    assert sha256(tmp_path / "got.tar") == sha256(small_backup)


async def test_manager_and_file_uploads_list_the_same_extra_metadata(tmp_path: Path) -> None:
    config = make_config_dir(tmp_path / "config")
    remote = tmp_path / "remote"
    agent = ObjectStoreBackupSyncAgent("store", remote.as_uri())
    platform = type("Platform", (), {})()

    async def agents(hass: object) -> list[habackup.BackupSyncAgent]:
        return [agent]

    platform.async_get_backup_sync_agents = agents  # type: ignore[attr-defined]
    manager = habackup.BackupManager(None, config_dir=config)
    await manager.async_add_platform("test", platform)
    by_manager = await manager.async_create_backup(name="By the manager")
    assert by_manager.synced_agents == ["test.store"]
    # The same kind of file sent the way `habackup upload` sends it.
    by_file = habackup.create_archive(config, tmp_path / "out", name="By upload")
    assert by_file.path is not None
    await agent.async_upload_backup(path=by_file.path)
    listed = {b.slug: b for b in await agent.async_list_backups()}
    extras = [dict(listed[b.slug].extra_metadata) for b in (by_manager, by_file)]
    assert extras[0].keys() == extras[1].keys() == {"instance_id", "with_automatic_settings"}
    assert extras[0] == extras[1]
