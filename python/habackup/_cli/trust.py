"""Backups over time: ``verify`` where they are stored, ``prune`` by calendar, ``copy`` between
locations. Folders and store URLs alike; the work is the engine's (``habackup._locations``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import _archive, _locations
from ..errors import BackupNotFound
from ..models import KeepRules, SyncedBackup, VerifyResult
from . import remote
from .commands import EXIT_FAILURE, EXIT_OK, verify_file
from .inputs import UsageError, is_url, parse_options, read_password, reject_options_without_url
from .output import backup_record, emit_json, error, say, warn
from .progress import human, terminal_progress

KEEP_RULES = (
    "keep_last",
    "keep_hourly",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "keep_yearly",
    "keep_within",
)


def _check_slugs(slugs: list[str]) -> None:
    for slug in slugs:
        if not _archive.is_valid_slug(slug):
            raise UsageError(f"not a backup slug: {slug!r}")


def _open(location: str, options: dict[str, str]) -> str:
    """Where ``location`` is, as it is shown (a store URL without credentials): a bad URL or
    option, ``memory://`` or a ``file://`` folder that does not exist fail here, before any
    work; so does a local path that is not a directory."""
    if not is_url(location):
        if not Path(location).is_dir():
            raise UsageError(f"not a directory of backups or a store URL: {location}")
        return location
    agent = remote.open_store(location, options)
    remote.require_location(agent)
    return agent.url


def verify(args: argparse.Namespace) -> int:
    """A FILE is decoded whole (as ever); in a folder or store the named backups are verified
    where they are stored. Exit 1 when any of them is bad, each problem on its own line."""
    target: str = args.target
    if not is_url(target) and not Path(target).is_dir():
        if args.slugs or args.all:
            raise UsageError(
                f"SLUG and --all name backups in a folder or store; {target} is one backup file"
            )
        reject_options_without_url(args, False)
        # A file is always decoded whole: --deep is what it does anyway.
        return verify_file(args, target)
    reject_options_without_url(args, is_url(target))
    if args.all == bool(args.slugs):
        raise UsageError("name the backups to verify (SLUG ...) or give --all, not both")
    _check_slugs(args.slugs)
    password = read_password(args)
    options = parse_options(args.option)
    where = _open(target, options)
    slugs: list[str] = args.slugs or _all_slugs(target, options)
    results = [_verify_one(target, where, slug, args, password, options) for slug in slugs]
    if args.json:
        emit_json([result.as_dict() for result in results])
    elif not results:
        say(f"no backups in {where}")
    return EXIT_OK if all(result.ok for result in results) else EXIT_FAILURE


def _all_slugs(target: str, options: dict[str, str]) -> list[str]:
    """The slugs of every backup in a folder or store, newest first."""
    if is_url(target):
        return [b.slug for b in remote.list_backups(remote.open_store(target, options))]
    backups, skipped = _archive.list_backups(target)
    for err in skipped:
        warn(f"skipped {err}")
    return [b.slug for b in sorted(backups, key=lambda b: b.date, reverse=True)]


def _verify_one(
    target: str,
    where: str,
    slug: str,
    args: argparse.Namespace,
    password: str | None,
    options: dict[str, str],
) -> VerifyResult:
    """One backup verified; its warnings and problems printed on stderr, one per line, and
    (without ``--json``) its verdict on stdout."""
    with terminal_progress(f"verify {slug}") as progress:
        try:
            result = _locations.verify_backup(
                target, slug, deep=args.deep, password=password, options=options,
                on_progress=progress,
            )
        except BackupNotFound as err:
            # One backup missing is that backup's problem: the others are still verified.
            result = VerifyResult(
                location=where, slug=slug, ok=False, size=0, sha256=None, problems=(str(err),)
            )
    for message in result.warnings:
        warn(f"{slug}: {message}")
    for message in result.problems:
        error(f"{slug}: {message}")
    if args.json:
        return result
    if result.ok and result.deep:
        say(
            f"{slug}: OK, every byte decoded: {result.members} members, "
            f"{human(result.bytes or 0)} of file data, {human(result.size)} stored"
        )
    elif result.ok:
        digest = f", sha256 {result.sha256}" if result.sha256 else ""
        say(f"{slug}: OK, {human(result.size)}{digest}")
    else:
        count = len(result.problems)
        say(f"{slug}: FAILED ({count} problem{'s' if count != 1 else ''})")
    return result


def keep_count(text: str) -> int | str:
    """``--keep-*`` counts: a number of backups, or ``unlimited``."""
    if text == "unlimited":
        return text
    try:
        count = int(text)
    except ValueError:
        count = -1
    if count < 0:
        raise argparse.ArgumentTypeError(f"not a number of backups or 'unlimited': {text!r}")
    return count


def prune(args: argparse.Namespace) -> int:
    """Remove what the ``--keep-*`` rules do not keep (restic's ``forget``); ``--dry-run`` only
    shows it. With no rule at all nothing is listed, let alone removed (exit 2)."""
    rules = KeepRules()
    for key in KEEP_RULES:
        value = getattr(args, key)
        if value is not None:
            rules[key] = value  # type: ignore[literal-required]
    if not rules:
        raise UsageError(
            "prune needs at least one rule: --keep-last, --keep-hourly, --keep-daily, "
            "--keep-weekly, --keep-monthly, --keep-yearly or --keep-within"
        )
    try:
        # The policy and the zone are checked before anything is listed, let alone removed.
        _locations.plan_prune([], tz=args.tz, **rules)
    except ValueError as err:
        raise UsageError(str(err)) from err
    location: str = args.location
    reject_options_without_url(args, is_url(location))
    options = parse_options(args.option)
    where = _open(location, options)
    plan = _locations.prune(location, tz=args.tz, dry_run=args.dry_run, options=options, **rules)
    if args.json:
        emit_json(plan.as_dict())
        return EXIT_OK
    for kept in plan.keep:
        say(f"keep    {kept.slug}  {kept.date}  ({', '.join(kept.reasons)})")
    for removed in plan.remove:
        say(f"{'remove ' if args.dry_run else 'removed'} {removed.slug}  {removed.date}")
    verb = "would remove" if args.dry_run else "removed"
    say(f"{where}: kept {len(plan.keep)}, {verb} {len(plan.remove)}")
    return EXIT_OK


def copy(args: argparse.Namespace) -> int:
    """Copy one backup between any two folders or stores, checked on the way; a copy already
    there with the same bytes is left alone."""
    source: str = args.source
    dest: str = args.dest
    _check_slugs([args.slug])
    if args.option and not is_url(source):
        raise UsageError("--option applies to a SOURCE store URL; use --dest-option for DEST")
    if args.dest_option and not is_url(dest):
        raise UsageError("--dest-option applies to a DEST store URL (SCHEME://...)")
    options = parse_options(args.option)
    dest_options = parse_options(args.dest_option)
    shown_source = _open(source, options)
    if is_url(dest):
        # A bad DEST URL or option fails before anything is read from SOURCE.
        remote.open_store(dest, dest_options)
    with terminal_progress("copy") as progress:
        result = _locations.copy_backup(
            source, args.slug, dest, options=options, dest_options=dest_options,
            on_progress=progress,
        )
    if args.json:
        copied = SyncedBackup.from_metadata({**result.metadata, "slug": result.slug})
        path = None if is_url(dest) else result.metadata.get("path")
        url = result.dest if is_url(dest) else None
        record = backup_record(copied, path=path, url=url)
        emit_json({**record, "source": shown_source, "sent": result.sent})
    elif result.sent:
        say(f"copied {result.slug} ({human(result.size)}) from {shown_source} to {result.dest}")
    else:
        say(f"{result.dest} already holds {result.slug} with the same sha256: nothing was sent")
    return EXIT_OK
