"""A backup made while the machine is saturated at normal priority completes and restores exactly
(the policy each HABACKUP_PRIORITY gives the engine's threads is tested in test_async.py).

Speed is measured in benches/priority_under_load.py, never asserted here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import expected_snapshot, make_config_dir, snapshot

import habackup

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="scheduling policies are Linux's")


@pytest.fixture
def busy_machine() -> Iterator[None]:
    """A spinning process per core at the test's own nice value (the one the engine's threads
    start from): the user's own work saturating the machine."""
    procs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 1)
    ]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


@pytest.mark.usefixtures("busy_machine")
def test_a_backup_on_a_saturated_machine_completes_and_restores_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HABACKUP_PRIORITY", raising=False)
    config_dir = make_config_dir(tmp_path / "config")
    backup = habackup.create_archive(config_dir, tmp_path / "b.tar", name="busy")
    habackup.verify_archive(backup.path)
    habackup.extract_archive(backup.path, tmp_path / "out")
    assert snapshot(tmp_path / "out") == expected_snapshot(config_dir)
