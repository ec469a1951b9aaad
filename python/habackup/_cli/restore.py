"""Restore a backup file into a config dir: its contents replaced completely, or not at all.

The backup is first extracted into a staging dir inside CONFIG_DIR (same filesystem, so every
later step is a rename, and CONFIG_DIR itself may be a mount point, as in a container). Only once
that succeeded (right password, intact data) are the current entries moved aside and the new ones
moved in; a failure there moves everything back. The old entries are deleted last.
``backups/`` (and the database with ``--no-database``) are never touched.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from .._archive import extract_archive, read_backup
from ..errors import BackupError
from .output import error
from .progress import FileReadWatcher, terminal_progress

# Home Assistant's recorder database; kept as it is when the database is not restored.
DATABASE_FILES = frozenset(
    {"home-assistant_v2.db", "home-assistant_v2.db-wal", "home-assistant_v2.db-shm"}
)
# Home Assistant keeps these on restore too: the backups themselves.
ALWAYS_KEPT = frozenset({"backups"})


def restore(
    archive: Path, config_dir: Path, *, password: str | None, restore_database: bool
) -> dict[str, Any]:
    """Replace ``config_dir``'s contents with the backup's; returns what was done."""
    config_dir = config_dir.absolute()
    if not config_dir.is_dir():
        raise BackupError(f"{config_dir} is not a directory (use extract for a new one)")
    backup = read_backup(archive)
    # A backup made without the database would otherwise delete the current one: keep it.
    database_restored = restore_database and backup.database_included
    token = secrets.token_hex(6)
    staging = config_dir / f".habackup-restore-{token}"
    aside = config_dir / f".habackup-replaced-{token}"
    keep = set(ALWAYS_KEPT) | {staging.name, aside.name} | _entry_holding(archive, config_dir)
    if not database_restored:
        keep |= DATABASE_FILES
    try:
        with terminal_progress("restore") as progress, FileReadWatcher(progress, archive):
            counts = extract_archive(archive, staging, password=password)
        _swap(config_dir, staging, aside, keep)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {
        "slug": backup.slug,
        "name": backup.name,
        "config_dir": str(config_dir),
        "database_restored": database_restored,
        "database_in_backup": backup.database_included,
        **counts,
    }


def _entry_holding(archive: Path, config_dir: Path) -> set[str]:
    """The top-level entry of ``config_dir`` that holds ``archive``, if it is inside it.

    Restoring from ``CONFIG_DIR/some/backup.tar`` must not delete the file being restored.
    """
    try:
        relative = archive.resolve().relative_to(config_dir.resolve())
    except ValueError:
        return set()
    return {relative.parts[0]} if relative.parts else set()


def _swap(config_dir: Path, staging: Path, aside: Path, keep: set[str]) -> None:
    aside.mkdir()
    moved_out: list[str] = []
    moved_in: list[str] = []
    try:
        for name in sorted(os.listdir(config_dir)):
            if name not in keep:
                os.rename(config_dir / name, aside / name)
                moved_out.append(name)
        for name in sorted(os.listdir(staging)):
            if name not in keep:
                os.rename(staging / name, config_dir / name)
                moved_in.append(name)
    except BaseException as failure:
        # Also on Ctrl-C: a half-swapped config dir is worse than either version.
        _roll_back(config_dir, staging, aside, moved_out, moved_in, failure)
        raise
    try:
        shutil.rmtree(aside)
    except OSError as err:
        # The restore itself succeeded; say what is left behind rather than fail it.
        error(f"restored, but could not delete the replaced files in {aside}: {err}")


def _roll_back(
    config_dir: Path,
    staging: Path,
    aside: Path,
    moved_out: list[str],
    moved_in: list[str],
    failure: BaseException,
) -> None:
    try:
        for name in reversed(moved_in):
            os.rename(config_dir / name, staging / name)
        for name in reversed(moved_out):
            os.rename(aside / name, config_dir / name)
        aside.rmdir()
    except OSError as err:
        # Never delete ``aside`` now: it holds the only copy of what was there before.
        raise BackupError(
            f"restore failed ({failure}) and undoing it failed too ({err}); the previous "
            f"contents of {config_dir} are in {aside}"
        ) from failure
