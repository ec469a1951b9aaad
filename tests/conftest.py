"""Fixtures shared by the archive tests: a small Home Assistant config dir and its backup.

pytest puts this directory on sys.path (rootdir-relative "prepend" imports), so test modules
import the plain functions from ``helpers``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import EXAMPLE, run
from helpers import inner_member_names, make_config_dir

import habackup

# tests/homeassistant needs Home Assistant, which needs Python 3.13+: it runs in venvs of its own
# (scripts/ha-test.sh), where pytest-homeassistant-custom-component is installed.
collect_ignore = (
    [] if importlib.util.find_spec("pytest_homeassistant_custom_component") else ["homeassistant"]
)

pytest_plugins = ["servers", "net_servers", "stores"]


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """configuration.yaml, .storage/core.uuid, an empty dir, a symlink, non-ASCII and >100-byte
    names, a sqlite database, and files the default excludes leave out."""
    return make_config_dir(tmp_path / "config")


@pytest.fixture
def backup_path(config_dir: Path, tmp_path: Path) -> Path:
    """A backup of ``config_dir`` made with the defaults, in ``tmp_path / "backups_out"``."""
    out = tmp_path / "backups_out"
    out.mkdir()
    backup = habackup.create_archive(config_dir, out, name="Fixture backup")
    assert backup.path is not None
    return backup.path


@pytest.fixture
def list_inner() -> Callable[[Path], list[str]]:
    """Lists a backup's inner member names with Python's tarfile."""
    return inner_member_names


@pytest.fixture(scope="session")
def small_backup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backup of the standard config dir (about 0.5 MB), for agent and transfer tests."""
    root = tmp_path_factory.mktemp("small")
    backup = habackup.create_archive(make_config_dir(root / "config"), root / "out", name="Small")
    assert backup.path is not None
    return backup.path


@pytest.fixture
def example(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE, config, symlinks=True)
    return config


@pytest.fixture
def made(example: Path, tmp_path: Path) -> dict[str, Any]:
    """A backup of ``example`` made through the CLI: its --json output."""
    created = run("create", example, "-o", tmp_path / "made", "--name", "Made", "--json")
    assert created.returncode == 0, created.stderr
    backup: dict[str, Any] = json.loads(created.stdout)
    return backup
