"""What only the SFTP and SMB agents have: host keys, logins, an encrypted share, a 1 GiB
transfer, a server that dies mid-upload, and servers that are not there. The store contract
they share with S3 and the others runs in test_object_store.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from net_servers import (
    TEST_USER,
    Credentials,
    SmbServer,
    SshServer,
    run_smbd,
    run_sshd,
)

import habackup
from habackup import ObjectStoreBackupSyncAgent

GiB = 1 << 30
MiB = 1 << 20
FAST = {"max_retries": "1", "retry_backoff": "10ms", "connect_timeout": "2s", "timeout": "10s"}
TEMP_SUFFIX = ".habackup-partial"


def _own(path: Path) -> Path:
    user = pwd.getpwnam(TEST_USER)
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, user.pw_uid, user.pw_gid)
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(8 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def huge_backup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1 GiB backup made in no time: ``./backup.json`` and a sparse (all-zero)
    ``homeassistant.tar.gz`` member. Nothing in the transfer looks inside it, and zeros are
    sent as they are (no compression on either protocol here)."""
    path = tmp_path_factory.mktemp("huge") / "huge.tar"
    meta = json.dumps(
        {
            "slug": "0huge1gb",
            "name": "One GiB",
            "date": "2026-01-01T00:00:00+00:00",
            "type": "partial",
            "version": 2,
            "compressed": True,
            "protected": False,
            "homeassistant": {"version": "2025.4.4", "exclude_database": False},
            "folders": [],
            "addons": [],
            "extra": {},
        }
    ).encode()
    info = tarfile.TarInfo("./backup.json")
    info.size = len(meta)
    member = tarfile.TarInfo("homeassistant.tar.gz")
    member.size = GiB
    with path.open("wb") as f:
        f.write(info.tobuf(format=tarfile.PAX_FORMAT))
        f.write(meta + b"\0" * (-len(meta) % 512))
        f.write(member.tobuf(format=tarfile.PAX_FORMAT))
        f.seek(member.size, os.SEEK_CUR)  # a hole: the zeros take no disk
        f.write(b"\0" * 1024)  # end of archive
    assert habackup.read_backup(path).slug == "0huge1gb"
    return path


def _backends(request: pytest.FixtureRequest, folder: str) -> tuple[str, dict[str, str], Path]:
    """URL, options and the local folder behind it, for the ``kind`` parameter."""
    if request.param == "sftp":
        ssh: SshServer = request.getfixturevalue("sshd_server")
        return ssh.url(folder), ssh.options(), _own(ssh.creds.data / folder)
    smb: SmbServer = request.getfixturevalue("smbd_server")
    return smb.url(folder), smb.options(), _own(smb.folder() / folder)


@pytest.fixture(params=["sftp", "smb"])
def remote(request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[str, str], Path]]:
    """A fresh folder on the server, removed afterwards: the servers live for the whole
    session and a 1 GiB upload must not sit on the (shared) disk until then."""
    url, options, folder = _backends(request, f"t{os.urandom(5).hex()}")
    yield url, options, folder
    shutil.rmtree(folder, ignore_errors=True)


async def test_a_1_gib_backup_goes_up_and_comes_back(
    remote: tuple[str, dict[str, str], Path], huge_backup: Path, tmp_path: Path
) -> None:
    url, options, folder = remote
    agent = ObjectStoreBackupSyncAgent("net", url, options=options)
    progress: list[int] = []
    started = time.monotonic()
    await agent.async_upload_backup(path=huge_backup, on_progress=lambda d, t: progress.append(d))
    upload_s = time.monotonic() - started
    size = huge_backup.stat().st_size
    assert progress[-1] == size
    assert sorted(p.name for p in folder.iterdir()) == ["0huge1gb.metadata.json", "0huge1gb.tar"]
    assert (folder / "0huge1gb.tar").stat().st_size == size
    [listed] = await agent.async_list_backups()
    assert (listed.id, listed.size) == ("0huge1gb", size)
    dest = tmp_path / "back.tar"
    started = time.monotonic()
    await agent.async_download_backup(id="0huge1gb", path=dest)
    download_s = time.monotonic() - started
    assert _sha256(dest) == listed.sha256 == _sha256(huge_backup)
    print(f"1 GiB: upload {upload_s:.1f} s, download {download_s:.1f} s")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) but never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


@pytest.mark.parametrize("scheme", ["sftp", "smb"])
async def test_no_server_is_unreachable_within_the_connect_timeout(
    scheme: str, silent_port: int, small_backup: Path
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    for port in (dead, silent_port):
        share = "/backups" if scheme == "smb" else ""
        url = f"{scheme}://someone:pw@127.0.0.1:{port}{share}/ha"
        agent = ObjectStoreBackupSyncAgent("x", url, options={**FAST, "max_retries": "0"})
        started = time.monotonic()
        with pytest.raises(habackup.BackupAgentUnreachableError, match=f"127.0.0.1:{port}"):
            await agent.async_list_backups()
        # connect_timeout (2 s) bounds the silent server; a refusal is immediate.
        assert time.monotonic() - started < 8
        with pytest.raises(habackup.BackupAgentUnreachableError):
            await agent.async_upload_backup(path=small_backup)


async def test_wrong_password_is_refused_with_the_user_named(
    sshd_server: SshServer, smbd_server: SmbServer, small_backup: Path
) -> None:
    for url, options in (
        (sshd_server.url("x"), sshd_server.options(password="wrong")),
        (smbd_server.url("x"), smbd_server.options(password="wrong")),
    ):
        agent = ObjectStoreBackupSyncAgent("x", url, options={**options, **FAST})
        with pytest.raises(habackup.BackupAgentError, match=TEST_USER) as raised:
            await agent.async_list_backups()
        assert not isinstance(raised.value, habackup.BackupAgentUnreachableError)
        assert "wrong" not in str(raised.value)
        with pytest.raises(habackup.BackupAgentError, match=TEST_USER):
            await agent.async_upload_backup(path=small_backup)


async def test_unknown_host_key_is_refused_with_the_fingerprint_to_pin(
    sshd_server: SshServer, small_backup: Path
) -> None:
    fingerprint = sshd_server.creds.host_fingerprint
    options = sshd_server.options()
    del options["host_key"]
    agent = ObjectStoreBackupSyncAgent("x", sshd_server.url("unpinned"), options=options)
    with pytest.raises(habackup.BackupAgentConfigError) as raised:
        await agent.async_upload_backup(path=small_backup)
    message = str(raised.value)
    assert fingerprint in message
    assert "not known" in message
    assert f"127.0.0.1:{sshd_server.port}" in message
    assert not (sshd_server.creds.data / "unpinned").exists()

    # Pinned by the fingerprint the message gave: accepted.
    agent = ObjectStoreBackupSyncAgent(
        "x", sshd_server.url("unpinned"), options={**options, "host_key": fingerprint}
    )
    _own(sshd_server.creds.data / "unpinned")
    await agent.async_upload_backup(path=small_backup)
    assert len(await agent.async_list_backups()) == 1


@pytest.fixture
def other_host_key(tmp_path: Path) -> str:
    """The public line of a fresh Ed25519 key: what a pin for some other server looks like."""
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    return other.with_name("other.pub").read_text().strip()


async def test_changed_host_key_is_refused(
    sshd_server: SshServer, small_backup: Path, other_host_key: str
) -> None:
    pinned = other_host_key
    for pin in (pinned, "SHA256:" + "A" * 43):
        agent = ObjectStoreBackupSyncAgent(
            "x", sshd_server.url("changed"), options=sshd_server.options(host_key=pin)
        )
        with pytest.raises(habackup.BackupAgentConfigError, match="does not match") as raised:
            await agent.async_upload_backup(path=small_backup)
        assert sshd_server.creds.host_fingerprint in str(raised.value)
    assert not (sshd_server.creds.data / "changed").exists()


async def test_key_login_from_a_file_or_inline(
    sshd_server: SshServer, small_backup: Path
) -> None:
    creds = sshd_server.creds
    folder = _own(creds.data / "keys")
    for key in (str(creds.client_key), creds.client_key.read_text()):
        agent = ObjectStoreBackupSyncAgent(
            "x",
            sshd_server.url("keys"),
            options={"private_key": key, "host_key": creds.host_key_line},
        )
        await agent.async_upload_backup(path=small_backup)
        assert [b.slug for b in await agent.async_list_backups()] == [
            habackup.read_backup(small_backup).slug
        ]
        await agent.async_delete_backup(id=habackup.read_backup(small_backup).slug)
        assert list(folder.iterdir()) == []
    agent = ObjectStoreBackupSyncAgent(
        "x",
        sshd_server.url("keys"),
        options={"private_key": str(creds.base / "nope"), "host_key": creds.host_key_line},
    )
    with pytest.raises(habackup.BackupAgentConfigError, match="nope"):
        await agent.async_list_backups()


async def test_the_encrypted_share_and_a_domain_login(
    smbd_server: SmbServer, small_backup: Path, tmp_path: Path
) -> None:
    slug = habackup.read_backup(small_backup).slug
    url = smbd_server.url("ha", share="secure").replace(
        f"smb://{TEST_USER}@", f"smb://WORKGROUP;{TEST_USER}@"
    )
    agent = ObjectStoreBackupSyncAgent("enc", url, options=smbd_server.options())
    await agent.async_upload_backup(path=small_backup)
    assert (smbd_server.folder("secure") / "ha" / f"{slug}.tar").read_bytes() == (
        small_backup.read_bytes()
    )
    await agent.async_download_backup(id=slug, path=tmp_path / "x.tar")
    assert (tmp_path / "x.tar").read_bytes() == small_backup.read_bytes()
    await agent.async_delete_backup(id=slug)
    assert await agent.async_list_backups() == []


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(TEMP_SUFFIX)]


@pytest.mark.parametrize("kind", ["sftp", "smb"])
async def test_server_stopped_mid_upload_lists_nothing_and_its_temp_goes_next_time(
    kind: str,
    net_credentials: Credentials,
    server_logs: Path,
    request: pytest.FixtureRequest,
    huge_backup: Path,
    small_backup: Path,
) -> None:
    folder = f"killed-{kind}"
    run = run_sshd if kind == "sftp" else run_smbd
    with run(net_credentials, server_logs) as doomed:  # type: ignore[operator]
        local = _own((doomed.creds.data if kind == "sftp" else doomed.folder()) / folder)
        agent = ObjectStoreBackupSyncAgent(
            "doomed", doomed.url(folder), options={**doomed.options(), **FAST}
        )
        halfway = asyncio.Event()

        def on_progress(done: int, total: int) -> None:
            if done > 64 * MiB:
                halfway.set()

        upload = asyncio.create_task(
            agent.async_upload_backup(path=huge_backup, on_progress=on_progress)
        )
        await asyncio.wait_for(halfway.wait(), 120)
    # The server and every connection it had are gone (killed with its descendants).
    with pytest.raises(habackup.BackupAgentError):
        await asyncio.wait_for(upload, 60)

    server = request.getfixturevalue("sshd_server" if kind == "sftp" else "smbd_server")
    survivor = ObjectStoreBackupSyncAgent("next", server.url(folder), options=server.options())
    assert await survivor.async_list_backups() == []
    [temp] = _temps(local)
    assert not [p for p in local.iterdir() if not p.name.startswith(".")]
    # An hour later, the next upload to the folder removes what the dead one left.
    old = time.time() - 2 * 3600
    os.utime(temp, (old, old))
    await survivor.async_upload_backup(path=small_backup)
    assert _temps(local) == []
    assert [b.slug for b in await survivor.async_list_backups()] == [
        habackup.read_backup(small_backup).slug
    ]


async def test_a_fresh_temp_file_is_left_alone(
    remote: tuple[str, dict[str, str], Path], big_upload: Path
) -> None:
    """Another writer's upload in progress (its temp file written to just now) is not swept."""
    url, options, folder = remote
    other = folder / f".someone-elses.tar.0123456789ab{TEMP_SUFFIX}"
    other.write_bytes(b"in progress")
    agent = ObjectStoreBackupSyncAgent("x", url, options={**options, "multipart_threshold": "1MiB"})
    await agent.async_upload_backup(path=big_upload)
    assert other.exists()
    assert len(await agent.async_list_backups()) == 1


@pytest.fixture(scope="module")
def big_upload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 MiB backup: above a 1 MiB multipart threshold."""
    from helpers import make_config_dir

    root = tmp_path_factory.mktemp("three")
    config = make_config_dir(root / "config")
    (config / "media.bin").write_bytes(os.urandom(3 * MiB))
    backup = habackup.create_archive(config, root / "out", name="Three")
    assert backup.path is not None
    return backup.path


def test_the_cli_uploads_lists_and_downloads_over_sftp_and_smb(
    sshd_server: SshServer, smbd_server: SmbServer, small_backup: Path, tmp_path: Path
) -> None:
    """``habackup upload/list/download`` take the new URLs as they are, options included."""
    slug = habackup.read_backup(small_backup).slug
    _own(sshd_server.creds.data / "cli")
    _own(smbd_server.folder() / "cli")
    stores = [
        (sshd_server.url("cli"), sshd_server.options(), sshd_server.creds.data / "cli"),
        (smbd_server.url("cli"), smbd_server.options(), smbd_server.folder() / "cli"),
    ]
    for url, options, folder in stores:
        flags = [arg for key, value in options.items() for arg in ("--option", f"{key}={value}")]

        def cli(*args: str | Path, flags: list[str] = flags) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "habackup", *map(str, args), *flags],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )

        uploaded = cli("upload", small_backup, url)
        assert uploaded.returncode == 0, uploaded.stderr
        assert (folder / f"{slug}.tar").read_bytes() == small_backup.read_bytes()
        listed = cli("list", url)
        assert listed.returncode == 0, listed.stderr
        assert slug in listed.stdout
        downloaded = cli("download", url, slug, "-o", tmp_path / folder.parent.name)
        assert downloaded.returncode == 0, downloaded.stderr
        copy = tmp_path / folder.parent.name / f"{slug}.tar"
        assert copy.read_bytes() == small_backup.read_bytes()
        assert options["password"] not in uploaded.stdout + uploaded.stderr + listed.stdout


@pytest.mark.parametrize(
    ("url", "options", "match"),
    [
        ("sftp://nas/x", {"password": "p"}, "needs a user"),
        ("sftp://me@nas/x", None, "password or private_key"),
        ("sftp://me@nas/x", {"password": "p", "host_key": "bogus"}, "host_key"),
        ("sftp://me@nas/x", {"password": "p", "pasword": "p"}, "pasword"),
        ("sftp://me@nas/x", {"private_key": "-----BEGIN OPENSSH PRIVATE KEY-----"}, "private_key"),
        ("smb://me@nas/", {"password": "p"}, "needs a share"),
        ("smb://me@nas/share", None, "password"),
        ("smb://me:p@nas/share", {"host_key": "SHA256:x"}, "host_key"),
    ],
)
def test_bad_sftp_and_smb_configuration_is_refused_at_construction(
    url: str, options: dict[str, str] | None, match: str
) -> None:
    with pytest.raises(habackup.BackupAgentConfigError, match=match):
        ObjectStoreBackupSyncAgent("x", url, options=options)


def test_credentials_stay_out_of_the_url_and_repr() -> None:
    sftp = ObjectStoreBackupSyncAgent(
        "x", "sftp://me:s3cret@nas:2222/~/b", options={"host_key": "SHA256:abc"}
    )
    smb = ObjectStoreBackupSyncAgent("x", "smb://WORK;me:s3cret@nas/share/ha")
    assert (sftp.url, smb.url) == ("sftp://nas:2222/~/b", "smb://nas/share/ha")
    assert "s3cret" not in repr(sftp) + repr(smb)
