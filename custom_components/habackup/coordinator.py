"""One location's state: what it holds (listed every 15 minutes and after each change), whether
it answers, what verification found; and the work done after backups land there (quick
verification, retention) and periodically (verifying everything it holds). Repair issues follow
the state: raised when the location stays unreachable or a stored backup fails verification,
removed when that is over."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from homeassistant.components.backup.const import DATA_MANAGER
from homeassistant.components.backup.manager import IdleEvent, ManagerStateEvent
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util import dt as dt_util

from habackup import (
    BackupAgentProbeError,
    BackupAgentUnreachableError,
    BackupError,
    BackupNotFound,
    ObjectStoreBackupSyncAgent,
    SyncedBackup,
)

from . import retention
from .const import (
    DOMAIN,
    ISSUE_UNREACHABLE,
    ISSUE_VERIFICATION_FAILED,
    LOGGER,
    OPT_VERIFY_AFTER_UPLOAD,
    OPT_VERIFY_DEEP,
    OPT_VERIFY_INTERVAL,
    SECTION_VERIFICATION,
    UNREACHABLE_ISSUE_AFTER,
    UPDATE_INTERVAL,
)
from .locations import Target, kind_of
from .options import section
from .verification import VerificationRecord, Verified, async_verify_backup


@dataclass(frozen=True)
class LocationState:
    """What the entities show."""

    reachable: bool
    error: str | None
    backups: tuple[SyncedBackup, ...]
    failed: tuple[Verified, ...] = ()
    last_verified: datetime | None = None

    @property
    def count(self) -> int:
        return len(self.backups)

    @property
    def size(self) -> int:
        return sum(backup.size for backup in self.backups)

    @property
    def newest(self) -> datetime | None:
        dates = [d for b in self.backups if (d := dt_util.parse_datetime(b.date)) is not None]
        return max(dates, default=None)

    @property
    def problem(self) -> bool:
        return not self.reachable or bool(self.failed)


@dataclass
class _Work:
    """Background work in flight or waiting."""

    landed: set[str] = field(default_factory=set)
    verifying_all: asyncio.Task[list[Verified]] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class HabackupCoordinator(DataUpdateCoordinator[LocationState]):
    """The state of one habackup location and the work done on it."""

    config_entry: HabackupConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HabackupConfigEntry,
        agent: ObjectStoreBackupSyncAgent,
        target: Target,
    ) -> None:
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title}",
            update_interval=UPDATE_INTERVAL,
        )
        self.agent = agent
        self.target = target
        self.verifications = VerificationRecord(hass, entry.entry_id)
        self._backups: tuple[SyncedBackup, ...] = ()
        self._failures = 0
        self._error: str | None = None
        self._work = _Work()
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def agent_id(self) -> str:
        """The location's agent id in Home Assistant's backup manager."""
        return f"{DOMAIN}.{self.config_entry.entry_id}"

    async def async_start(self) -> None:
        """Load the verification record and follow Home Assistant's backup manager."""
        await self.verifications.async_load()
        self._unsubscribe = _subscribe_manager_events(self.hass, self._on_manager_event)

    @callback
    def async_stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # --- state -------------------------------------------------------------------------------

    async def _async_update_data(self) -> LocationState:
        try:
            backups = await self.agent.async_list_backups()
        except BackupError as err:
            await self._listing_failed(err)
        else:
            self._listing_succeeded(backups)
            self._start_periodic_verification()
        self._update_issues()
        return self._state()

    def _state(self) -> LocationState:
        return LocationState(
            reachable=self._failures == 0,
            error=self._error,
            backups=self._backups,
            failed=tuple(self.verifications.failed()),
            last_verified=self.verifications.last_success,
        )

    @callback
    def _publish(self) -> None:
        """New verification results: entities and repair issues follow."""
        self._update_issues()
        self.async_set_updated_data(self._state())

    def _listing_succeeded(self, backups: list[SyncedBackup]) -> None:
        if self._failures:
            LOGGER.info("%s is reachable again", self.config_entry.title)
        self._failures = 0
        self._error = None
        self._backups = tuple(backups)
        self.verifications.keep_only({b.slug for b in backups})

    async def _listing_failed(self, err: BackupError) -> None:
        if not isinstance(err, BackupAgentUnreachableError):
            # An answer, not silence: credentials that stopped working need new ones.
            await self._raise_if_credentials_refused()
        if self._failures == 0:
            LOGGER.warning("%s cannot be listed: %s", self.config_entry.title, err)
        self._failures += 1
        self._error = str(err)

    async def _raise_if_credentials_refused(self) -> None:
        if not kind_of(self.config_entry.data).secrets:
            return  # a folder: nothing to ask the user for
        try:
            await self.agent.async_probe()
        except BackupAgentProbeError as err:
            # A changed SSH host key too: only the user can check the new one.
            if err.problem in ("invalid_auth", "permission_denied", "host_key"):
                raise ConfigEntryAuthFailed(
                    translation_domain=DOMAIN,
                    translation_key=err.problem,
                    translation_placeholders={"error": str(err)},
                ) from err

    def _update_issues(self) -> None:
        entry = self.config_entry
        unreachable_id = f"{ISSUE_UNREACHABLE}_{entry.entry_id}"
        if self._failures >= UNREACHABLE_ISSUE_AFTER:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                unreachable_id,
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=ISSUE_UNREACHABLE,
                translation_placeholders={"location": entry.title, "error": self._error or ""},
            )
        elif self._failures == 0:
            ir.async_delete_issue(self.hass, DOMAIN, unreachable_id)
        failed_id = f"{ISSUE_VERIFICATION_FAILED}_{entry.entry_id}"
        if failed := self.verifications.failed():
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                failed_id,
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=ISSUE_VERIFICATION_FAILED,
                translation_placeholders={
                    "location": entry.title,
                    "backups": ", ".join(f"{r.name} ({r.date[:10]})" for r in failed),
                    "problem": failed[0].problems[0],
                },
            )
        else:
            ir.async_delete_issue(self.hass, DOMAIN, failed_id)

    # --- after backups land ------------------------------------------------------------------

    @callback
    def async_backup_landed(self, backup_id: str) -> None:
        """A backup was uploaded here: verify it and apply retention once Home Assistant's
        backup manager is done (it may still be uploading to other locations)."""
        self._work.landed.add(backup_id)
        if isinstance(self.hass.data[DATA_MANAGER].last_event, IdleEvent):
            self._start_after_upload()

    @callback
    def _on_manager_event(self, event: ManagerStateEvent) -> None:
        if isinstance(event, IdleEvent) and self._work.landed:
            self._start_after_upload()

    @callback
    def _start_after_upload(self) -> None:
        landed, self._work.landed = self._work.landed, set()
        self.config_entry.async_create_background_task(
            self.hass, self.async_after_upload(landed), f"{DOMAIN} after upload {landed}"
        )

    async def async_after_upload(
        self, backup_ids: Iterable[str], *, verify: bool | None = None
    ) -> list[Verified]:
        """Quick verification of ``backup_ids`` (when the options ask for it, or ``verify``),
        then retention; returns the verification results."""
        if verify is None:
            verify = bool(section(self.config_entry, SECTION_VERIFICATION)[OPT_VERIFY_AFTER_UPLOAD])
        wanted = set(backup_ids)
        results: list[Verified] = []
        try:
            backups = await self.agent.async_list_backups()
            if verify:
                for backup in backups:
                    if backup.slug in wanted and (result := await self._verify_one(backup)):
                        results.append(result)
            if rules := retention.policy(self.config_entry.options):
                await retention.async_apply(self.hass, self.agent_id, backups, rules)
        except BackupError as err:
            LOGGER.warning("%s: after upload: %s", self.config_entry.title, err)
        await self.async_refresh()
        return results

    # --- verification ------------------------------------------------------------------------

    async def _verify_one(self, backup: SyncedBackup, *, deep: bool = False) -> Verified | None:
        """Verify and record one backup; None when it is gone or the location does not answer
        (no verdict on the backup)."""
        try:
            result = await async_verify_backup(self.hass, self.target, backup, deep=deep)
        except BackupNotFound:
            return None
        except BackupError as err:
            LOGGER.warning("%s: cannot verify %s: %s", self.config_entry.title, backup.slug, err)
            return None
        if not result.ok:
            LOGGER.warning(
                "%s: backup %s (%s) failed verification: %s",
                self.config_entry.title,
                backup.name,
                backup.slug,
                "; ".join(result.problems),
            )
        self.verifications.add(result)
        self._publish()
        return result

    async def async_verify(
        self, backup_ids: Iterable[str] | None = None, *, deep: bool = False
    ) -> list[Verified]:
        """Verify the backups named (all when None), one at a time; their results are recorded.
        Raises the location's error when it cannot be listed, ``BackupNotFound`` for an id it
        does not hold."""
        async with self._work.lock:
            backups = await self.agent.async_list_backups()
            if backup_ids is not None:
                wanted = list(backup_ids)
                by_id = {b.slug: b for b in backups}
                if missing := [i for i in wanted if i not in by_id]:
                    raise BackupNotFound(
                        f"{self.config_entry.title} holds no backup {', '.join(missing)}"
                    )
                backups = [by_id[i] for i in wanted]
            results = [r for b in backups if (r := await self._verify_one(b, deep=deep))]
            if backup_ids is None and len(results) == len(backups):
                self.verifications.full_run_done(dt_util.utcnow())
            return results

    def _start_periodic_verification(self) -> None:
        options = section(self.config_entry, SECTION_VERIFICATION)
        days = int(options[OPT_VERIFY_INTERVAL])
        last = self.verifications.last_full_run
        running = self._work.verifying_all is not None and not self._work.verifying_all.done()
        if days <= 0 or running:
            return
        if last is not None and dt_util.utcnow() - last < timedelta(days=days):
            return
        self._work.verifying_all = self.config_entry.async_create_background_task(
            self.hass,
            self._periodic_verification(deep=bool(options[OPT_VERIFY_DEEP])),
            f"{DOMAIN} verify {self.config_entry.title}",
        )

    async def _periodic_verification(self, *, deep: bool) -> list[Verified]:
        try:
            return await self.async_verify(deep=deep)
        except BackupError as err:
            LOGGER.warning("%s: periodic verification: %s", self.config_entry.title, err)
            return []


HabackupConfigEntry = ConfigEntry[HabackupCoordinator]


def _subscribe_manager_events(
    hass: HomeAssistant, on_event: Callable[[ManagerStateEvent], None]
) -> Callable[[], None]:
    """Home Assistant 2025.8+ has the method on its backup manager; 2025.4-2025.7 a helper."""
    manager: Any = hass.data[DATA_MANAGER]
    if hasattr(manager, "async_subscribe_events"):
        unsubscribe: Callable[[], None] = manager.async_subscribe_events(on_event)
        return unsubscribe
    from homeassistant.helpers.backup import (
        async_subscribe_events,
    )

    return async_subscribe_events(hass, on_event)
