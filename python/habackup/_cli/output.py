"""What the commands print: a few aligned lines for people, one JSON document with ``--json``.

Backup names, paths, URLs and error texts come from users and from files (a backup downloaded
from a shared bucket names itself), so every line goes through :func:`clean` and JSON escapes
everything but printable ASCII: nothing a file holds can move the cursor or forge a line.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .._core import Backup
from ..models import SyncedBackup
from . import progress
from .progress import human

# Control characters (C0, DEL, C1) and the bidirectional overrides that reorder what a terminal
# shows: the same set as the engine's escaping (src/common/text.rs).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Lone surrogates: the bytes of a name that is not UTF-8, as Python decodes them.
_SURROGATES = re.compile("[\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

BACKUP_KEYS = (
    "slug",
    "name",
    "date",
    "size",
    "protected",
    "homeassistant_version",
    "database_included",
    "sha256",
    "path",
    "url",
)
"""Every command's JSON for a backup has exactly these keys (None where unknown): ``path`` is the
local file, ``url`` the store that holds it."""


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: object) -> str:
    """``text`` as one printable line: control characters written out as Python does
    (``\\n``, ``\\x1b``), undecodable bytes as U+FFFD. Escaping twice changes nothing."""
    return _UNSAFE.sub(_escaped, _SURROGATES.sub("\ufffd", str(text)))


def _json_safe(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATES.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_json_safe(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def emit_json(data: Any) -> None:
    """One JSON document on stdout, ASCII only (control characters and everything non-ASCII
    escaped); paths and other odd values as strings."""
    print(json.dumps(_json_safe(data), default=str))


def say(line: str) -> None:
    """One line on stdout."""
    print(clean(line))


def warn(message: str) -> None:
    """One line on stderr for what does not fail the command (the exit code stays 0)."""
    progress.write_line(f"habackup: warning: {clean(message)}")


def error(message: str) -> None:
    """One line on stderr for what fails the command: the caller returns a non-zero exit."""
    progress.write_line(f"habackup: error: {clean(message)}")


def backup_record(
    backup: Backup | SyncedBackup, *, path: object = None, url: str | None = None
) -> dict[str, Any]:
    """The one JSON shape of a backup (:data:`BACKUP_KEYS`), wherever it was found."""
    local = backup.path if isinstance(backup, Backup) else None
    where = path if path is not None else local
    return {
        "slug": backup.slug,
        "name": backup.name,
        "date": backup.date,
        "size": backup.size,
        "protected": backup.protected,
        "homeassistant_version": backup.homeassistant_version,
        "database_included": backup.database_included,
        "sha256": backup.sha256,
        "path": str(where) if where is not None else None,
        "url": url,
    }


def print_backup(record: dict[str, Any]) -> None:
    """A backup record (:func:`backup_record`) as a few aligned lines."""
    say(f"{record['slug']}  {record['name']}")
    say(f"  date:      {record['date']}")
    say(f"  size:      {human(record['size'])} ({record['size']} bytes)")
    say(f"  version:   {record['homeassistant_version'] or 'unknown'}")
    say(f"  database:  {'included' if record['database_included'] else 'excluded'}")
    say(f"  protected: {'yes' if record['protected'] else 'no'}")
    for key in ("sha256", "path", "url"):
        if record[key]:
            say(f"  {key + ':':<11}{record[key]}")


def print_listing(records: list[dict[str, Any]], where: str) -> None:
    """One line per backup, in the order given (newest first)."""
    if not records:
        say(f"no backups in {where}")
    for record in records:
        lock = " (protected)" if record["protected"] else ""
        say(
            f"{record['slug']}  {record['date']}  {human(record['size']):>10}  "
            f"{record['name']}{lock}"
        )
