"""SyncedBackup.from_metadata: what an agent that keeps its upload metadata lists."""

from __future__ import annotations

from typing import Any

import habackup

FULL: habackup.BackupSyncMetadata = {
    "date": "2026-01-02T03:04:05+00:00",
    "slug": "5f6a7b8c",
    "size": 12345,
    "name": "Supervisor full",
    "homeassistant": "2026.1.3",
    "protected": True,
    "sha256": "ab" * 32,
    "database_included": False,
    "homeassistant_included": True,
    "addons": [
        {"name": "Mosquitto broker", "slug": "core_mosquitto", "version": "6.4.1"},
        {"name": None, "slug": "local_thing", "version": None},
    ],
    "folders": ["share", "addons/local"],
    "extra": {"instance_id": "abc", "with_automatic_settings": True},
}


def test_every_metadata_key_comes_back() -> None:
    synced = habackup.SyncedBackup.from_metadata(FULL, id="copy-5f6a7b8c")
    assert synced == habackup.SyncedBackup(
        id="copy-5f6a7b8c",
        slug="5f6a7b8c",
        name="Supervisor full",
        date="2026-01-02T03:04:05+00:00",
        size=12345,
        protected=True,
        sha256="ab" * 32,
        homeassistant_version="2026.1.3",
        database_included=False,
        homeassistant_included=True,
        addons=tuple(FULL["addons"]),
        folders=("share", "addons/local"),
        extra_metadata={"instance_id": "abc", "with_automatic_settings": True},
    )
    assert list(synced.addons) == FULL["addons"]
    # as_dict is JSON-ready: lists and plain dicts.
    data = synced.as_dict()
    assert data["addons"] == FULL["addons"]
    assert data["folders"] == ["share", "addons/local"]
    assert data["homeassistant_included"] is True


def test_metadata_stored_before_the_new_keys_still_lists() -> None:
    old: dict[str, Any] = {
        key: FULL[key]
        for key in ("date", "slug", "size", "name", "homeassistant", "protected", "sha256")
    }
    synced = habackup.SyncedBackup.from_metadata(old)
    assert synced.id == "5f6a7b8c"
    assert synced.addons == ()
    assert synced.folders == ()
    assert synced.homeassistant_included is True  # it names a Home Assistant version
    assert synced.database_included is True
    assert synced.extra_metadata == {}
    # A backup without Home Assistant in it names no version.
    without_core = habackup.SyncedBackup.from_metadata({**old, "homeassistant": ""})
    assert without_core.homeassistant_included is False
    assert without_core.homeassistant_version is None


def test_malformed_entries_are_left_out() -> None:
    odd = {
        **FULL,
        "addons": [{"name": "no slug"}, "core_ssh", {"slug": 7}, {"slug": "ok", "version": 2}],
        "folders": ["share", 3, None],
        "extra": ["not", "a", "mapping"],
    }
    synced = habackup.SyncedBackup.from_metadata(odd)
    assert list(synced.addons) == [{"name": None, "slug": "ok", "version": "2"}]
    assert synced.folders == ("share",)
    assert synced.extra_metadata == {}
    # Not a list at all.
    assert habackup.SyncedBackup.from_metadata({**FULL, "addons": "x"}).addons == ()
