"""Backups over time, on a folder or a store URL alike: verify where they are stored, copy
between locations, prune by calendar. The work is the engine's (``store::Location``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, Unpack

from . import _core
from ._cancel import await_cleanly
from .models import CopyResult, KeepRules, KeptBackup, PrunedBackup, PrunePlan, VerifyResult
from .object_store import OptionValue, option_pairs

Options = Mapping[str, OptionValue] | None
ProgressCallback = Callable[[int, int], None]


class _Dated(Protocol):
    @property
    def slug(self) -> str: ...
    @property
    def date(self) -> str: ...


def verify_result(data: Mapping[str, Any]) -> VerifyResult:
    """The engine's check dict as a :class:`VerifyResult`."""
    return VerifyResult(
        location=data["location"],
        slug=data["slug"],
        ok=data["ok"],
        size=data["size"],
        sha256=data["sha256"],
        problems=tuple(data["problems"]),
        warnings=tuple(data["warnings"]),
        deep=data["deep"],
        members=data.get("members"),
        bytes=data.get("bytes"),
        password_incorrect=data.get("password_incorrect", False),
    )


def verify_backup(
    location: str,
    slug: str,
    *,
    deep: bool = False,
    password: str | None = None,
    options: Options = None,
    on_progress: ProgressCallback | None = None,
) -> VerifyResult:
    """Verify backup ``slug`` where it is stored: a folder or a store URL.

    Quick (default): the stored bytes are streamed through sha256 and compared with the size and
    digest recorded beside them (nothing is written to disk), and its backup.json must parse.
    ``deep=True`` also decodes everything (for a protected backup the ``password`` first, then
    every MAC and the FINAL tag; the gzip CRC and the tar structure). A damaged backup is a
    result with ``problems``, not an exception; a missing one raises ``BackupNotFound``. In a
    folder nothing records a digest: quick reads the file whole and reports its sha256, but
    only ``deep`` finds a changed byte. ``on_progress(bytes_done, bytes_total)`` follows the
    bytes read (from a worker thread).
    """
    data = _core.verify_backup(
        location, slug, deep=deep, password=password, options=option_pairs(options),
        on_progress=on_progress,
    )
    return verify_result(data)


async def async_verify_backup(
    location: str,
    slug: str,
    *,
    deep: bool = False,
    password: str | None = None,
    options: Options = None,
    on_progress: ProgressCallback | None = None,
) -> VerifyResult:
    """:func:`verify_backup` without blocking the event loop (``on_progress`` on its thread)."""
    token = _core.CancelToken()
    future = _core.verify_backup_async(
        location, slug, deep=deep, password=password, options=option_pairs(options),
        on_progress=on_progress, cancel=token,
    )
    return verify_result(await await_cleanly(future, token))


def copy_backup(
    source: str,
    slug: str,
    dest: str,
    *,
    options: Options = None,
    dest_options: Options = None,
    on_progress: ProgressCallback | None = None,
) -> CopyResult:
    """Copy backup ``slug`` from ``source`` to ``dest`` (folders or store URLs), checked on the
    way (size and sha256). Between stores the bytes stream straight across with no temp file;
    into a folder they go to a temp file renamed into place when complete. The destination's
    metadata is written last, so an interrupted copy leaves nothing listed there. A copy already
    there with the same sha256 is left alone and nothing is sent (``sent`` is False); one with
    other bytes is refused. ``options`` and ``dest_options`` are each store's options;
    ``on_progress(bytes_done, bytes_total)`` runs on a worker thread."""
    data = _core.copy_backup(
        source, slug, dest, options=option_pairs(options),
        dest_options=option_pairs(dest_options), on_progress=on_progress,
    )
    return _copied(slug, data)


async def async_copy_backup(
    source: str,
    slug: str,
    dest: str,
    *,
    options: Options = None,
    dest_options: Options = None,
    on_progress: ProgressCallback | None = None,
) -> CopyResult:
    """:func:`copy_backup` without blocking the event loop (``on_progress`` on its thread)."""
    token = _core.CancelToken()
    future = _core.copy_backup_async(
        source, slug, dest, options=option_pairs(options),
        dest_options=option_pairs(dest_options), on_progress=on_progress, cancel=token,
    )
    return _copied(slug, await await_cleanly(future, token))


def _copied(slug: str, data: Mapping[str, Any]) -> CopyResult:
    metadata = data["metadata"]
    return CopyResult(
        slug=slug,
        source=data["source"],
        dest=data["dest"],
        sent=data["sent"],
        size=int(metadata.get("size") or 0),
        sha256=metadata.get("sha256") or None,
        metadata=metadata,
    )


def _plan(data: Mapping[str, Any]) -> PrunePlan:
    return PrunePlan(
        keep=tuple(
            KeptBackup(slug=k["slug"], date=k["date"], reasons=tuple(k["reasons"]))
            for k in data["keep"]
        ),
        remove=tuple(PrunedBackup(slug=r["slug"], date=r["date"]) for r in data["remove"]),
    )


def _when(now: dt.datetime | str | None) -> str | None:
    if isinstance(now, dt.datetime):
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime (with a time zone)")
        return now.isoformat()
    return now


def plan_prune(
    backups: Iterable[_Dated | tuple[str, str]],
    *,
    now: dt.datetime | str | None = None,
    tz: str | None = None,
    **rules: Unpack[KeepRules],
) -> PrunePlan:
    """Which of ``backups`` (anything with ``slug`` and ``date``, or ``(slug, date)`` pairs) a
    retention policy (``rules``: :class:`~habackup.KeepRules`) keeps, with the rules that keep
    each, and which it removes.

    restic's ``forget`` semantics: ``keep_last`` the newest n; ``keep_hourly`` ... ``keep_yearly``
    the newest backup of each of the n newest hours, days, ISO weeks, months or years that hold
    one, in time zone ``tz`` (an IANA name; default this machine's); ``keep_within`` every backup
    within a span (``"2y5m7d3h"``) of the newest (counted back on the calendar as restic
    does). ``"unlimited"`` keeps every bucket. A backup kept by any rule is kept; a rule with
    buckets left when it reaches the oldest backup keeps that one too (``"oldest daily"``). Beyond
    restic: the newest backup, backups dated in the future (left out of every rule) and undated
    ones are never removed. At least one rule is required (``ValueError``; 0 is no rule, as in
    restic). Nothing is touched.
    """
    pairs = [b if isinstance(b, tuple) else (b.slug, b.date) for b in backups]
    return _plan(_core.plan_prune(pairs, dict(rules), now=_when(now), tz=tz))


def prune(
    location: str,
    *,
    now: dt.datetime | str | None = None,
    tz: str | None = None,
    dry_run: bool = False,
    options: Options = None,
    **rules: Unpack[KeepRules],
) -> PrunePlan:
    """Apply :func:`plan_prune`'s policy to the backups in ``location`` (a folder or a store
    URL): the plan's ``remove`` are deleted, newest first, unless ``dry_run``. A deletion that
    fails stops the rest; the error says how many were deleted before it."""
    data = _core.prune_location(
        location, dict(rules), now=_when(now), tz=tz, dry_run=dry_run, options=option_pairs(options)
    )
    return _plan(data)


async def async_prune(
    location: str,
    *,
    now: dt.datetime | str | None = None,
    tz: str | None = None,
    dry_run: bool = False,
    options: Options = None,
    **rules: Unpack[KeepRules],
) -> PrunePlan:
    """:func:`prune` without blocking the event loop."""
    token = _core.CancelToken()
    future = _core.prune_location_async(
        location, dict(rules), now=_when(now), tz=tz, dry_run=dry_run,
        options=option_pairs(options), cancel=token,
    )
    return _plan(await await_cleanly(future, token))


__all__ = [
    "async_copy_backup",
    "async_prune",
    "async_verify_backup",
    "copy_backup",
    "plan_prune",
    "prune",
    "verify_backup",
]
