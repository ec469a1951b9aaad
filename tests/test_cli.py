"""python -m habackup through subprocesses: what an operator types."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "config"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "habackup", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def example(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE, config, symlinks=True)
    return config


def test_create_list_info_extract(example: Path, tmp_path: Path) -> None:
    out = tmp_path / "backups"
    created = run("create", example, "-o", out, "--name", "CLI", "--json")
    assert created.returncode == 0, created.stderr
    backup = json.loads(created.stdout)
    path = Path(backup["path"])
    assert path.parent == out
    assert backup["name"] == "CLI"

    listed = run("list", out)
    assert listed.returncode == 0
    assert backup["slug"] in listed.stdout

    info = run("info", path, "--json")
    assert json.loads(info.stdout)["slug"] == backup["slug"]

    dest = tmp_path / "restored"
    extracted = run("extract", path, dest)
    assert extracted.returncode == 0, extracted.stderr
    original = (example / "configuration.yaml").read_bytes()
    assert (dest / "configuration.yaml").read_bytes() == original
    assert (dest / "home-assistant_v2.db").exists()
    assert not (dest / "home-assistant.log").exists()
    assert (dest / "tts").is_dir()
    assert list((dest / "tts").iterdir()) == []
    assert not (dest / "backups" / "old.tar").exists()


def test_human_output_names_what_was_written(example: Path, tmp_path: Path) -> None:
    created = run("create", example, "-o", tmp_path / "out", "--no-database")
    assert created.returncode == 0, created.stderr
    assert "database:  excluded" in created.stdout
    assert "sha256:" in created.stdout


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    assert run().returncode == 2
    assert run("create").returncode == 2
    assert run("frobnicate").returncode == 2


def test_failures_exit_1_with_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"\0" * 100)
    result = run("info", junk)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert str(junk) in result.stderr
    assert "Traceback" not in result.stderr

    missing = run("create", tmp_path / "nope", "-o", tmp_path / "out")
    assert missing.returncode == 1
    assert "nope" in missing.stderr

    debug = run("--debug", "info", junk)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr


def test_protected_create_verify_extract(example: Path, tmp_path: Path) -> None:
    secret = tmp_path / "pw.txt"
    secret.write_text("hunter2\n")
    out = tmp_path / "out"
    created = run("create", example, "-o", out, "--password-file", secret, "--json")
    assert created.returncode == 0, created.stderr
    path = json.loads(created.stdout)["path"]
    assert json.loads(created.stdout)["protected"] is True

    verified = run("verify", path, "--password-file", secret)
    assert verified.returncode == 0, verified.stderr
    assert "OK" in verified.stdout
    assert "securetar v3" in verified.stdout

    env = {**os.environ, "HB_PW": "hunter2"}
    command = ["extract", path, str(tmp_path / "x"), "--password-env", "HB_PW"]
    extracted = subprocess.run(
        [sys.executable, "-m", "habackup", *command],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert extracted.returncode == 0, extracted.stderr
    assert (tmp_path / "x" / "configuration.yaml").exists()

    secret.write_text("wrong\n")
    wrong = run("extract", path, tmp_path / "y", "--password-file", secret)
    assert wrong.returncode == 1
    assert wrong.stderr.count("\n") == 1
    assert "password" in wrong.stderr
    assert "wrong" not in wrong.stderr
    assert not (tmp_path / "y").exists()

    missing = run("verify", path)
    assert missing.returncode == 1
    assert "password" in missing.stderr


def test_password_on_the_command_line_is_refused(example: Path, tmp_path: Path) -> None:
    refused = run("create", example, "-o", tmp_path / "out", "--password", "hunter2")
    assert refused.returncode == 2
    assert "--password-file" in refused.stderr
    assert not (tmp_path / "out").exists()
    unset = run("create", example, "-o", tmp_path / "out", "--password-env", "HB_UNSET_VAR")
    assert unset.returncode == 2
    assert "HB_UNSET_VAR" in unset.stderr


def test_progress_bar_only_on_a_terminal(example: Path, tmp_path: Path) -> None:
    big = example / "media.bin"
    big.write_bytes(os.urandom(64 * 1024 * 1024))
    plain = run("create", example, "-o", tmp_path / "a")
    assert plain.returncode == 0
    assert "\r" not in plain.stderr
    assert "ETA" not in plain.stderr

    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "habackup", "create", str(example), "-o", str(tmp_path / "b")],
        stdout=subprocess.DEVNULL,
        stderr=terminal,
    )
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(timeout=120) == 0
    os.close(controller)
    assert b"ETA" in seen
    assert b"\r" in seen
