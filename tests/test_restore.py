"""The one restore (Rust), as the command line and the manager use it: the same tree, the same
rollback when the swap fails, and an interrupted swap finished by the next command."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import tree

import habackup

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "config"
MANAGER_RESTORE = """
import asyncio, sys, habackup
async def main():
    manager = habackup.BackupManager(None, config_dir=sys.argv[1])
    await manager.async_restore_backup(sys.argv[2])
asyncio.run(main())
"""


def cli(*args: str | Path, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "habackup", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def manager_restore(
    config: Path, slug: str, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-c", MANAGER_RESTORE, str(config), slug],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def with_mount_point(at: Path) -> tuple[str, ...]:
    """A command prefix that runs the command with a tmpfs mounted at ``at`` (in a user and mount
    namespace of its own, so no privilege is needed): renaming ``at`` fails with EBUSY, a real
    failure in the middle of the swap."""
    return (
        "unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
        'mount -t tmpfs none "$0" && exec "$@"', str(at),
    )


@pytest.fixture
def backup(tmp_path: Path) -> habackup.Backup:
    """A backup of the example config dir with one file changed afterwards in the original."""
    source = tmp_path / "source"
    shutil.copytree(EXAMPLE, source, symlinks=True)
    (source / "configuration.yaml").write_text("homeassistant:\n  name: from the backup\n")
    (source / "only-in-backup.yaml").write_text("x: 1\n")
    return habackup.create_archive(source, tmp_path / "made.tar", name="Restore me")


def config_copy(tmp_path: Path, name: str, backup: habackup.Backup | None = None) -> Path:
    """A config dir that differs from the backup; with ``backup`` it holds it in backups/."""
    config = tmp_path / name
    shutil.copytree(EXAMPLE, config, symlinks=True)
    (config / "only-here.yaml").write_text("kept? no\n")
    if backup is not None:
        assert backup.path is not None
        (config / "backups").mkdir(exist_ok=True)
        shutil.copy(backup.path, config / "backups" / f"{backup.slug}.tar")
    return config


def test_cli_and_manager_restore_give_the_same_tree(
    backup: habackup.Backup, tmp_path: Path
) -> None:
    by_cli = config_copy(tmp_path, "by-cli", backup)
    by_manager = config_copy(tmp_path, "by-manager", backup)
    done = cli("restore", by_cli / "backups" / f"{backup.slug}.tar", by_cli)
    assert done.returncode == 0, done.stderr
    done = manager_restore(by_manager, backup.slug)
    assert done.returncode == 0, done.stderr
    assert tree(by_cli) == tree(by_manager)
    assert not (by_cli / "only-here.yaml").exists()
    assert (by_cli / "only-in-backup.yaml").exists()
    assert b"from the backup" in (by_cli / "configuration.yaml").read_bytes()
    # Nothing of the restore's own is left in either.
    assert not [p for p in by_cli.iterdir() if p.name.startswith(".habackup")]


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux's unshare")
def test_a_failed_swap_puts_everything_back_for_cli_and_manager(
    backup: habackup.Backup, tmp_path: Path
) -> None:
    # "www" is moved aside after several entries (names are moved in sorted order): as a mount
    # point it cannot be, and what had already moved must come back.
    results = {}
    for who in ("cli", "manager"):
        config = config_copy(tmp_path, who, backup)
        before = tree(config)
        prefix = with_mount_point(config / "www")
        if who == "cli":
            done = cli("restore", config / "backups" / f"{backup.slug}.tar", config, prefix=prefix)
        else:
            done = manager_restore(config, backup.slug, prefix=prefix)
        assert done.returncode != 0
        assert "busy" in done.stderr.lower(), done.stderr
        assert tree(config) == before
        results[who] = tree(config)
    assert results["cli"].keys() == results["manager"].keys()


def _busy_config(tmp_path: Path, name: str, backup: habackup.Backup) -> Path:
    config = config_copy(tmp_path, name)
    # Many entries make the swap long enough to be interrupted in the middle.
    for i in range(4000):
        (config / f"entry-{i:04}.yaml").write_text("old\n")
    return config


def test_a_killed_restore_is_finished_by_the_next_command(
    backup: habackup.Backup, tmp_path: Path
) -> None:
    assert backup.path is not None
    expected = tree(config_copy(tmp_path, "expected"))
    done = cli("restore", backup.path, tmp_path / "expected")
    assert done.returncode == 0, done.stderr
    expected = tree(tmp_path / "expected")
    interrupted = 0
    for trial in range(6):
        config = _busy_config(tmp_path, f"trial-{trial}", backup)
        proc = subprocess.Popen(
            [sys.executable, "-m", "habackup", "restore", str(backup.path), str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.name.endswith(".journal") for p in config.iterdir()):
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.0005)
        proc.wait()
        if any(p.name.endswith(".journal") for p in config.iterdir()):
            interrupted += 1
        # Any habackup command on the dir finishes the swap first; a backup of it is one.
        made = cli("create", config, "-o", tmp_path / f"out-{trial}")
        assert made.returncode == 0, made.stderr
        assert tree(config) == expected, f"trial {trial}"
    assert interrupted > 0, "no trial stopped the swap half way"


async def test_async_restore_archive_reports_what_it_did(
    backup: habackup.Backup, tmp_path: Path
) -> None:
    assert backup.path is not None
    config = config_copy(tmp_path, "async")
    report = await habackup.async_restore_archive(backup.path, config)
    assert report["slug"] == backup.slug
    assert report["database_restored"] is True
    assert report["files"] > 0
    assert (config / "only-in-backup.yaml").exists()
    await asyncio.sleep(0)


def test_temp_entries_are_never_backed_up_and_stale_ones_go(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE, config, symlinks=True)
    # What killed operations of this and earlier versions leave behind.
    (config / ".habackup-restore-0123456789ab.new").mkdir()
    (config / ".habackup-restore-0123456789ab.new" / "x.yaml").write_text("half\n")
    (config / "..habackup-restore-342a249706c9.e3cea7abb1b1.partial").mkdir()
    old = time.time() - 3600
    os.utime(config / ".habackup-restore-0123456789ab.new", (old, old))
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".habackup-tmp-0123456789ab.tar"
    stale.write_bytes(b"left by a killed create")
    os.utime(stale, (old, old))
    (out / ".dd3df4e9.tar.2ea70d4757eb.partial.tar").write_bytes(b"older version's")
    backup = habackup.create_archive(config, out, name="Clean")
    assert backup.path is not None
    names = {m for m in _inner_names(backup.path)}
    assert not [n for n in names if "habackup" in n or ".partial" in n], names
    # The create found no journal: the staging dir of a restore that never began is gone.
    assert not (config / ".habackup-restore-0123456789ab.new").exists()
    # Its own dir's stale temp file went too; the listing shows only the backup.
    assert not stale.exists()
    backups, skipped = habackup.list_backups(out)
    assert [b.slug for b in backups] == [backup.slug]
    assert skipped == []


def _inner_names(path: Path) -> list[str]:
    import io
    import tarfile

    with tarfile.open(path) as outer:
        member = outer.extractfile("homeassistant.tar.gz")
        assert member is not None
        with tarfile.open(fileobj=io.BytesIO(member.read()), mode="r:gz") as inner:
            return inner.getnames()
