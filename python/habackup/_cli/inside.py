"""Looking inside backups: ``ls`` lists a backup's members, ``diff`` what differs between two.
The work is the engine's (``habackup._inspect``: every byte decoded, nothing written)."""

from __future__ import annotations

import argparse
import datetime as dt
import stat

from .. import _inspect
from ..models import BackupMember
from .commands import EXIT_OK
from .inputs import read_password
from .output import emit_json, say
from .progress import FileReadWatcher, human, terminal_progress

_TYPE_BITS = {
    "file": stat.S_IFREG,
    "hardlink": stat.S_IFREG,
    "directory": stat.S_IFDIR,
    "symlink": stat.S_IFLNK,
}


def member_line(member: BackupMember) -> str:
    """``ls -l``'s shape: mode, size, local mtime, path and where a link points."""
    mode = stat.filemode(_TYPE_BITS[member.type] | (member.mode & 0o7777))
    when = dt.datetime.fromtimestamp(member.mtime).strftime("%Y-%m-%d %H:%M")
    if member.type == "symlink":
        where = f" -> {member.link}"
    elif member.type == "hardlink":
        where = f" link to {member.link}"
    else:
        where = ""
    size = human(member.size) if member.type == "file" else "-"
    return f"{mode}  {size:>10}  {when}  {member.path}{where}"


def list_members(args: argparse.Namespace) -> int:
    password = read_password(args)
    with terminal_progress("ls") as progress, FileReadWatcher(progress, args.file):
        members = _inspect.list_members(args.file, password=password)
    if args.json:
        emit_json([member.as_dict() for member in members])
        return EXIT_OK
    for member in members:
        say(member_line(member))
    files = [m for m in members if m.type == "file"]
    say(f"{len(members)} members, {len(files)} files, {human(sum(m.size for m in files))}")
    return EXIT_OK


def diff(args: argparse.Namespace) -> int:
    """Added (``+``), removed (``-``) and changed (``M``) paths from FILE_A to FILE_B; exit 0
    whatever differs (1 is for a backup that cannot be read)."""
    password = read_password(args)
    # Both files stream at once: how far FILE_A is read is how far the comparison is.
    with terminal_progress("diff") as progress, FileReadWatcher(progress, args.file_a):
        found = _inspect.diff_backups(args.file_a, args.file_b, password=password)
    if args.json:
        emit_json(found.as_dict())
        return EXIT_OK
    lines = [(m.path, "+", member_line(m)) for m in found.added]
    lines += [(m.path, "-", member_line(m)) for m in found.removed]
    lines += [(c.path, "M", member_line(c.after)) for c in found.changed]
    for _, sign, line in sorted(lines):
        say(f"{sign} {line}")
    say(
        f"{len(found.added)} added, {len(found.removed)} removed, {len(found.changed)} changed"
    )
    return EXIT_OK
