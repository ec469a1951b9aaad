"""Fixtures for the tests that run habackup's agents under Home Assistant's own backup manager.

These need Home Assistant (Python 3.13 or 3.14) and pytest-homeassistant-custom-component, so they
run in a virtualenv per Home Assistant release: ``scripts/ha-test.sh``. pytest puts this directory
on sys.path, which is how Home Assistant finds ``custom_components/habackup_test``.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from unittest.mock import patch

import pytest
import pytest_socket
from homeassistant import block_async_io
from homeassistant.core import HomeAssistant
from homeassistant.util import loop as loop_util
from integration import LocationSpec, Servers, unique_name
from servers import WebDavServer, run_wsgidav

CONFIG_FILES = {
    "configuration.yaml": "homeassistant:\n  name: habackup test\n",
    "automations.yaml": "[]\n",
    "www/hello.txt": "Hello from the config dir\n" * 100,
}


@pytest.fixture
def ha_config_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """A small config dir of its own, so Home Assistant's backups and tmp_backups land there
    (the default is pytest-homeassistant-custom-component's folder in site-packages)."""
    config_dir = tmp_path / "config"
    for name, text in CONFIG_FILES.items():
        (config_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (config_dir / name).write_text(text)
    hass.config.config_dir = str(config_dir)
    return config_dir


@pytest.fixture
async def blocking_io_detection(
    hass: HomeAssistant,
    disable_block_async_io: None,
    caplog: pytest.LogCaptureFixture,
) -> AsyncIterator[None]:
    """Home Assistant's detection of blocking calls on the event loop, as in production.

    Under pytest Home Assistant leaves out the checks on open(), Path I/O, listdir, scandir and
    import_module (``_IN_TESTS``): they are put back here. Most checks only log a warning, so the
    test fails when one was logged. ``disable_block_async_io`` removes the patches afterwards.
    """
    # A call site reported once before is only logged at debug level the next time.
    loop_util._PREVIOUSLY_REPORTED.clear()
    # enable() protects the thread it runs on: this fixture runs on the loop's thread.
    with patch.object(block_async_io, "_IN_TESTS", False):
        block_async_io.enable()
    yield
    blocked = [
        record.getMessage()
        for when in ("setup", "call")
        for record in caplog.get_records(when)
        if "Detected blocking call" in record.getMessage()
    ]
    assert not blocked, "\n\n".join(blocked)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a disk that fills up. scripts/ha-test.sh runs pytest in a mount namespace
    of its own (as root, or as root of a user namespace), so the mount cannot outlive the run."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "habackup-test", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (run through scripts/ha-test.sh): {mounted.stderr}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


@pytest.fixture(scope="session")
def webdav_server(
    tmp_path_factory: pytest.TempPathFactory, server_logs: Path
) -> Iterator[WebDavServer]:
    """tests/servers.py's wsgidav, with this venv's Python. Home Assistant's plugin blocks
    sockets (pytest-socket) except in tests that ask for a client, and a session fixture is set
    up before those: sockets are allowed while the server starts (a process of its own)."""
    pytest_socket.enable_socket()
    try:
        server = run_wsgidav(tmp_path_factory.mktemp("webdav-root"), server_logs)
        started = server.__enter__()
    finally:
        pytest_socket.disable_socket(allow_unix_socket=True)
    try:
        yield started
    finally:
        server.__exit__(None, None, None)
# --- The habackup integration's locations, on the servers scripts/ha-test.sh started --------


@pytest.fixture(scope="session")
def servers() -> Servers:
    """The test servers of this run (``tests/serve.py``, started by ``scripts/ha-test.sh``)."""
    return Servers.from_environment()


@pytest.fixture
async def s3_location(
    hass: HomeAssistant, servers: Servers, request: pytest.FixtureRequest
) -> LocationSpec:
    """A new bucket on moto (made off the event loop: the blocking-call detection watches it)."""
    bucket = unique_name(request)
    await hass.async_add_executor_job(servers.s3.make_bucket, bucket)
    return LocationSpec(
        "s3",
        {
            "endpoint_url": servers.s3.endpoint,
            "region": servers.s3.region,
            "bucket": bucket,
            "prefix": "home/assistant",
            "access_key_id": servers.s3.access_key,
            "secret_access_key": servers.s3.secret_key,
        },
        (servers.s3.access_key, servers.s3.secret_key),
    )


@pytest.fixture
async def azure_location(
    hass: HomeAssistant, servers: Servers, request: pytest.FixtureRequest
) -> LocationSpec:
    """A new container on Azurite."""
    container = unique_name(request)
    await hass.async_add_executor_job(servers.azure.make_container, container)
    return LocationSpec(
        "azure",
        {
            "account_name": servers.azure.account,
            "container": container,
            "prefix": "ha",
            "account_key": servers.azure.key,
            "endpoint_url": servers.azure.endpoint,
        },
        (servers.azure.key,),
    )


@pytest.fixture
def webdav_location(servers: Servers, request: pytest.FixtureRequest) -> LocationSpec:
    """A new folder on wsgidav (the probe creates it)."""
    dav = servers.webdav
    form = {"url": f"{dav.url}/{unique_name(request)}/ha", "username": dav.user}
    return LocationSpec("webdav", form | {"password": dav.password}, (dav.password,))


@pytest.fixture
def folder_location(tmp_path: Path) -> LocationSpec:
    return LocationSpec("folder", {"path": str(tmp_path / "nas" / "ha-backups")})


@pytest.fixture
def sftp_location(servers: Servers, request: pytest.FixtureRequest) -> LocationSpec:
    """A new folder on sshd (the probe creates it), logging in with a pasted private key, the
    server's host key pinned by its public key line."""
    ssh = servers.sftp
    form = {
        "host": "127.0.0.1",
        "port": ssh.port,
        "username": ssh.user,
        "path": f"{ssh.data}/{unique_name(request)}/ha",
        "private_key": ssh.client_key,
        "host_key": ssh.host_key,
    }
    return LocationSpec("sftp", form, (ssh.client_key,))


@pytest.fixture
def smb_location(servers: Servers, request: pytest.FixtureRequest) -> LocationSpec:
    """A new folder in smbd's share ``backups`` (the probe creates it)."""
    smb = servers.smb
    form = {
        "host": "127.0.0.1",
        "port": smb.port,
        "share": "backups",
        "path": f"{unique_name(request)}/ha",
        "username": smb.user,
        "password": smb.password,
    }
    return LocationSpec("smb", form, (smb.password,))


@pytest.fixture(
    params=[
        "folder_location",
        "s3_location",
        "azure_location",
        "webdav_location",
        "smb_location",
        "sftp_location",
    ]
)
def location(request: pytest.FixtureRequest) -> LocationSpec:
    """Each type of location, on its real server (a test runs once per type)."""
    spec: LocationSpec = request.getfixturevalue(request.param)
    return spec
