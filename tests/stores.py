"""The built-in object-store agent's stores for tests: a folder, moto's S3 server, a wsgidav
WebDAV server and Azurite, each as a ``Backend`` (the agent's URL and options plus raw access
that bypasses the agent), and the ``backend`` fixture that runs a test against each of them."""

from __future__ import annotations

import hashlib
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
