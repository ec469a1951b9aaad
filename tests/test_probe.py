"""The probe (``ObjectStoreBackupSyncAgent.async_probe``): write, list, read back and delete a
small object, and say precisely what stops a store from holding backups. Against the real
servers: moto (with IAM enforced, for refused and insufficient credentials), wsgidav (its
read-only share), Azurite, a folder, and a stopped port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from net_servers import SmbServer, SshServer
from servers import (
    AzuriteServer,
    Bucket,
    Container,
    S3Server,
    WebDavServer,
    enforce_moto_auth,
    free_port,
    run_moto,
)

import habackup
from habackup import BackupAgentProbeError, ObjectStoreBackupSyncAgent

SECRET = "s3cr3t-probe-value"
# Some other server's Ed25519 host key (a public key line; never this test's sshd's).
SSH_OTHER_HOST_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl other"
)


async def problem_of(url: str, options: dict[str, str] | None = None) -> BackupAgentProbeError:
    agent = ObjectStoreBackupSyncAgent("probe", url, options=options)
    with pytest.raises(BackupAgentProbeError) as caught:
        await agent.async_probe()
    err = caught.value
    assert err.problem in habackup.errors.PROBE_PROBLEMS
    assert err.error_code == "backup_agent_probe_failed"
    assert isinstance(err, habackup.BackupAgentError)
    return err


async def test_s3_passes_and_leaves_nothing(s3_bucket: Bucket, s3_server: S3Server) -> None:
    url, options = s3_bucket
    await ObjectStoreBackupSyncAgent("probe", f"{url}/some/prefix", options=options).async_probe()
    listed = s3_server.client().list_objects_v2(Bucket=s3_bucket.name)
    assert listed.get("KeyCount", 0) == 0


async def test_s3_missing_bucket(s3_server: S3Server) -> None:
    err = await problem_of("s3://no-such-bucket/p", s3_server.options())
    assert err.problem == "bucket_not_found"
    assert str(err).startswith("writing s3://no-such-bucket/p/habackup-probe-")
    assert "NoSuchBucket" in str(err)


async def test_stopped_server(stopped_server_url: str) -> None:
    options = {
        "aws_endpoint": stopped_server_url,
        "aws_allow_http": "true",
        "aws_access_key_id": "key",
        "aws_secret_access_key": SECRET,
        "aws_region": "us-east-1",
        "max_retries": "0",
    }
    err = await problem_of("s3://bucket/p", options)
    assert err.problem == "cannot_connect"
    assert SECRET not in str(err)
    assert "os error" not in str(err)


@pytest.fixture(scope="module")
def iam_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[S3Server, dict[str, str]]]:
    """A moto of its own that checks credentials and policies (enforcing is for the whole
    server): bucket ``probe``, and a user who may list and read it but not write."""
    with run_moto(tmp_path_factory.mktemp("iam-moto")) as server:
        server.make_bucket("probe")
        import boto3

        iam = boto3.client(
            "iam",
            endpoint_url=server.endpoint,
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            region_name=server.region,
        )
        iam.create_user(UserName="reader")
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket", "s3:GetObject"],
                    "Resource": ["arn:aws:s3:::probe", "arn:aws:s3:::probe/*"],
                }
            ],
        }
        iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps(policy))
        enforce_moto_auth(server)
        yield (
            server,
            server.options()
            | {
                "aws_access_key_id": key["AccessKeyId"],
                "aws_secret_access_key": key["SecretAccessKey"],
            },
        )


async def test_s3_credentials_without_write_permission(
    iam_moto: tuple[S3Server, dict[str, str]],
) -> None:
    _, reader = iam_moto
    err = await problem_of("s3://probe/backups", reader)
    assert err.problem == "permission_denied"
    assert "AccessDenied" in str(err)
    assert reader["aws_secret_access_key"] not in str(err)


@pytest.mark.parametrize("wrong", ["aws_secret_access_key", "aws_access_key_id"])
async def test_s3_refused_credentials(
    iam_moto: tuple[S3Server, dict[str, str]], wrong: str
) -> None:
    _, reader = iam_moto
    err = await problem_of("s3://probe/backups", reader | {wrong: "AKIAWRONGWRONGWRONG1"})
    assert err.problem == "invalid_auth"
    assert reader["aws_secret_access_key"] not in str(err)


async def test_webdav(webdav_server: WebDavServer) -> None:
    await ObjectStoreBackupSyncAgent("p", webdav_server.url_with_auth("probe/a/b")).async_probe()
    folder = webdav_server.root / "probe" / "a" / "b"
    assert folder.is_dir()
    assert list(folder.iterdir()) == []

    wrong = webdav_server.url.replace("http://", f"http://{webdav_server.user}:{SECRET}@")
    err = await problem_of(f"{wrong}/probe")
    assert err.problem == "invalid_auth"
    assert SECRET not in str(err)

    for path in ("readonly", "readonly/sub"):
        err = await problem_of(webdav_server.url_with_auth(path))
        assert err.problem == "permission_denied", err
        assert webdav_server.password not in str(err)


async def test_not_a_webdav_server(s3_server: S3Server) -> None:
    """moto answers HTTP, but PROPFIND with 405."""
    url = s3_server.endpoint.replace("http://", "http://user:pw@") + "/dav"
    err = await problem_of(url)
    assert err.problem == "invalid_url"
    assert "not a WebDAV server" in str(err)


async def test_azure(azure_container: Container, azurite_server: AzuriteServer) -> None:
    url, options = azure_container
    await ObjectStoreBackupSyncAgent("p", f"{url}/x", options=options).async_probe()
    assert azurite_server.list_blobs(azure_container.name) == []

    err = await problem_of("az://no-such-container/x", options)
    assert err.problem == "bucket_not_found"

    wrong_key = "A" * 86 + "=="
    err = await problem_of(f"{url}/x", options | {"azure_storage_account_key": wrong_key})
    assert err.problem == "invalid_auth"
    assert wrong_key not in str(err)


async def test_folder(tmp_path: Path) -> None:
    await ObjectStoreBackupSyncAgent("p", f"file://{tmp_path}/new/folder").async_probe()
    assert list((tmp_path / "new" / "folder").iterdir()) == []

    (tmp_path / "file").write_text("not a folder")
    err = await problem_of(f"file://{tmp_path}/file/sub")
    assert err.problem == "failed"
    assert str(err).startswith(f"writing file://{tmp_path}/file/sub/habackup-probe-")


def test_read_only_folder(tmp_path: Path) -> None:
    """A read-only file system (the tests run as root, which file modes do not stop): a tmpfs
    mounted read-only in a mount namespace of the test's own (skipped where that is denied)."""
    script = (
        'set -e; mount -t tmpfs -o ro,size=1m habackup-ro "$1"; '
        '"$2" -c "import asyncio, sys, habackup\n'
        "agent = habackup.ObjectStoreBackupSyncAgent('p', 'file://' + sys.argv[1] + '/x')\n"
        "try:\n    asyncio.run(agent.async_probe())\n"
        "except habackup.BackupAgentProbeError as err:\n    print(err.problem)\n"
        '" "$1"'
    )
    (tmp_path / "ro").mkdir()
    unshare = ["unshare", "--mount", "--map-root-user", "--propagation", "private", "--"]
    result = subprocess.run(
        [*unshare, "sh", "-c", script, "sh", str(tmp_path / "ro"), sys.executable],
        capture_output=True,
        text=True,
        check=False,
    )
    if "mount" in result.stderr and result.returncode != 0:
        pytest.skip(f"no mount namespace here: {result.stderr.strip()}")
    assert result.stdout.strip() == "permission_denied", result.stderr


async def test_gcs_unreachable() -> None:
    """No GCS emulator speaks object_store's API; a service-account key can name the base URL,
    here a port where nothing listens."""
    key = {
        "private_key": "unused",
        "private_key_id": "unused",
        "client_email": "probe@example.invalid",
        "disable_oauth": True,
        "gcs_base_url": f"http://127.0.0.1:{free_port()}",
    }
    options = {
        "google_service_account_key": json.dumps(key),
        "allow_http": "true",
        "max_retries": "0",
    }
    err = await problem_of("gs://bucket/p", options)
    assert err.problem == "cannot_connect"


async def test_memory() -> None:
    await ObjectStoreBackupSyncAgent("p", "memory://probe").async_probe()


def _locked_folder(parent: Path) -> Path:
    """A folder the test user may not write to (root's, mode 755), inside one it may."""
    locked = parent / f"locked-{os.getpid()}"
    locked.mkdir(exist_ok=True)
    locked.chmod(0o755)
    return locked


async def test_sftp(sshd_server: SshServer) -> None:
    await ObjectStoreBackupSyncAgent(
        "p", sshd_server.url("probe/sftp"), options=sshd_server.options()
    ).async_probe()
    assert list((sshd_server.creds.data / "probe" / "sftp").iterdir()) == []

    url = sshd_server.url("probe/sftp")
    wrong = sshd_server.options(password=SECRET)
    err = await problem_of(url, wrong)
    assert err.problem == "invalid_auth"
    assert SECRET not in str(err)

    unpinned = {"password": sshd_server.creds.password}
    err = await problem_of(url, unpinned)
    assert err.problem == "host_key"
    # The message names the key the server presents, for the user to check and pin.
    assert sshd_server.creds.host_fingerprint in str(err)

    other_host = SSH_OTHER_HOST_KEY
    err = await problem_of(url, sshd_server.options(host_key=other_host))
    assert err.problem == "host_key"
    assert "does not match" in str(err)

    locked = _locked_folder(sshd_server.creds.data)
    err = await problem_of(sshd_server.url(locked.name), sshd_server.options())
    assert err.problem == "permission_denied", err


async def test_smb(smbd_server: SmbServer) -> None:
    await ObjectStoreBackupSyncAgent(
        "p", smbd_server.url("probe/smb"), options=smbd_server.options()
    ).async_probe()
    assert list((smbd_server.folder() / "probe" / "smb").iterdir()) == []

    err = await problem_of(smbd_server.url("x"), smbd_server.options(password=SECRET))
    assert err.problem == "invalid_auth"
    assert SECRET not in str(err)

    err = await problem_of(smbd_server.url("x", share="nosuchshare"), smbd_server.options())
    assert err.problem == "bucket_not_found", err

    locked = _locked_folder(smbd_server.folder())
    err = await problem_of(smbd_server.url(locked.name), smbd_server.options())
    assert err.problem == "permission_denied", err
