"""python -m habackup through subprocesses: what an operator types."""

from __future__ import annotations

import json
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
