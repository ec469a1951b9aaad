"""Backups over time, on a folder or a store URL alike: verify where they are stored, copy
between locations, prune by calendar. The work is the engine's (``store::Location``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, Protocol

from . import _core
from ._cancel import await_cleanly
from .models import KeptBackup, PrunedBackup, PrunePlan, VerifyResult
from .object_store import OptionValue, option_pairs

Options = Mapping[str, OptionValue] | None
Keep = int | Literal["unlimited"] | None
ProgressCallback = Callable[[int, int], None]


class _Dated(Protocol):
    @property
    def slug(self) -> str: ...
    @property
    def date(self) -> str: ...


def _result(data: Mapping[str, Any]) -> VerifyResult:
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
) -> VerifyResult:
    """Verify backup ``slug`` where it is stored: a folder or a store URL.

    Quick (default): the stored bytes are streamed through sha256 and compared with the size and
    digest recorded beside them (nothing is written to disk), and its backup.json must parse.
    ``deep=True`` also decodes everything (for a protected backup the ``password`` first, then
    every MAC and the FINAL tag; the gzip CRC and the tar structure). A damaged backup is a
    result with ``problems``, not an exception; a missing one raises ``BackupNotFound``.
    """
    data = _core.verify_backup(
        location, slug, deep=deep, password=password, options=option_pairs(options)
    )
    return _result(data)


async def async_verify_backup(
    location: str,
    slug: str,
    *,
    deep: bool = False,
    password: str | None = None,
    options: Options = None,
) -> VerifyResult:
    """:func:`verify_backup` without blocking the event loop."""
    token = _core.CancelToken()
    future = _core.verify_backup_async(
        location, slug, deep=deep, password=password, options=option_pairs(options),
        cancel=token,
    )
    return _result(await await_cleanly(future, token))


def copy_backup(
    source: str,
    slug: str,
    dest: str,
    *,
    options: Options = None,
    dest_options: Options = None,
    on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Copy backup ``slug`` from ``source`` to ``dest`` (folders or store URLs), streamed with no
    temp file and checked on the way (size and sha256); the destination's metadata is written
    last, so an interrupted copy leaves nothing listed there. A copy already there with the same
    sha256 is left alone and nothing is sent. Returns the metadata of the copy."""
    return _core.copy_backup(
        source, slug, dest, options=option_pairs(options),
        dest_options=option_pairs(dest_options), on_progress=on_progress,
    )


async def async_copy_backup(
    source: str,
    slug: str,
    dest: str,
    *,
    options: Options = None,
    dest_options: Options = None,
    on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """:func:`copy_backup` without blocking the event loop (``on_progress`` on its thread)."""
    token = _core.CancelToken()
    future = _core.copy_backup_async(
        source, slug, dest, options=option_pairs(options),
        dest_options=option_pairs(dest_options), on_progress=on_progress, cancel=token,
    )
    result: dict[str, Any] = await await_cleanly(future, token)
    return result


def _rules(
    keep_last: Keep,
    keep_hourly: Keep,
    keep_daily: Keep,
    keep_weekly: Keep,
    keep_monthly: Keep,
    keep_yearly: Keep,
    keep_within: str | None,
) -> dict[str, Any]:
    return {
        "keep_last": keep_last,
        "keep_hourly": keep_hourly,
        "keep_daily": keep_daily,
        "keep_weekly": keep_weekly,
        "keep_monthly": keep_monthly,
        "keep_yearly": keep_yearly,
        "keep_within": keep_within,
    }


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
    keep_last: Keep = None,
    keep_hourly: Keep = None,
    keep_daily: Keep = None,
    keep_weekly: Keep = None,
    keep_monthly: Keep = None,
    keep_yearly: Keep = None,
    keep_within: str | None = None,
    now: dt.datetime | str | None = None,
    tz: str | None = None,
) -> PrunePlan:
    """Which of ``backups`` (anything with ``slug`` and ``date``, or ``(slug, date)`` pairs) a
    retention policy keeps, with the rules that keep each, and which it removes.

    restic's ``forget`` semantics: ``keep_last`` the newest n; ``keep_hourly`` ... ``keep_yearly``
    the newest backup of each of the n newest hours, days, ISO weeks, months or years that hold
    one, in time zone ``tz`` (an IANA name; default this machine's); ``keep_within`` every backup
    within a span (``"2y5m7d3h"``) of the newest. ``"unlimited"`` keeps every bucket. A backup
    kept by any rule is kept; a calendar rule that finds fewer buckets than it may keep also keeps
    the oldest backup; the newest backup, backups dated in the future and undated ones are never
    removed. At least one rule is required (``ValueError``). Nothing is touched.
    """
    pairs = [b if isinstance(b, tuple) else (b.slug, b.date) for b in backups]
    rules = _rules(
        keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within
    )
    return _plan(_core.plan_prune(pairs, rules, now=_when(now), tz=tz))


def prune(
    location: str,
    *,
    keep_last: Keep = None,
    keep_hourly: Keep = None,
    keep_daily: Keep = None,
    keep_weekly: Keep = None,
    keep_monthly: Keep = None,
    keep_yearly: Keep = None,
    keep_within: str | None = None,
    now: dt.datetime | str | None = None,
    tz: str | None = None,
    dry_run: bool = False,
    options: Options = None,
) -> PrunePlan:
    """Apply :func:`plan_prune`'s policy to the backups in ``location`` (a folder or a store
    URL): the plan's ``remove`` are deleted, unless ``dry_run``."""
    rules = _rules(
        keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within
    )
    data = _core.prune_location(
        location, rules, now=_when(now), tz=tz, dry_run=dry_run, options=option_pairs(options)
    )
    return _plan(data)


async def async_prune(
    location: str,
    *,
    keep_last: Keep = None,
    keep_hourly: Keep = None,
    keep_daily: Keep = None,
    keep_weekly: Keep = None,
    keep_monthly: Keep = None,
    keep_yearly: Keep = None,
    keep_within: str | None = None,
    now: dt.datetime | str | None = None,
    tz: str | None = None,
    dry_run: bool = False,
    options: Options = None,
) -> PrunePlan:
    """:func:`prune` without blocking the event loop."""
    rules = _rules(
        keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within
    )
    token = _core.CancelToken()
    future = _core.prune_location_async(
        location, rules, now=_when(now), tz=tz, dry_run=dry_run,
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
