"""habackup.homeassistant without Home Assistant: importable, and it says what is missing.

The adapter itself is tested under Home Assistant in tests/homeassistant (scripts/ha-test.sh).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import habackup
from habackup.homeassistant import BackupAgentListeners, HabackupBackupAgent


def _home_assistant_installed() -> bool:
    # Not find_spec("homeassistant"): with tests/ on sys.path, tests/homeassistant is a namespace
    # package of that name.
    try:
        import homeassistant.components.backup  # noqa: F401
    except ImportError:
        return False
    return True


pytestmark = pytest.mark.skipif(_home_assistant_installed(), reason="Home Assistant is installed")


def test_import_habackup_leaves_home_assistant_alone() -> None:
    code = "import sys, habackup; print('habackup.homeassistant' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_constructing_the_agent_needs_home_assistant() -> None:
    agent = habackup.ObjectStoreBackupSyncAgent("store", "memory://")
    with pytest.raises(ImportError, match=r"needs Home Assistant 2025\.4 or newer"):
        HabackupBackupAgent(object(), agent, domain="test")  # type: ignore[arg-type]
    with pytest.raises(ImportError, match=r"needs Home Assistant 2025\.4 or newer"):
        BackupAgentListeners("test")
