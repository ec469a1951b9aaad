"""One handler per subcommand: ``handler(args) -> exit code``; errors are raised, not printed."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .. import _archive
from .._core import Backup
from ..errors import BackupError
from . import remote
from .inputs import (
    UsageError,
    is_url,
    parse_options,
    read_password,
    reject_options_without_url,
    safe_slug,
)
from .output import emit_json, error, print_backup, print_listing, warning
from .progress import FileReadWatcher, human, terminal_progress
from .restore import restore

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
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    with terminal_progress("create") as progress:
        backup = _archive.create_archive(
            args.config_dir,
            output,
            name=args.name,
            include_database=not args.no_database,
            excludes=args.exclude if args.exclude else _archive.DEFAULT_EXCLUDES,
            password=password,
            on_progress=progress,
        )
    assert backup.path is not None  # create_archive always writes a local file
    uploads = remote.upload_all(agents, backup.path)
    if args.json:
        emit_json({**backup.as_dict(), "uploads": uploads})
    else:
        print_backup(backup)
        for result in uploads:
            if result["ok"]:
                print(f"  uploaded:  {result['url']}")
    failed = [result for result in uploads if not result["ok"]]
    for result in failed:
        error(f"upload to {result['url']} failed: {result['error']}")
    return EXIT_FAILURE if failed else EXIT_OK


def list_backups(args: argparse.Namespace) -> int:
    where: str = args.location
    reject_options_without_url(args, is_url(where))
    rows: list[Any]
    if is_url(where):
        agent = remote.open_store(where, parse_options(args.option))
        rows = remote.list_backups(agent)
        where = agent.url
    else:
        rows = _local_backups(Path(where))
    if args.json:
        emit_json([row.as_dict() for row in rows])
    else:
        print_listing(rows, where)
    return EXIT_OK


def _local_backups(directory: Path) -> list[Backup]:
    if not directory.is_dir():
        raise BackupError(f"{directory} is not a directory")
    backups: list[Backup] = []
    for path in sorted(directory.glob("*.tar")):
        try:
            backups.append(_archive.read_backup(path))
        except BackupError as err:
            # One unreadable file should not hide the others.
            error(f"skipped {path}: {err}")
    backups.sort(key=lambda b: b.date, reverse=True)
    return backups


def info(args: argparse.Namespace) -> int:
    backup = _archive.read_backup(args.file)
    if args.json:
        emit_json(backup.as_dict())
    else:
        print_backup(backup)
    return EXIT_OK


def extract(args: argparse.Namespace) -> int:
    password = read_password(args)
    with terminal_progress("extract") as progress, FileReadWatcher(progress, args.file):
        counts = _archive.extract_archive(args.file, args.dest, password=password)
    if args.json:
        emit_json({**counts, "dest": str(Path(args.dest).absolute())})
    else:
        print(
            f"extracted {counts['files']} files, {counts['directories']} directories and "
            f"{counts['symlinks']} symlinks ({human(counts['bytes'])}) into {args.dest}"
        )
    return EXIT_OK


def verify(args: argparse.Namespace) -> int:
    password = read_password(args)
    with terminal_progress("verify") as progress, FileReadWatcher(progress, args.file):
        report = _archive.verify_archive(args.file, password=password)
    for message in report["warnings"]:
        warning(f"{args.file}: {message}")
    if args.json:
        emit_json({**report, "path": args.file})
    else:
        version = report["securetar_version"]
        protection = f"protected (securetar v{version})" if report["protected"] else "not protected"
        print(
            f"{args.file}: OK, {report['members']} members, {human(report['bytes'] or 0)} of "
            f"file data, {protection}"
        )
    return EXIT_OK


def restore_backup(args: argparse.Namespace) -> int:
    result = restore(
        Path(args.file),
        Path(args.config_dir),
        password=read_password(args),
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
    print(
        f"restored {result['slug']} ({result['name']}) into {result['config_dir']}: "
        f"{result['files']} files, {human(result['bytes'])}; database {database}"
    )
    return EXIT_OK


def upload(args: argparse.Namespace) -> int:
    if not is_url(args.url):
        raise UsageError(f"not an object store URL (SCHEME://...): {args.url!r}")
    path = Path(args.file)
    # Reading backup.json first refuses a file that is not a backup before anything is sent.
    backup = _archive.read_backup(path)
    agent = remote.open_store(args.url, parse_options(args.option))
    remote.upload(agent, path)
    size = path.stat().st_size
    result = {
        "slug": backup.slug,
        "name": backup.name,
        "path": str(path),
        "url": agent.url,
        "size": size,
    }
    if args.json:
        emit_json(result)
    else:
        print(f"uploaded {backup.slug} ({human(size)}) to {agent.url}")
    return EXIT_OK


def download(args: argparse.Namespace) -> int:
    if not is_url(args.url):
        raise UsageError(f"not an object store URL (SCHEME://...): {args.url!r}")
    slug = safe_slug(args.slug)
    agent = remote.open_store(args.url, parse_options(args.option))
    directory = Path(args.output)
    path = directory / f"{slug}.tar"
    if path.exists():
        raise BackupError(f"{path} already exists")
    directory.mkdir(parents=True, exist_ok=True)
    remote.download(agent, slug, path)
    size = path.stat().st_size
    result = {"slug": slug, "path": str(path), "url": agent.url, "size": size}
    if args.json:
        emit_json(result)
    else:
        print(f"downloaded {slug} ({human(size)}) from {agent.url} to {path}")
    return EXIT_OK
