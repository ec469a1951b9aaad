"""habackup: create, list, inspect, verify, extract, restore and move Home Assistant backups,
locally or on object stores (S3, GCS, Azure, WebDAV, file://)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ._cli import commands
from ._cli.inputs import UsageError
from .errors import BackupError

EXIT_OK = commands.EXIT_OK
EXIT_FAILURE = commands.EXIT_FAILURE
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

STORE_HELP = (
    "object store URLs: file:///dir, memory://, s3://bucket/prefix, gs://bucket/prefix, "
    "az://container/prefix, http(s)://host/dav/path, sftp://user@host[:port]/path "
    "(--option password=... or private_key=FILE, and host_key=SHA256:...), "
    "smb://[domain;]user@host[:port]/share/path (--option password=...); credentials from "
    "--option or the environment (AWS_*, AZURE_*, GOOGLE_*)"
)


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
        help="directory for the backup (default: ./backups)",
    )
    create.add_argument("--name", default="Custom backup", help="the backup's name")
    create.add_argument(
        "--exclude",
        action="append",
        metavar="PATTERN",
        help="exclude pattern (repeatable; replaces Home Assistant's defaults)",
    )
    create.add_argument("--no-database", action="store_true", help="leave out the recorder DB")
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
        "-o", "--output", required=True, metavar="DIR", help="directory that gets SLUG.tar"
    )
    _add_store_options(download)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 failure, 2 usage, 130 interrupted)."""
    args = _parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except UsageError as err:
        print(f"habackup: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("habackup: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        if args.debug:
            raise
        print(f"habackup: error: {_describe(err)}", file=sys.stderr)
        return EXIT_FAILURE


def _describe(err: Exception) -> str:
    """One line: habackup's errors and OSErrors say what and where; anything else its type too."""
    if isinstance(err, BackupError | OSError):
        text = str(err) or type(err).__name__
    else:
        text = f"{type(err).__name__}: {err} (run with --debug for the traceback)"
    # An error's text must stay one line on stderr.
    return " ".join(text.split())
