"""habackup: create, list, inspect, verify, extract, restore and move Home Assistant backups,
locally or on object stores (S3, GCS, Azure, WebDAV, file://)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ._cli import commands
from ._cli.inputs import UsageError
from ._cli.output import clean, error, warn
from ._cli.progress import write_line
from ._core import __version__
from .errors import BackupError

EXIT_OK = commands.EXIT_OK
EXIT_FAILURE = commands.EXIT_FAILURE
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

STORE_HELP = (
    "object store URLs: file:///dir, s3://bucket/prefix, gs://bucket/prefix, "
    "az://container/prefix, http(s)://host/dav/path (WebDAV), sftp://user@host[:port]/path "
    "(--option password=... or private_key=FILE, and host_key=SHA256:...), "
    "smb://[domain;]user@host[:port]/share/path (--option password=...); credentials from "
    "--option or the environment (AWS_*, AZURE_*, GOOGLE_*). Exit codes: 0 done (warnings "
    "included), 1 failed, 2 bad usage, 130 interrupted."
)

EXCLUDE_HELP = (
    "leave out files matching PATTERN (repeatable), in addition to Home Assistant's defaults "
    "(*.log, backups/*.tar, tts/*, **/__pycache__/*, ...). Patterns match paths inside "
    "CONFIG_DIR from its top: 'www/*.png' is www/logo.png, '*.png' only a .png at the top; "
    "* and ? stay within one path segment, a ** segment spans any number ('**/*.png' is every "
    ".png). A pattern that matches nothing gets a warning."
)


def _backup_name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("a backup needs a name (Home Assistant shows it)")
    return text


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


def _add_store_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="object store option, e.g. aws_endpoint=http://minio:9000 (repeatable)",
    )


def _common(suppress: bool) -> argparse.ArgumentParser:
    """--json and --debug, accepted before and after the subcommand.

    In the subcommands their default is SUPPRESS, so that ``habackup --debug info F`` is not
    reset to False by the subparser.
    """
    common = argparse.ArgumentParser(add_help=False)
    default: Any = argparse.SUPPRESS if suppress else False
    common.add_argument(
        "--json",
        action="store_true",
        default=default,
        help="machine-readable output (one JSON document on stdout)",
    )
    common.add_argument(
        "--debug", action="store_true", default=default, help="show tracebacks on errors"
    )
    return common


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="habackup", description=__doc__, parents=[_common(suppress=False)], epilog=STORE_HELP
    )
    parser.add_argument("--version", action="version", version=f"habackup {__version__}")
    commands_ = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common(suppress=True)

    def add(name: str, handler: Callable[[argparse.Namespace], int], text: str) -> Any:
        sub = commands_.add_parser(name, help=text, description=text, parents=[common])
        sub.set_defaults(handler=handler)
        return sub

    create = add("create", commands.create, "back up a Home Assistant config dir")
    create.add_argument("config_dir", metavar="CONFIG_DIR")
    create.add_argument(
        "-o",
        "--output",
        default="backups",
        metavar="DIR",
        help="directory for the backup, created if missing (default: ./backups); the file is "
        "DIR/SLUG.tar",
    )
    create.add_argument(
        "--name", default="Custom backup", type=_backup_name, help="the backup's name"
    )
    create.add_argument("--exclude", action="append", metavar="PATTERN", help=EXCLUDE_HELP)
    create.add_argument(
        "--no-default-excludes",
        action="store_true",
        help="apply only the --exclude patterns, not Home Assistant's defaults",
    )
    create.add_argument("--no-database", action="store_true", help="leave out the recorder DB")
    create.add_argument(
        "--ha-version",
        metavar="VERSION",
        help="the Home Assistant version to record (default: CONFIG_DIR/.HA_VERSION; a dir "
        "without one is refused unless this is given)",
    )
    create.add_argument(
        "--upload",
        action="append",
        metavar="URL",
        help="then upload it to this object store (repeatable)",
    )
    _add_password_options(create)
    _add_store_options(create)

    listing = add("list", commands.list_backups, "list the backups in a directory or store")
    listing.add_argument("location", metavar="DIR_OR_URL")
    _add_store_options(listing)

    info = add("info", commands.info, "show a backup's metadata")
    info.add_argument("file", metavar="FILE")

    verify = add("verify", commands.verify, "decode a whole backup and check every checksum")
    verify.add_argument("file", metavar="FILE")
    _add_password_options(verify)

    extract = add("extract", commands.extract, "extract a backup's config dir into a new dir")
    extract.add_argument("file", metavar="FILE")
    extract.add_argument("dest", metavar="DEST", help="absent or empty directory")
    _add_password_options(extract)

    restore = add(
        "restore",
        commands.restore_backup,
        "replace a config dir's contents with a backup's, keeping backups/ (stop Home "
        "Assistant first)",
    )
    restore.add_argument("file", metavar="FILE")
    restore.add_argument("config_dir", metavar="CONFIG_DIR")
    restore.add_argument(
        "--no-database",
        action="store_true",
        help="keep the current database instead of the backup's",
    )
    _add_password_options(restore)

    upload = add("upload", commands.upload, "upload a backup file to an object store")
    upload.add_argument("file", metavar="FILE")
    upload.add_argument("url", metavar="URL")
    _add_store_options(upload)

    download = add("download", commands.download, "download a backup from an object store")
    download.add_argument("url", metavar="URL")
    download.add_argument("slug", metavar="SLUG")
    download.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DIR",
        help="directory that gets SLUG.tar (created if missing)",
    )
    _add_store_options(download)
    return parser


class _Warnings(logging.Handler):
    """The engine's log records (a file that vanished during the backup, an exclude pattern
    that matched nothing, a store's unreadable sidecar) as ``habackup: warning:`` lines: they
    do not fail the command."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record must not fail the command
            message = str(record.msg)
        if record.levelno >= logging.WARNING:
            warn(message)
        else:  # --debug only
            write_line(f"habackup: {record.levelname.lower()}: {clean(message)}")


def _log_to_stderr(debug: bool) -> None:
    logger = logging.getLogger("habackup")
    logger.addHandler(_Warnings())
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    # Python's last-resort handler would print each record a second time.
    logger.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 failure, 2 usage, 130 interrupted)."""
    args = _parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    _log_to_stderr(args.debug)
    try:
        return handler(args)
    except UsageError as err:
        error(str(err))
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("habackup: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        if args.debug:
            raise
        error(_describe(err))
        return EXIT_FAILURE


def _describe(err: Exception) -> str:
    """One line: habackup's errors and OSErrors say what and where; anything else its type too.

    An OSError is shown as ``path: reason``, without Python's ``[Errno N]``."""
    if isinstance(err, OSError) and err.strerror:
        where = err.filename if err.filename is not None else None
        text = f"{where}: {err.strerror}" if where is not None else err.strerror
    elif isinstance(err, BackupError | OSError):
        text = str(err) or type(err).__name__
    else:
        text = f"{type(err).__name__}: {err} (run with --debug for the traceback)"
    return clean(text)
