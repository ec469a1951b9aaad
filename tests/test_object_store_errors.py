"""The object-store agent's failures: bad configuration at construction, unreachable servers,
and credentials that must never show up in a message, a repr or a log line."""

from __future__ import annotations

import base64
import logging
import random
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from flaky_proxy import flaky_proxy
from helpers import make_config_dir
from test_manager import FolderAgent, Hass, platform

import habackup
from habackup import ObjectStoreBackupSyncAgent

SECRET = "s3cr3t-Do-Not-Log"
FAST = {"max_retries": "1", "retry_backoff": "10ms", "connect_timeout": "2s"}
SMALL_PARTS = {"multipart_threshold": "8MiB", "part_size": "5MiB"}


@pytest.fixture
def dead_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def dead_agents(port: int) -> list[ObjectStoreBackupSyncAgent]:
    endpoint = f"http://127.0.0.1:{port}"
    return [
        ObjectStoreBackupSyncAgent(
            "dead-s3",
            "s3://bucket/ha",
            options={
                "aws_endpoint": endpoint,
                "aws_allow_http": True,
                "aws_access_key_id": "AKIDEXAMPLE",
                "aws_secret_access_key": SECRET,
                "aws_region": "us-east-1",
                **FAST,
            },
        ),
        ObjectStoreBackupSyncAgent(
            "dead-dav", f"http://user:{SECRET}@127.0.0.1:{port}/dav", options=FAST
        ),
        ObjectStoreBackupSyncAgent(
            "dead-azure",
            "az://container/ha",
            options={
                "azure_storage_account_name": "devstoreaccount1",
                "azure_storage_account_key": base64.b64encode(SECRET.encode() * 2).decode(),
                "azure_endpoint": f"{endpoint}/devstoreaccount1",
                "azure_allow_http": True,
                **FAST,
            },
        ),
    ]


@pytest.mark.parametrize(
    ("url", "options", "match"),
    [
        ("not a url", None, "invalid URL"),
        ("ftp://host/backups", None, "unsupported URL scheme"),
        ("s3://bucket/x", {"aws_endpont": "http://x"}, "unknown option 'aws_endpont'|aws_endpont"),
        ("file:///tmp/x", {"aws_region": "x"}, "aws_region"),
        ("memory://", {"part_size": "1k"}, "part_size"),
        ("memory://", {"max_concurrency": "0"}, "max_concurrency"),
        ("memory://", {"timeout": "soon"}, "timeout"),
        ("file://host/relative", None, "absolute path"),
        ("s3://bucket/x", {"part_size": "2MiB"}, "at least 5 MiB"),
        ("memory://", {"multipart_threshold": "1GiB"}, "64 MiB"),
    ],
)
def test_bad_configuration_is_refused_at_construction(
    url: str, options: dict[str, str] | None, match: str
) -> None:
    with pytest.raises(habackup.BackupAgentConfigError, match=match) as raised:
        ObjectStoreBackupSyncAgent("x", url, options=options)
    assert isinstance(raised.value, ValueError)
    assert isinstance(raised.value, habackup.BackupAgentError)


def test_repr_and_url_hide_credentials() -> None:
    agent = ObjectStoreBackupSyncAgent(
        "dav", f"https://me:{SECRET}@dav.example/backups?token={SECRET}"
    )
    assert agent.url == "https://dav.example/backups"
    assert SECRET not in repr(agent)
    assert agent.name == "dav"
    with pytest.raises(habackup.BackupAgentConfigError) as raised:
        ObjectStoreBackupSyncAgent("x", f"ftp://me:{SECRET}@host/x")
    assert SECRET not in str(raised.value)
    with pytest.raises(habackup.BackupAgentConfigError) as raised:
        ObjectStoreBackupSyncAgent("x", f"http://me:{SECRET}@[bad")
    assert SECRET not in str(raised.value)


async def test_server_down_is_unreachable_and_quiet_about_secrets(
    dead_port: int, small_backup: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for agent in dead_agents(dead_port):
        assert SECRET not in repr(agent)
        started = time.monotonic()
        with pytest.raises(habackup.BackupAgentUnreachableError) as raised:
            await agent.async_upload_backup(path=small_backup)
        assert time.monotonic() - started < 20
        message = str(raised.value)
        assert f"127.0.0.1:{dead_port}" in message, message
        assert SECRET not in message
        with pytest.raises(habackup.BackupAgentUnreachableError):
            await agent.async_list_backups()
        with pytest.raises(habackup.BackupAgentUnreachableError):
            await agent.async_download_backup(id="0123abcd", path=tmp_path / "x.tar")
        assert not (tmp_path / "x.tar").exists()
        with pytest.raises(habackup.BackupAgentUnreachableError):
            await agent.async_delete_backup(id="0123abcd")
    assert SECRET not in caplog.text


async def test_unsafe_ids_are_refused(tmp_path: Path) -> None:
    agent = ObjectStoreBackupSyncAgent("f", f"file://{tmp_path}/remote")
    for bad in ["../x", "a/b", "", "x" * 65, "a.b"]:
        with pytest.raises(habackup.BackupNotFound, match="invalid backup id"):
            await agent.async_download_backup(id=bad, path=tmp_path / "x.tar")
        with pytest.raises(habackup.BackupNotFound, match="invalid backup id"):
            await agent.async_delete_backup(id=bad)
    assert list(tmp_path.iterdir()) == []


async def test_manager_with_two_builtin_agents_one_python_agent_and_a_dead_one(
    tmp_path: Path, dead_port: int, s3_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    s3_server.make_bucket("managed")
    folder = ObjectStoreBackupSyncAgent("folder", f"file://{tmp_path}/remote-folder")
    s3 = ObjectStoreBackupSyncAgent(
        "s3", "s3://managed/ha", options={**s3_server.options("managed"), **FAST}
    )
    python_agent = FolderAgent("python", tmp_path / "remote-python")
    dead = dead_agents(dead_port)[0]

    async def async_get_backup_sync_agents(hass: Any) -> list[habackup.BackupSyncAgent]:
        return [folder, s3, python_agent, dead]

    manager = habackup.BackupManager(Hass(), config_dir=make_config_dir(tmp_path / "config"))
    await manager.async_add_platform(
        "demo", platform(async_get_backup_sync_agents=async_get_backup_sync_agents)
    )
    events: list[dict[str, Any]] = []
    manager.async_subscribe_events(events.append)
    backup = await manager.async_create_backup(name="Managed")

    assert sorted(backup.synced_agents) == ["demo.folder", "demo.python", "demo.s3"]
    assert list(backup.failed_agents) == ["demo.dead-s3"]
    assert f"127.0.0.1:{dead_port}" in backup.failed_agents["demo.dead-s3"]
    progress = [e for e in events if e.get("stage") == "upload_to_agents" and "agent_id" in e]
    for agent_id in ("demo.folder", "demo.s3"):
        mine = [e for e in progress if e["agent_id"] == agent_id]
        assert mine
        assert mine[-1]["uploaded_bytes"] == mine[-1]["total_bytes"] == backup.size

    backups, errors = await manager.async_get_backups()
    assert list(errors) == ["demo.dead-s3"]
    assert isinstance(errors["demo.dead-s3"], habackup.BackupAgentError)
    merged = backups[backup.slug]
    assert merged.agents == {
        "demo.folder": backup.slug,
        "demo.python": backup.slug,
        "demo.s3": backup.slug,
    }
    assert SECRET not in caplog.text

    # Round trip through the manager: download from S3, then remove everywhere.
    assert backup.path is not None
    backup.path.unlink()
    path = await manager.async_download_backup(agent_id="demo.s3", id=backup.slug)
    assert habackup.read_backup(path).slug == backup.slug
    await manager.async_remove_backup(backup.slug)
    assert await folder.async_list_backups() == []
    assert await s3.async_list_backups() == []


async def test_transient_failures_are_retried(
    s3_server: Any, webdav_server: Any, big_backup_path: Path, tmp_path: Path
) -> None:
    def first_part_and_first_put(method: str, path: str, n: int) -> bool:
        # The second part of the multipart upload, and the first WebDAV PUT of the .tar.
        return n == 0 and method == "PUT" and ("partNumber=2&" in path or path.endswith(".tar"))

    s3_server.make_bucket("flaky")
    with flaky_proxy(s3_server.endpoint, first_part_and_first_put) as proxy:
        options = {**s3_server.options(), "aws_endpoint": proxy.url, **FAST, **SMALL_PARTS}
        agent = ObjectStoreBackupSyncAgent("s3", "s3://flaky/ha", options=options)
        await agent.async_upload_backup(path=big_backup_path)
        assert any("partNumber=2&" in f for f in proxy.failures), proxy.failures
        [listed] = await agent.async_list_backups()
        assert listed.size == big_backup_path.stat().st_size

    with flaky_proxy(webdav_server.url, first_part_and_first_put) as proxy:
        host = proxy.url.removeprefix("http://")
        url = f"http://{webdav_server.user}:{webdav_server.password}@{host}/flaky/ha"
        agent = ObjectStoreBackupSyncAgent("dav", url, options=FAST)
        await agent.async_upload_backup(path=big_backup_path)
        assert [f for f in proxy.failures if f.endswith(".tar")], proxy.failures
        dest = tmp_path / "back.tar"
        await agent.async_download_backup(id=habackup.read_backup(big_backup_path).slug, path=dest)
        assert dest.stat().st_size == big_backup_path.stat().st_size


@pytest.mark.parametrize("prefix", ["/ha/backups", "/ha/backups/", ""])
async def test_webdav_requests_name_each_object_by_one_path(
    webdav_server: Any, small_backup: Path, tmp_path: Path, prefix: str
) -> None:
    """object_store's HTTP store appends a key's segments to its base URL: a base ending in "/"
    made reads of `/ha//x.tar` (wsgidav merges the slashes, other servers do not)."""
    slug = habackup.read_backup(small_backup).slug
    with flaky_proxy(webdav_server.url, lambda method, path, n: False) as proxy:
        host = proxy.url.removeprefix("http://")
        url = f"http://{webdav_server.user}:{webdav_server.password}@{host}{prefix}"
        agent = ObjectStoreBackupSyncAgent("dav", url, options=FAST)
        await agent.async_upload_backup(path=small_backup)
        [listed] = await agent.async_list_backups()
        assert listed.slug == slug
        await agent.async_download_backup(id=slug, path=tmp_path / f"{prefix.count('/')}.tar")
        await agent.async_delete_backup(id=slug)
    base = prefix.rstrip("/")
    seen = proxy.forwarded
    assert not [r for r in seen if "//" in r.split(" ", 1)[1]], seen
    for request in (
        f"PUT {base}/{slug}.tar",
        f"GET {base}/{slug}.metadata.json",
        f"GET {base}/{slug}.tar",
        f"DELETE {base}/{slug}.tar",
        f"DELETE {base}/{slug}.metadata.json",
        # A collection is listed by its own URL, which ends in "/".
        f"PROPFIND {base}/",
    ):
        assert request in seen, (request, seen)


async def test_a_server_that_keeps_failing_is_reported_after_the_retries(
    s3_server: Any, small_backup: Path
) -> None:
    s3_server.make_bucket("down")
    with flaky_proxy(s3_server.endpoint, lambda method, path, n: method == "PUT") as proxy:
        options = {**s3_server.options(), "aws_endpoint": proxy.url, **FAST}
        agent = ObjectStoreBackupSyncAgent("s3", "s3://down/ha", options=options)
        with pytest.raises(habackup.BackupAgentError, match="503"):
            await agent.async_upload_backup(path=small_backup)
        # max_retries=1: the first try and one retry, then the error.
        assert len(proxy.failures) == 2, proxy.failures


@pytest.fixture(scope="module")
def big_backup_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12 MiB backup: above the 8 MiB threshold, so three 5 MiB parts."""
    root = tmp_path_factory.mktemp("big")
    config = make_config_dir(root / "config")
    (config / "media.bin").write_bytes(random.Random(3).randbytes(12 * 1024 * 1024))
    backup = habackup.create_archive(config, root / "out", name="Flaky")
    assert backup.path is not None
    return backup.path
