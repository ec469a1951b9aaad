"""A full destination is the destination's problem, said plainly.

Each case runs in a child process inside its own mount namespace (``unshare``; as root, or as
an unprivileged user mapped to root in a user namespace) with a small tmpfs as the destination,
so the file system really fills up: no mock stands in for ENOSPC. Creating a backup into it, or
extracting one onto it, raises ArchiveError (never InvalidBackupError: the backup is fine) that
names the user's path (never a temp file), says the file system is full, and leaves nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import home_assistant_dir

import habackup

SMALL = "2m"
BIG = 6 * 1024 * 1024

CHILD = r"""
import json, os, sys
import habackup

op, mount, source = sys.argv[1:4]
password = sys.argv[4] if len(sys.argv) > 4 else None
report = {}
try:
    if op == "create":
        target = os.path.join(mount, "out")
        os.mkdir(target)
        habackup.create_archive(source, target, name="full", password=password)
    else:
        target = os.path.join(mount, "dest")
        habackup.extract_archive(source, target, password=password)
    report["outcome"] = "ok"
except habackup.BackupError as err:
    report.update(
        outcome="error",
        type=type(err).__name__,
        invalid=isinstance(err, habackup.InvalidBackupError),
        message=str(err),
        path=getattr(err, "path", None),
    )
left = []
for root, dirs, files in os.walk(mount):
    left += [os.path.relpath(os.path.join(root, n), mount) for n in dirs + files]
report["left"] = sorted(left)
print(json.dumps(report))
"""


def namespace_prefix() -> list[str]:
    """unshare's arguments for a private mount namespace we may mount a tmpfs in."""
    if shutil.which("unshare") is None:
        return []
    for prefix in (["unshare", "--mount"], ["unshare", "--mount", "--map-root-user"]):
        if os.geteuid() != 0 and "--map-root-user" not in prefix:
            continue
        probe = subprocess.run([*prefix, "--", "true"], capture_output=True, check=False)
        if probe.returncode == 0:
            return prefix
    return []


@pytest.fixture(scope="module")
def unshare() -> list[str]:
    prefix = namespace_prefix()
    if not prefix:
        message = "cannot create a mount namespace (unshare --mount / --map-root-user)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI runs as root: this must work there
        pytest.skip(message)
    return prefix


def run_on_small_fs(
    unshare: list[str], mount: Path, op: str, source: Path, password: str | None
) -> dict[str, Any]:
    mount.mkdir()
    script = 'mount -t tmpfs -o size="$1" habackup-test "$2" && shift 2 && exec "$@"'
    command = [*unshare, "--", "sh", "-c", script, "sh", SMALL, str(mount)]
    command += [sys.executable, "-c", CHILD, op, str(mount), str(source)]
    if password is not None:
        command.append(password)
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    report: dict[str, Any] = json.loads(run.stdout)
    return report


@pytest.fixture
def big_config(tmp_path: Path) -> Path:
    config = home_assistant_dir(tmp_path / "config")
    (config / "configuration.yaml").write_text("homeassistant:\n")
    (config / "www").mkdir()
    # Incompressible, so the backup is as big as the file.
    (config / "www" / "clip_10.mp4").write_bytes(os.urandom(BIG))
    return config


@pytest.mark.parametrize("password", [None, "hunter2"], ids=["plain", "protected"])
def test_create_into_a_full_file_system(
    unshare: list[str], big_config: Path, tmp_path: Path, password: str | None
) -> None:
    mount = tmp_path / "small"
    report = run_on_small_fs(unshare, mount, "create", big_config, password)
    assert report["outcome"] == "error", report
    assert report["type"] == "ArchiveError", report
    assert report["invalid"] is False
    message = report["message"]
    assert message.startswith(f"{mount}/out/"), message
    assert report["path"].startswith(f"{mount}/out/"), report
    assert report["path"].endswith(".tar"), report
    assert "file system is full" in message, message
    assert ".partial" not in message, message
    assert "compression stopped" not in message, message
    assert "os error" not in message, message
    assert report["left"] == ["out"], "a partial backup was left behind"


@pytest.mark.parametrize("password", [None, "hunter2"], ids=["plain", "protected"])
def test_extract_onto_a_full_file_system(
    unshare: list[str], big_config: Path, tmp_path: Path, password: str | None
) -> None:
    backup = habackup.create_archive(big_config, tmp_path / "b.tar", name="big", password=password)
    assert backup.path is not None
    mount = tmp_path / "small"
    report = run_on_small_fs(unshare, mount, "extract", backup.path, password)
    assert report["outcome"] == "error", report
    assert report["type"] == "ArchiveError", report
    assert report["invalid"] is False, "a full disk was blamed on the backup"
    message = report["message"]
    assert report["path"] == f"{mount}/dest/www/clip_10.mp4", report
    assert message.startswith(f"{mount}/dest/www/clip_10.mp4: "), message
    assert "file system is full" in message, message
    assert "more needed" in message, message
    assert "corrupt" not in message, message
    assert ".partial" not in message, message
    assert report["left"] == [], "the partial extraction was left behind"
    # The backup itself is fine.
    habackup.verify_archive(backup.path, password=password)
