"""``python -m habackup``: create, list, inspect and extract Home Assistant backups."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from . import _archive
from ._core import Backup
from .errors import BackupError

EXIT_OK = 0
EXIT_FAILURE = 1


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


class _Progress:
    """A one-line progress bar (bytes, rate, ETA) on a terminal; nothing otherwise."""

    def __init__(self, label: str, stream: TextIO = sys.stderr) -> None:
        self.label = label
        self.stream = stream
        self.started = time.monotonic()
        self.shown = False
        self._lock = threading.Lock()

    @classmethod
    def for_terminal(cls, label: str) -> _Progress | None:
        return cls(label) if sys.stderr.isatty() else None

    def __call__(self, done: int, total: int) -> None:
        with self._lock:
            elapsed = max(time.monotonic() - self.started, 1e-6)
            rate = done / elapsed
            eta = (total - done) / rate if rate > 0 else 0.0
            share = done / total if total else 1.0
            bar = "#" * int(share * 30)
            self.stream.write(
                f"\r{self.label} [{bar:<30}] {_human(done)} / {_human(total)} "
                f"{_human(int(rate))}/s ETA {eta:4.0f}s "
            )
            self.stream.flush()
            self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


class UsageError(Exception):
    """A command line that cannot work; reported with exit code 2."""


def _read_password(args: argparse.Namespace) -> str | None:
    """Passwords come from a file or an environment variable, never from the command line."""
    if getattr(args, "password_file", None):
        try:
            text = Path(args.password_file).read_text(encoding="utf-8")
        except OSError as err:
            raise UsageError(f"cannot read the password file: {err}") from err
        password = text.rstrip("\r\n")
    elif getattr(args, "password_env", None):
        password = os.environ.get(args.password_env, "")
        if not password:
            raise UsageError(f"the environment variable {args.password_env} is not set or empty")
    else:
        return None
    if not password:
        raise UsageError("the password is empty")
    return password


def _with_progress(label: str, run: Callable[[Callable[[int, int], None] | None], Any]) -> Any:
    progress = _Progress.for_terminal(label)
    try:
        return run(progress)
    finally:
        if progress is not None:
            progress.close()


def _print_backup(backup: Backup, as_json: bool) -> None:
    if as_json:
        print(json.dumps(backup.as_dict()))
        return
    print(f"{backup.slug}  {backup.name}")
    print(f"  date:      {backup.date}")
    print(f"  size:      {_human(backup.size)} ({backup.size} bytes)")
    print(f"  version:   {backup.homeassistant_version or 'unknown'}")
    print(f"  database:  {'included' if backup.database_included else 'excluded'}")
    print(f"  protected: {'yes' if backup.protected else 'no'}")
    if backup.sha256:
        print(f"  sha256:    {backup.sha256}")
    if backup.path is not None:
        print(f"  path:      {backup.path}")


def _cmd_create(args: argparse.Namespace) -> int:
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    password = _read_password(args)
    backup = _with_progress(
        "create",
        lambda progress: _archive.create_archive(
            args.config_dir,
            output,
            name=args.name,
            include_database=not args.no_database,
            excludes=args.exclude if args.exclude else _archive.DEFAULT_EXCLUDES,
            password=password,
            on_progress=progress,
        ),
    )
    _print_backup(backup, args.json)
    return EXIT_OK


def _cmd_list(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    if not directory.is_dir():
        raise BackupError(f"{directory} is not a directory")
    backups: list[Backup] = []
    for path in sorted(directory.glob("*.tar")):
        try:
            backups.append(_archive.read_backup(path))
        except BackupError as err:
            print(f"skipped {path}: {err}", file=sys.stderr)
    backups.sort(key=lambda b: b.date, reverse=True)
    if args.json:
        print(json.dumps([b.as_dict() for b in backups]))
        return EXIT_OK
    if not backups:
        print(f"no backups in {directory}")
    for b in backups:
        print(f"{b.slug}  {b.date}  {_human(b.size):>10}  {b.name}")
    return EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    _print_backup(_archive.read_backup(args.file), args.json)
    return EXIT_OK


def _cmd_extract(args: argparse.Namespace) -> int:
    counts = _archive.extract_archive(args.file, args.dest, password=_read_password(args))
    if args.json:
        print(json.dumps(counts))
    else:
        print(
            f"extracted {counts['files']} files, {counts['directories']} directories and "
            f"{counts['symlinks']} symlinks ({_human(counts['bytes'])}) into {args.dest}"
        )
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    report = _archive.verify_archive(args.file, password=_read_password(args))
    if args.json:
        print(json.dumps(report))
    else:
        version = report["securetar_version"]
        protection = f"protected (securetar v{version})" if report["protected"] else "not protected"
        print(
            f"{args.file}: OK, {report['members']} members, {_human(report['bytes'] or 0)} of "
            f"file data, {protection}"
        )
    return EXIT_OK


class _RefusePassword(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *_: Any, **__: Any) -> None:
        parser.error(
            "--password is not accepted: a password on the command line ends up in shell history "
            "and process lists; use --password-file FILE or --password-env VAR"
        )


def _add_password_options(sub: argparse.ArgumentParser) -> None:
    group = sub.add_mutually_exclusive_group()
    group.add_argument("--password-file", metavar="FILE", help="read the password from FILE")
    group.add_argument("--password-env", metavar="VAR", help="read the password from $VAR")
    sub.add_argument("--password", nargs="?", action=_RefusePassword, help=argparse.SUPPRESS)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="habackup", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True)

    create = commands.add_parser("create", help="back up a Home Assistant config dir")
    create.add_argument("config_dir")
    create.add_argument("-o", "--output", default="backups", help="directory for the backup")
    create.add_argument("--name", default="Custom backup", help="the backup's name")
    create.add_argument(
        "--exclude",
        action="append",
        metavar="PATTERN",
        help="exclude pattern (repeatable; replaces Home Assistant's defaults)",
    )
    create.add_argument("--no-database", action="store_true", help="leave out the recorder DB")
    create.set_defaults(handler=_cmd_create)

    listing = commands.add_parser("list", help="list the backups in a directory")
    listing.add_argument("directory")
    listing.set_defaults(handler=_cmd_list)

    info = commands.add_parser("info", help="show a backup's metadata")
    info.add_argument("file")
    info.set_defaults(handler=_cmd_info)

    extract = commands.add_parser("extract", help="extract a backup's config dir")
    extract.add_argument("file")
    extract.add_argument("dest")
    extract.set_defaults(handler=_cmd_extract)

    verify = commands.add_parser("verify", help="decode a whole backup and check every checksum")
    verify.add_argument("file")
    verify.set_defaults(handler=_cmd_verify)

    for sub in (create, extract, verify):
        _add_password_options(sub)
    for sub in (create, listing, info, extract, verify):
        sub.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler: Any = args.handler
    try:
        result: int = handler(args)
    except UsageError as err:
        print(f"habackup: error: {err}", file=sys.stderr)
        return 2
    except BackupError as err:
        if args.debug:
            raise
        print(f"habackup: error: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("habackup: interrupted", file=sys.stderr)
        return 130
    return result
