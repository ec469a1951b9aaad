"""Backups over time, against the real stores and local folders: verify where a backup is stored
(quick and deep), prune by calendar (restic's documented example), copy between locations."""

from __future__ import annotations

import asyncio
import hashlib
import random
import shutil
import time
from pathlib import Path

import pytest
from helpers import make_config_dir
from stores import MIB, Backend, file_backend, make_backend, s3_backend, webdav_backend

import habackup

PASSWORD = "correct horse"


def metadata_for(path: Path, **changes: object) -> habackup.BackupSyncMetadata:
    info = habackup.read_backup(path)
    metadata: habackup.BackupSyncMetadata = {
        "date": info.date,
        "slug": info.slug,
        "size": path.stat().st_size,
        "name": info.name,
        "homeassistant": info.homeassistant_version or "",
        "protected": info.protected,
        "sha256": "",
    }
    metadata.update(changes)  # type: ignore[typeddict-item]
    return metadata


@pytest.fixture(scope="module")
def protected_backup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("protected")
    config = make_config_dir(root / "config")
    (config / "media.bin").write_bytes(random.Random(3).randbytes(3 * MIB))
    backup = habackup.create_archive(config, root / "out", name="Locked", password=PASSWORD)
    assert backup.path is not None
    return backup.path


def location_of(backend: Backend) -> tuple[str, dict[str, str]]:
    return backend.url, backend.options


async def test_quick_verify_finds_a_flipped_byte(backend: Backend, small_backup: Path) -> None:
    url, options = location_of(backend)
    await backend.agent().async_upload_backup(path=small_backup)
    slug = habackup.read_backup(small_backup).slug
    good = await habackup.async_verify_backup(url, slug, options=options)
    assert good.ok, good.problems
    assert good.sha256 == hashlib.sha256(small_backup.read_bytes()).hexdigest()
    data = bytearray(backend.get(f"{slug}.tar"))
    data[len(data) - 3000] ^= 0x01
    backend.put(f"{slug}.tar", bytes(data))
    bad = await habackup.async_verify_backup(url, slug, options=options)
    assert not bad.ok
    assert any("sha256" in p for p in bad.problems), bad.problems
    with pytest.raises(habackup.BackupNotFound):
        await habackup.async_verify_backup(url, "deadbeef", options=options)


async def test_deep_verify_checks_the_password_and_every_mac(
    backend: Backend, protected_backup: Path, tmp_path: Path
) -> None:
    url, options = location_of(backend)
    await backend.agent().async_upload_backup(path=protected_backup)
    slug = habackup.read_backup(protected_backup).slug
    verify = habackup.async_verify_backup
    deep = await verify(url, slug, deep=True, password=PASSWORD, options=options)
    assert deep.ok, deep.problems
    assert deep.deep
    assert (deep.members or 0) > 3
    assert not deep.password_incorrect
    wrong = await verify(url, slug, deep=True, password="nope", options=options)
    assert not wrong.ok
    assert any("password" in p for p in wrong.problems), wrong.problems
    # The contents were not checked: the copy may be sound, under another password.
    assert wrong.password_incorrect
    # Tampered inside the encrypted member, with a sidecar that matches the tampered bytes: the
    # quick check passes, the MACs do not.
    data = bytearray(backend.get(f"{slug}.tar"))
    data[len(data) // 2] ^= 0x40
    tampered = tmp_path / "tampered.tar"
    tampered.write_bytes(bytes(data))
    agent = backend.agent()
    await agent.async_upload_backup(
        path=tampered,
        metadata=metadata_for(protected_backup, sha256=hashlib.sha256(data).hexdigest()),
    )
    quick = await habackup.async_verify_backup(url, slug, options=options)
    assert quick.ok, quick.problems
    deep = await verify(url, slug, deep=True, password=PASSWORD, options=options)
    assert not deep.ok
    assert deep.problems
    assert not deep.password_incorrect


def test_verify_in_a_folder(small_backup: Path, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    # Home Assistant names its files as it likes: the folder is read by backup.json.
    shutil.copy(small_backup, folder / "Automatic_backup_2025.4.4_2025-04-30_04.45.tar")
    slug = habackup.read_backup(small_backup).slug
    result = habackup.verify_backup(str(folder), slug, deep=True)
    assert result.ok, result.problems
    assert result.deep
    assert result.sha256 == hashlib.sha256(small_backup.read_bytes()).hexdigest()


# restic's documentation: one backup every Sunday for 12 weeks, `forget --keep-daily 4`.
SUNDAYS = [
    ("0a1f9759", "2019-09-01T11:00:00+00:00"),
    ("46cfe4d5", "2019-09-08T11:00:00+00:00"),
    ("f6b1f037", "2019-09-15T11:00:00+00:00"),
    ("eb430a5d", "2019-09-22T11:00:00+00:00"),
    ("8cf1cb9a", "2019-09-29T11:00:00+00:00"),
    ("5d33b116", "2019-10-06T11:00:00+00:00"),
    ("b9553125", "2019-10-13T11:00:00+00:00"),
    ("e1a7b58b", "2019-10-20T11:00:00+00:00"),
    ("8f8018c0", "2019-10-27T11:00:00+00:00"),
    ("59403279", "2019-11-03T11:00:00+00:00"),
    ("dfee9fb4", "2019-11-10T11:00:00+00:00"),
    ("e1ae2f40", "2019-11-17T11:00:00+00:00"),
]


def test_plan_prune_reproduces_restics_example() -> None:
    plan = habackup.plan_prune(SUNDAYS, keep_daily=4, tz="UTC", now="2020-01-01T00:00:00+00:00")
    assert [k.slug for k in plan.keep] == ["e1ae2f40", "dfee9fb4", "59403279", "8f8018c0"]
    assert {r.slug for r in plan.remove} == {s for s, _ in SUNDAYS[:8]}
    assert plan.as_dict()["keep"][1] == {
        "slug": "dfee9fb4", "date": "2019-11-10T11:00:00+00:00", "reasons": ["daily"],
    }
    with pytest.raises(ValueError, match="at least one keep rule"):
        habackup.plan_prune(SUNDAYS)
    with pytest.raises(ValueError, match="duration"):
        habackup.plan_prune(SUNDAYS, keep_within="1w")


async def test_prune_on_a_store_and_dry_run(backend: Backend, small_backup: Path) -> None:
    url, options = location_of(backend)
    agent = backend.agent()
    for slug, date in SUNDAYS:
        await agent.async_upload_backup(
            path=small_backup, metadata=metadata_for(small_backup, slug=slug, date=date)
        )
    dry = await habackup.async_prune(url, keep_daily=4, tz="UTC", dry_run=True, options=options)
    assert len(dry.remove) == 8
    assert len(await agent.async_list_backups()) == 12
    done = await habackup.async_prune(url, keep_daily=4, tz="UTC", options=options)
    assert [r.slug for r in done.remove] == [r.slug for r in dry.remove]
    left = sorted(b.slug for b in await agent.async_list_backups())
    assert left == sorted(["e1ae2f40", "dfee9fb4", "59403279", "8f8018c0"])


async def test_copy_between_different_stores(
    s3_server: object, webdav_server: object, big_backup: Path, tmp_path: Path
) -> None:
    s3 = s3_backend(s3_server, f"copy{random.getrandbits(32):x}")
    dav = webdav_backend(webdav_server, f"copy{random.getrandbits(32):x}")
    await s3.agent().async_upload_backup(path=big_backup)
    slug = habackup.read_backup(big_backup).slug
    progress: list[tuple[int, int]] = []
    await habackup.async_copy_backup(
        s3.url, slug, dav.url, options=s3.options, dest_options=dav.options,
        on_progress=lambda d, t: progress.append((d, t)),
    )
    [listed] = await dav.agent().async_list_backups()
    assert listed.sha256 == hashlib.sha256(big_backup.read_bytes()).hexdigest()
    assert progress
    assert progress[-1][0] == big_backup.stat().st_size
    # Again: the same bytes are there, nothing is sent.
    again: list[tuple[int, int]] = []
    await habackup.async_copy_backup(
        s3.url, slug, dav.url, options=s3.options, dest_options=dav.options,
        on_progress=lambda d, t: again.append((d, t)),
    )
    assert again == []
    # Store to folder and folder to store.
    folder = tmp_path / "folder"
    habackup.copy_backup(dav.url, slug, str(folder), options=dav.options)
    assert (folder / f"{slug}.tar").read_bytes() == big_backup.read_bytes()
    other = file_backend(tmp_path / "other")
    habackup.copy_backup(str(folder), slug, other.url)
    assert f"{slug}.tar" in other.names()


async def test_a_copy_from_a_slow_source_shows_progress_as_parts_land(
    s3_server: object, big_backup: Path, tmp_path: Path
) -> None:
    """The destination counts each part it has stored while the source is still sending, not
    all of them at the end: a copy out of a throttled download (40 MiB at 8 MiB/s, 8 MiB parts)
    used to sit at 0 for its whole length."""
    s3 = s3_backend(s3_server, f"slow{random.getrandbits(32):x}")
    dest = file_backend(tmp_path / "dest")
    await s3.agent().async_upload_backup(path=big_backup)
    slug = habackup.read_backup(big_backup).slug
    size = big_backup.stat().st_size
    steps: list[tuple[float, int]] = []
    started = time.monotonic()
    await habackup.async_copy_backup(
        s3.url, slug, dest.url, options={**s3.options, "limit_download": "8MiB"},
        on_progress=lambda done, total: steps.append((time.monotonic() - started, done)),
    )
    took = time.monotonic() - started
    done = [d for _, d in steps]
    assert done == sorted(done)
    assert done[-1] == size
    first = next(t for t, d in steps if d > 0)
    assert first < took / 2, steps
    assert len({d for d in done if 0 < d < size}) >= 3, steps


async def test_an_interrupted_copy_leaves_nothing_listed(
    s3_server: object, big_backup: Path, tmp_path: Path
) -> None:
    s3 = s3_backend(s3_server, f"cut{random.getrandbits(32):x}")
    dest = file_backend(tmp_path / "dest")
    await s3.agent().async_upload_backup(path=big_backup)
    slug = habackup.read_backup(big_backup).slug
    seen = asyncio.Event()

    def progress(done: int, total: int) -> None:
        if done > 0:
            seen.set()

    task = asyncio.create_task(
        habackup.async_copy_backup(
            s3.url, slug, dest.url, options={**s3.options, "limit_download": "8MiB"},
            on_progress=progress,
        )
    )
    await asyncio.wait_for(seen.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await dest.agent().async_list_backups() == []
    assert not [n for n in dest.names() if n.endswith(".metadata.json")]


@pytest.mark.parametrize(("source", "dest"), [("sftp", "smb"), ("smb", "sftp")])
async def test_copy_between_network_stores(
    source: str, dest: str, protected_backup: Path, tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """SFTP and SMB as any other location: a folder copied up, copied across with progress
    (checked on the way), nothing sent the second time, the copy verified deep where it is."""
    src = make_backend(source, request, tmp_path)
    dst = make_backend(dest, request, tmp_path)
    folder = tmp_path / "folder"
    folder.mkdir()
    shutil.copy(protected_backup, folder / "Automatic_backup.tar")
    slug = habackup.read_backup(protected_backup).slug
    digest = hashlib.sha256(protected_backup.read_bytes()).hexdigest()
    up = await habackup.async_copy_backup(str(folder), slug, src.url, dest_options=src.options)
    assert (up.sent, up.sha256) == (True, digest)
    progress: list[tuple[int, int]] = []
    across = await habackup.async_copy_backup(
        src.url, slug, dst.url, options=src.options, dest_options=dst.options,
        on_progress=lambda d, t: progress.append((d, t)),
    )
    assert (across.sent, across.sha256) == (True, digest)
    assert progress[-1] == (protected_backup.stat().st_size,) * 2
    assert dst.get(f"{slug}.tar") == protected_backup.read_bytes()
    again = await habackup.async_copy_backup(
        src.url, slug, dst.url, options=src.options, dest_options=dst.options
    )
    assert not again.sent
    deep = await habackup.async_verify_backup(
        dst.url, slug, deep=True, password=PASSWORD, options=dst.options
    )
    assert deep.ok, deep.problems
    assert deep.sha256 == digest
    # A flipped byte at the destination is found by the quick check.
    data = bytearray(dst.get(f"{slug}.tar"))
    data[100] ^= 0x01
    dst.put(f"{slug}.tar", bytes(data))
    quick = await habackup.async_verify_backup(dst.url, slug, options=dst.options)
    assert not quick.ok
    assert any("sha256" in p for p in quick.problems), quick.problems


@pytest.mark.parametrize("key", ["limit_upload", "limit_download"])
@pytest.mark.parametrize(
    ("value", "why"),
    [("fast", "fast"), ("-1MiB", "-1MiB"), ("100", "below 1 KiB/s"), ("2 parsecs", "parsecs")],
)
def test_a_bad_bandwidth_limit_is_refused(key: str, value: str, why: str, tmp_path: Path) -> None:
    with pytest.raises(habackup.errors.BackupAgentConfigError) as caught:
        habackup.ObjectStoreBackupSyncAgent("x", f"file://{tmp_path}", options={key: value})
    assert key in str(caught.value)
    assert why in str(caught.value)
    with pytest.raises(habackup.errors.BackupAgentConfigError, match=key):
        habackup.verify_backup(f"file://{tmp_path}", "deadbeef", options={key: value})


async def test_bandwidth_limits_on_a_real_transfer(
    backend: Backend, protected_backup: Path, tmp_path: Path
) -> None:
    """Both limits on every store: the bytes arrive whole, progress comes in small steps, and
    the transfer is held back (a floor, not a speed: a slow machine only makes it longer). How
    close the rate stays to the limit is benches/trust_stores.py's to measure."""
    size = protected_backup.stat().st_size
    limits = {"limit_upload": "1MiB", "limit_download": "1MiB/s"}
    agent = backend.agent(**limits)
    steps: list[int] = []
    started = time.monotonic()
    await agent.async_upload_backup(
        path=protected_backup, on_progress=lambda done, total: steps.append(done)
    )
    # 3 MiB at 1 MiB/s, less the quarter second of burst a quiet agent may send at once.
    assert time.monotonic() - started > size / MIB - 0.5
    assert steps[-1] == size
    assert len(steps) > size // MIB  # at least one a second
    slug = habackup.read_backup(protected_backup).slug
    assert backend.get(f"{slug}.tar") == protected_backup.read_bytes()
    steps.clear()
    started = time.monotonic()
    await agent.async_download_backup(
        id=slug, path=tmp_path / "back.tar", on_progress=lambda done, total: steps.append(done)
    )
    assert time.monotonic() - started > size / MIB - 0.5
    assert steps[-1] == size
    assert len(steps) > size // MIB  # at least one a second
    assert (tmp_path / "back.tar").read_bytes() == protected_backup.read_bytes()
    unlimited = await habackup.async_verify_backup(backend.url, slug, options=backend.options)
    assert unlimited.ok, unlimited.problems
def test_folder_deep_verify_tells_a_wrong_password_apart(
    protected_backup: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    shutil.copy(protected_backup, folder / "locked.tar")
    slug = habackup.read_backup(protected_backup).slug
    wrong = habackup.verify_backup(str(folder), slug, deep=True, password="nope")
    assert not wrong.ok
    assert wrong.password_incorrect
    right = habackup.verify_backup(str(folder), slug, deep=True, password=PASSWORD)
    assert right.ok, right.problems
    assert not right.password_incorrect
