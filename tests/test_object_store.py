"""The built-in object-store agent against real stores: a folder, moto's S3 server, a wsgidav
WebDAV server, Azurite, OpenSSH's sshd (SFTP) and Samba's smbd (SMB), all on 127.0.0.1 and
started by the fixtures in ``servers`` and ``net_servers``."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import pwd
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers import make_config_dir
from net_servers import TEST_USER, SmbServer, SshServer

import habackup
from habackup import ObjectStoreBackupSyncAgent

MIB = 1024 * 1024
# Small parts so a 40 MiB backup goes up as a real multipart upload of several parts.
TUNING = {"multipart_threshold": "8MiB", "part_size": "5MiB", "retry_backoff": "20ms"}


@dataclass
class Backend:
    """One store: the agent's URL and options, plus raw access that bypasses the agent."""

    kind: str
    url: str
    options: dict[str, str]
    put: Callable[[str, bytes], None]
    get: Callable[[str], bytes]
    names: Callable[[], set[str]]
    secrets: list[str] = field(default_factory=list)
    pending_uploads: Callable[[], int] = lambda: 0

    def agent(self, name: str = "remote", **options: str) -> ObjectStoreBackupSyncAgent:
        return ObjectStoreBackupSyncAgent(
            name, self.url, options={**TUNING, **self.options, **options}
        )


def file_backend(root: Path) -> Backend:
    root.mkdir(parents=True, exist_ok=True)

    def put(name: str, data: bytes) -> None:
        (root / name).write_bytes(data)

    return Backend(
        kind="file",
        url=f"file://{root}",
        options={},
        put=put,
        get=lambda name: (root / name).read_bytes(),
        names=lambda: {p.name for p in root.iterdir()},
    )


def s3_backend(server: Any, bucket: str) -> Backend:
    client = server.client()
    client.create_bucket(Bucket=bucket)

    def names() -> set[str]:
        listed = client.list_objects_v2(Bucket=bucket, Prefix="ha/")
        return {o["Key"].removeprefix("ha/") for o in listed.get("Contents", [])}

    def pending() -> int:
        return len(client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))

    return Backend(
        kind="s3",
        url=f"s3://{bucket}/ha",
        options=server.options(bucket),
        put=lambda name, data: client.put_object(Bucket=bucket, Key=f"ha/{name}", Body=data),
        get=lambda name: client.get_object(Bucket=bucket, Key=f"ha/{name}")["Body"].read(),
        names=names,
        secrets=[server.secret_key],
        pending_uploads=pending,
    )


def webdav_backend(server: Any, folder: str) -> Backend:
    root = server.root / folder

    def put(name: str, data: bytes) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)

    host = server.url.removeprefix("http://")
    return Backend(
        kind="webdav",
        url=f"http://{server.user}:{server.password}@{host}/{folder}/backups",
        options={},
        put=lambda name, data: put(f"backups/{name}", data),
        get=lambda name: (root / "backups" / name).read_bytes(),
        names=lambda: {p.name for p in (root / "backups").iterdir()}
        if (root / "backups").exists()
        else set(),
        secrets=[server.password],
    )


def azure_backend(server: Any, container: str) -> Backend:
    server.make_container(container)

    def names() -> set[str]:
        return {n.removeprefix("ha/") for n in server.list_blobs(container) if n.startswith("ha/")}

    def put(name: str, data: bytes) -> None:
        status, body = server.request(
            "PUT", f"/{container}/ha/{name}", data, {"x-ms-blob-type": "BlockBlob"}
        )
        assert status == 201, body

    def get(name: str) -> bytes:
        status, body = server.request("GET", f"/{container}/ha/{name}")
        assert status == 200, body
        data: bytes = body
        return data

    return Backend(
        kind="azure",
        url=f"az://{container}/ha",
        options=server.options(container),
        put=put,
        get=get,
        names=names,
        secrets=[server.key],
    )


def _owned_folder(root: Path) -> Backend:
    """Raw access to a folder that sshd or smbd serves: created for, and writable by, the Unix
    user the servers log in as (files the test writes are handed to it too)."""
    user = pwd.getpwnam(TEST_USER)
    root.mkdir(parents=True, exist_ok=True)
    os.chown(root, user.pw_uid, user.pw_gid)

    def put(name: str, data: bytes) -> None:
        (root / name).write_bytes(data)
        os.chown(root / name, user.pw_uid, user.pw_gid)

    return Backend(
        kind="",
        url="",
        options={},
        put=put,
        get=lambda name: (root / name).read_bytes(),
        names=lambda: {p.name for p in root.iterdir()},
    )


def sftp_backend(server: SshServer, folder: str) -> Backend:
    backend = _owned_folder(server.creds.data / folder)
    backend.kind, backend.url = "sftp", server.url(folder)
    backend.options, backend.secrets = server.options(), [server.creds.password]
    return backend


def smb_backend(server: SmbServer, folder: str) -> Backend:
    backend = _owned_folder(server.folder() / folder)
    backend.kind, backend.url = "smb", server.url(folder)
    backend.options, backend.secrets = server.options(), [server.creds.password]
    return backend


BACKENDS = ["file", "s3", "webdav", "azure", "sftp", "smb"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    unique = f"t{random.getrandbits(40):010x}"
    if request.param == "file":
        return file_backend(tmp_path / "remote")
    if request.param == "s3":
        return s3_backend(request.getfixturevalue("s3_server"), unique)
    if request.param == "webdav":
        return webdav_backend(request.getfixturevalue("webdav_server"), unique)
    if request.param == "sftp":
        return sftp_backend(request.getfixturevalue("sshd_server"), unique)
    if request.param == "smb":
        return smb_backend(request.getfixturevalue("smbd_server"), unique)
    return azure_backend(request.getfixturevalue("azurite_server"), unique)


@pytest.fixture(scope="module")
def big_backup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40 MiB backup: incompressible data, so it stays bigger than the multipart threshold."""
    root = tmp_path_factory.mktemp("big")
    config = make_config_dir(root / "config")
    (config / "media.bin").write_bytes(random.Random(7).randbytes(40 * MIB))
    backup = habackup.create_archive(config, root / "out", name="Big backup")
    assert backup.path is not None
    assert backup.size > 40 * MIB
    return backup.path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
