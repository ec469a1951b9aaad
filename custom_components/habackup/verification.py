"""Verification of the backups a location holds, where they are stored, and its record.

Quick: the stored bytes streamed through sha256 against the size and digest recorded at upload,
and backup.json parsed. Deep: every byte decoded too; an encrypted backup with Home Assistant's
backup encryption key (from its backup settings), which goes to the engine and nowhere else.
Results are kept in ``.storage`` so the problem sensor and repair issue survive a restart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from homeassistant.components.backup.const import DATA_MANAGER
from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

import habackup
from habackup import SyncedBackup

from .const import DOMAIN
from .locations import Target

STORAGE_VERSION = 1
SAVE_DELAY = 1.0
NO_KEY = (
    "encrypted, and Home Assistant has no backup encryption key: only the stored bytes were checked"
)
OTHER_KEY = (
    "encrypted with a password other than Home Assistant's backup encryption key: only the "
    "stored bytes were checked"
)


@dataclass
class Verified:
    """The last verification of one stored backup."""

    backup_id: str
    name: str
    date: str
    ok: bool
    deep: bool
    at: str
    size: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def encryption_key(hass: HomeAssistant) -> str | None:
    """Home Assistant's backup encryption key (the one its automatic backups use), if set."""
    manager = hass.data.get(DATA_MANAGER)
    if manager is None:
        return None
    password: str | None = manager.config.data.create_backup.password
    return password


async def async_verify_backup(
    hass: HomeAssistant, target: Target, backup: SyncedBackup, *, deep: bool
) -> Verified:
    """Verify one backup where it is stored; a damaged backup is a result, not an exception
    (``BackupNotFound`` and store errors are raised)."""
    key = encryption_key(hass) if deep and backup.protected else None
    decode = deep and (not backup.protected or key is not None)
    result = await habackup.async_verify_backup(
        target.url, backup.slug, deep=decode, password=key, options=target.options
    )
    problems = list(result.problems)
    warnings = list(result.warnings)
    if deep and backup.protected and key is None:
        warnings.append(NO_KEY)
    if result.password_incorrect:
        # The decode stopped at the password, whose problem the engine lists last: the copy
        # may be sound under another password, so this is no failure of the location.
        problems = problems[:-1]
        warnings.append(OTHER_KEY)
    return Verified(
        backup_id=backup.slug,
        name=backup.name,
        date=backup.date,
        ok=not problems,
        deep=decode and not result.password_incorrect,
        at=dt_util.utcnow().isoformat(),
        size=result.size,
        problems=problems,
        warnings=warnings,
    )


class VerificationRecord:
    """The latest result per stored backup, when all of them were last verified, and when a
    verification last succeeded; kept in ``.storage/habackup.<entry id>``."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        self._store: Store[dict[str, Any]] = Store(hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}")
        self.results: dict[str, Verified] = {}
        self.last_full_run: datetime | None = None
        self.last_success: datetime | None = None

    async def async_load(self) -> None:
        stored = await self._store.async_load() or {}
        self.results = {slug: Verified(**data) for slug, data in stored.get("results", {}).items()}
        self.last_full_run = _parse(stored.get("last_full_run"))
        self.last_success = _parse(stored.get("last_success"))

    async def async_remove(self) -> None:
        await self._store.async_remove()

    def add(self, result: Verified) -> None:
        self.results[result.backup_id] = result
        if result.ok:
            self.last_success = dt_util.parse_datetime(result.at)
        self._save()

    def full_run_done(self, when: datetime) -> None:
        self.last_full_run = when
        self._save()

    def keep_only(self, slugs: set[str]) -> None:
        """Forget backups no longer stored (deleted, pruned): their results no longer count."""
        gone = set(self.results) - slugs
        for slug in gone:
            del self.results[slug]
        if gone:
            self._save()

    def failed(self) -> list[Verified]:
        return [result for result in self.results.values() if not result.ok]

    def _save(self) -> None:
        self._store.async_delay_save(self._data, SAVE_DELAY)

    def _data(self) -> dict[str, Any]:
        return {
            "results": {slug: r.as_dict() for slug, r in self.results.items()},
            "last_full_run": self.last_full_run.isoformat() if self.last_full_run else None,
            "last_success": self.last_success.isoformat() if self.last_success else None,
        }


def _parse(value: Any) -> datetime | None:
    return dt_util.parse_datetime(value) if isinstance(value, str) else None
