"""One handler per subcommand: ``handler(args) -> exit code``; errors are raised, not printed.

Every handler calls the engine for the work; what it adds is the output, in the one JSON shape
of a backup (``output.backup_record``) with ``--json``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .. import _archive
from ..errors import BackupError
from . import remote
from .inputs import (
    UsageError,
    is_url,
    parse_options,
    read_password,
    reject_options_without_url,
)
from .output import backup_record, emit_json, error, print_backup, print_listing, say, warn
from .progress import FileReadWatcher, human, terminal_progress

EXIT_OK = 0
EXIT_FAILURE = 1


def create(args: argparse.Namespace) -> int:
    urls: list[str] = args.upload or []
    for url in urls:
        if not is_url(url):
            raise UsageError(f"--upload takes an object store URL (SCHEME://...), not {url!r}")
    reject_options_without_url(args, bool(urls))
    password = read_password(args)
    # Stores are opened first so that a bad URL or option fails before a long backup, not after.
    options = parse_options(args.option)
    agents = [remote.open_store(url, options) for url in urls]
    defaults = [] if args.no_default_excludes else list(_archive.DEFAULT_EXCLUDES)
    with terminal_progress("create") as progress:
        backup = _archive.create_archive(
            args.config_dir,
            # The trailing "/" makes it a directory: created if missing, removed if this fails.
            os.path.join(args.output, ""),
            name=args.name,
            include_database=not args.no_database,
            excludes=defaults + (args.exclude or []),
            ha_version=args.ha_version,
            password=password,
            on_progress=progress,
        )
    assert backup.path is not None  # create_archive always writes a local file
    uploads = remote.upload_all(agents, backup.path)
    if args.json:
        emit_json({**backup_record(backup), "uploads": uploads})
    else:
        print_backup(backup_record(backup))
        for result in uploads:
            if result["ok"]:
                say(f"  uploaded:  {result['url']}")
    failed = [result for result in uploads if not result["ok"]]
    for result in failed:
        error(f"upload to {result['url']} failed: {result['error']}")
    return EXIT_FAILURE if failed else EXIT_OK


def list_backups(args: argparse.Namespace) -> int:
    where: str = args.location
    reject_options_without_url(args, is_url(where))
    if is_url(where):
        agent = remote.open_store(where, parse_options(args.option))
        remote.require_location(agent)
        records = [backup_record(b, url=agent.url) for b in remote.list_backups(agent)]
        where = agent.url
    else:
        backups, skipped = _archive.list_backups(where)
        for err in skipped:
            # One unreadable file should not hide the others, nor fail the listing.
            warn(f"skipped {err}")
        backups.sort(key=lambda b: b.date, reverse=True)
        records = [backup_record(b) for b in backups]
    if args.json:
        emit_json(records)
    else:
        print_listing(records, where)
    return EXIT_OK


def info(args: argparse.Namespace) -> int:
    record = backup_record(_archive.read_backup(args.file))
    if args.json:
        emit_json(record)
    else:
        print_backup(record)
    return EXIT_OK


def extract(args: argparse.Namespace) -> int:
    password = read_password(args)
    with terminal_progress("extract") as progress, FileReadWatcher(progress, args.file):
        counts = _archive.extract_archive(
            args.file, args.dest, password=password, include=args.include
        )
    if args.json:
        emit_json({**counts, "dest": str(Path(args.dest).absolute())})
    else:
        say(
            f"extracted {counts['files']} files, {counts['directories']} directories and "
            f"{counts['symlinks']} symlinks ({human(counts['bytes'])}) into {args.dest}"
        )
    return EXIT_OK


def verify_file(args: argparse.Namespace, path: str) -> int:
    """``verify FILE``: the backup file decoded whole (``habackup verify`` of a folder or store
    is ``trust.verify``)."""
    password = read_password(args)
    with terminal_progress("verify") as progress, FileReadWatcher(progress, path):
        report = _archive.verify_archive(path, password=password)
    for message in report["warnings"]:
        warn(f"{path}: {message}")
    if args.json:
        emit_json({**report, "path": path})
    else:
        version = report["securetar_version"]
        protection = f"protected (securetar v{version})" if report["protected"] else "not protected"
        say(
            f"{path}: OK, {report['members']} members, {human(report['bytes'] or 0)} of "
            f"file data, {protection}"
        )
    return EXIT_OK


def restore_backup(args: argparse.Namespace) -> int:
    password = read_password(args)
    with terminal_progress("restore") as progress, FileReadWatcher(progress, args.file):
        result = _archive.restore_archive(
            args.file,
            args.config_dir,
            password=password,
            restore_database=not args.no_database,
        )
    if args.json:
        emit_json(result)
        return EXIT_OK
    if result["database_restored"]:
        database = "restored"
    elif result["database_in_backup"]:
        database = "kept as it was (--no-database)"
    else:
        database = "kept as it was (the backup has none)"
    say(
        f"restored {result['slug']} ({result['name']}) into {result['config_dir']}: "
        f"{result['files']} files, {human(result['bytes'])} from the backup; database "
        f"{database}; backups/ kept as it was"
    )
    return EXIT_OK


def upload(args: argparse.Namespace) -> int:
    if not is_url(args.url):
        raise UsageError(f"not an object store URL (SCHEME://...): {args.url!r}")
    path = Path(args.file)
    # Reading backup.json first refuses a file that is not a backup before anything is sent.
    _archive.read_backup(path)
    agent = remote.open_store(args.url, parse_options(args.option))
    record = backup_record(remote.upload(agent, path), path=path, url=agent.url)
    if args.json:
        emit_json(record)
    else:
        say(f"uploaded {record['slug']} ({human(record['size'])}) to {agent.url}")
    return EXIT_OK


def download(args: argparse.Namespace) -> int:
    if not is_url(args.url):
        raise UsageError(f"not an object store URL (SCHEME://...): {args.url!r}")
    if not _archive.is_valid_slug(args.slug):
        raise UsageError(f"not a backup slug: {args.slug!r}")
    slug: str = args.slug
    agent = remote.open_store(args.url, parse_options(args.option))
    path = Path(args.output) / f"{slug}.tar"
    if path.exists():
        raise BackupError(f"{path} already exists")
    record = backup_record(remote.download(agent, slug, path), url=agent.url)
    if args.json:
        emit_json(record)
    else:
        say(f"downloaded {slug} ({human(record['size'])}) from {agent.url} to {path}")
    return EXIT_OK
