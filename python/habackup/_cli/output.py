"""What the commands print: a few aligned lines for people, one JSON document with ``--json``."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from .._core import Backup
from ..models import SyncedBackup
from .progress import human


def emit_json(data: Any) -> None:
    """One JSON document on stdout (paths and other odd values as strings)."""
    print(json.dumps(data, default=str))


def error(message: str) -> None:
    """One line on stderr, in argparse's style, for errors that do not stop the command."""
    print(f"habackup: error: {message}", file=sys.stderr)


def warning(message: str) -> None:
    """One line on stderr for something that does not fail the command (exit status unchanged)."""
    print(f"habackup: warning: {message}", file=sys.stderr)


def print_backup(backup: Backup) -> None:
    print(f"{backup.slug}  {backup.name}")
    print(f"  date:      {backup.date}")
    print(f"  size:      {human(backup.size)} ({backup.size} bytes)")
    print(f"  version:   {backup.homeassistant_version or 'unknown'}")
    print(f"  database:  {'included' if backup.database_included else 'excluded'}")
    print(f"  protected: {'yes' if backup.protected else 'no'}")
    if backup.sha256:
        print(f"  sha256:    {backup.sha256}")
    if backup.path is not None:
        print(f"  path:      {backup.path}")


def print_listing(rows: Sequence[Backup | SyncedBackup], where: str) -> None:
    """One line per backup, newest first (the caller sorts)."""
    if not rows:
        print(f"no backups in {where}")
    for row in rows:
        lock = " (protected)" if row.protected else ""
        print(f"{row.slug}  {row.date}  {human(row.size):>10}  {row.name}{lock}")
