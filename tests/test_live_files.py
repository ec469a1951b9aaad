"""Files that change while a backup reads them, and files it cannot read.

Home Assistant keeps writing while it backs itself up. A file that grows is stored at the size its
header announced (the size when opened), one that shrinks is padded with zeros, one that vanishes
between the directory walk and the read is skipped with a warning; the archive stays valid.

Determinism: the sync ``on_progress`` callback runs on the archive's producer thread, in the middle
of its read loop, so changing the file from inside the callback happens while the file is open and
half read. The big file is the first one read, so ``bytes_done`` is exactly the reader's offset in
it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import random
import select
import shutil
import signal
import socket
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import home_assistant_dir, inner_bytes

import habackup

# Compressible but not trivially so (4 bits of entropy a byte, no zero bytes): the reader is held
# back by compression long enough for the first progress callback (after 100 ms) to land mid-file.
_ALPHABET = bytes(65 + (b % 16) for b in range(256))
SIZES = (16 * 1024 * 1024, 64 * 1024 * 1024)
MARGIN = 3 * 1024 * 1024
NOBODY = 65534


def pattern(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size).translate(_ALPHABET)


def open_paths() -> set[str]:
    """Paths this process has open (Linux), to confirm the reader holds the file."""
    paths: set[str] = set()
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return paths
    for fd in fds:
        with contextlib.suppress(OSError):
            paths.add(os.readlink(f"/proc/self/fd/{fd}"))
    return paths


class MidRead:
    """Runs `action` once, from the progress callback, while the big file is half read."""

    def __init__(self, big: Path, action: Callable[[], None]) -> None:
        self.big = big
        self.size = big.stat().st_size
        self.action = action
        self.offset: int | None = None
        self.big_was_open = False

    def __call__(self, done: int, total: int) -> None:
        if self.offset is None and 0 < done < self.size - MARGIN:
            self.big_was_open = str(self.big) in open_paths() or not os.path.isdir("/proc/self")
            self.action()
            self.offset = done


def create_mid_read(
    make_config: Callable[[Path, int], tuple[Path, Path]],
    tmp_path: Path,
    action: Callable[[Path], Callable[[], None]],
) -> tuple[habackup.Backup, Path, bytes, MidRead]:
    """Makes a config dir (big file first), backs it up changing it mid-read; retried with a
    bigger file if the machine is fast enough to finish reading before the first callback."""
    for attempt, size in enumerate(SIZES):
        root = tmp_path / f"attempt{attempt}"
        root.mkdir()
        config, big = make_config(root, size)
        original = big.read_bytes()
        trigger = MidRead(big, action(config))
        backup = habackup.create_archive(
            config,
            root / "backup.tar",
            name="live",
            ha_version="2025.1.2",
            compresslevel=6,
            threads=1,
            on_progress=trigger,
        )
        if trigger.offset is not None:
            assert trigger.big_was_open, "the callback did not run while the file was open"
            return backup, config, original, trigger
        shutil.rmtree(root)
    pytest.fail("never caught the reader in the middle of the big file")


def stored_files(backup: habackup.Backup) -> dict[str, bytes]:
    """Every regular file in the inner tar, read in stream mode (as a restore would)."""
    assert backup.path is not None
    files = {}
    with tarfile.open(fileobj=io.BytesIO(inner_bytes(backup.path)), mode="r|gz") as inner:
        for info in inner:
            if info.isreg():
                fileobj = inner.extractfile(info)
                assert fileobj is not None
                data = fileobj.read()
                assert len(data) == info.size
                files[info.name[len("data/") :]] = data
    return files


def config_with_big_file(root: Path, size: int, *, middle: str | None = None) -> tuple[Path, Path]:
    # No .HA_VERSION (the version is given): the big file must be the first one read.
    config = root / "config"
    config.mkdir()
    big = config / "a_big.bin"
    big.write_bytes(pattern(size, seed=size))
    if middle == "file":
        (config / "b_gone.yaml").write_text("soon gone\n")
    elif middle == "directory":
        (config / "b_gone").mkdir()
        (config / "b_gone" / "one.yaml").write_text("1\n")
        (config / "b_gone" / "two").mkdir()
        (config / "b_gone" / "two" / "three.yaml").write_text("3\n")
    elif middle == "symlink":
        (config / "b_gone").symlink_to("c_after.yaml")
    (config / "c_after.yaml").write_text("after: true\n")
    return config, big


def assert_extracts(backup: habackup.Backup, tmp_path: Path) -> Path:
    assert backup.path is not None
    dest = tmp_path / "restored"
    habackup.extract_archive(backup.path, dest)
    assert (dest / "c_after.yaml").read_text() == "after: true\n"
    return dest


def test_file_that_grows_is_stored_at_its_size_when_opened(tmp_path: Path) -> None:
    def grow(config: Path) -> Callable[[], None]:
        def run() -> None:
            with open(config / "a_big.bin", "ab") as f:
                f.write(b"Z" * (1024 * 1024))

        return run

    backup, config, original, _ = create_mid_read(config_with_big_file, tmp_path, grow)
    assert (config / "a_big.bin").stat().st_size == len(original) + 1024 * 1024
    files = stored_files(backup)
    assert len(files["a_big.bin"]) == len(original)
    assert files["a_big.bin"] == original
    assert files["c_after.yaml"] == b"after: true\n"
    dest = assert_extracts(backup, tmp_path)
    assert (dest / "a_big.bin").read_bytes() == original


def test_file_that_shrinks_is_padded_with_zeros(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def shrink(config: Path) -> Callable[[], None]:
        return lambda: os.truncate(config / "a_big.bin", 0)

    with caplog.at_level(logging.WARNING, logger="habackup.archive"):
        backup, config, original, trigger = create_mid_read(config_with_big_file, tmp_path, shrink)
    assert trigger.offset is not None
    read = trigger.offset
    assert (config / "a_big.bin").stat().st_size == 0
    files = stored_files(backup)
    stored = files["a_big.bin"]
    assert len(stored) == len(original)
    assert stored[:read] == original[:read]
    assert stored[read:] == bytes(len(original) - read)
    assert files["c_after.yaml"] == b"after: true\n"
    big = str(config / "a_big.bin")
    warnings = [
        r
        for r in caplog.records
        if r.name == "habackup.archive" and r.levelno == logging.WARNING and big in r.getMessage()
    ]
    assert warnings, [r.getMessage() for r in caplog.records]
    dest = assert_extracts(backup, tmp_path)
    assert (dest / "a_big.bin").stat().st_size == len(original)


@pytest.mark.parametrize("kind", ["file", "directory", "symlink"])
def test_entry_that_vanishes_after_the_walk_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    def vanish(config: Path) -> Callable[[], None]:
        gone = config / ("b_gone.yaml" if kind == "file" else "b_gone")

        def run() -> None:
            if kind == "directory":
                shutil.rmtree(gone)
            else:
                gone.unlink()

        return run

    def make(root: Path, size: int) -> tuple[Path, Path]:
        return config_with_big_file(root, size, middle=kind)

    with caplog.at_level(logging.WARNING, logger="habackup.archive"):
        backup, config, original, _ = create_mid_read(make, tmp_path, vanish)
    gone = config / ("b_gone.yaml" if kind == "file" else "b_gone")
    assert not os.path.lexists(gone)
    assert backup.path is not None
    with tarfile.open(fileobj=io.BytesIO(inner_bytes(backup.path)), mode="r|gz") as inner:
        names = [info.name for info in inner]
    assert not [n for n in names if n.startswith("data/b_gone")], names
    assert names == ["data", "data/a_big.bin", "data/c_after.yaml"]
    messages = [
        r.getMessage()
        for r in caplog.records
        if r.name == "habackup.archive" and r.levelno == logging.WARNING
    ]
    assert any(str(gone) in m for m in messages), messages
    files = stored_files(backup)
    assert files["a_big.bin"] == original
    dest = assert_extracts(backup, tmp_path)
    assert sorted(p.name for p in dest.iterdir()) == ["a_big.bin", "c_after.yaml"]


# ---- unreadable files --------------------------------------------------------------------------


def unreadable_layout(base: Path) -> tuple[Path, Path, Path]:
    config = home_assistant_dir(base / "config")
    (config / "a.yaml").write_text("a: 1\n")
    (config / "a_data.bin").write_bytes(pattern(2 * 1024 * 1024, seed=1))
    secret = config / "b_secret.yaml"
    secret.write_text("token: hunter2\n")
    (config / "c.yaml").write_text("c: 1\n")
    out = base / "out"
    out.mkdir()
    for path in (base, config, out):
        path.chmod(0o777 if path == out else 0o755)
    for path in config.iterdir():
        path.chmod(0o644)
    secret.chmod(0o000)
    return config, secret, out


def try_create(config: Path, out: Path) -> dict[str, object]:
    report: dict[str, object] = {}
    try:
        habackup.create_archive(config, out, name="unreadable")
        report["outcome"] = "created"
    except habackup.ArchiveError as err:
        report.update(
            outcome="error",
            type=type(err).__name__,
            invalid=isinstance(err, habackup.InvalidBackupError),
            message=str(err),
            path=err.path,
        )
    report["left"] = sorted(os.listdir(out))
    return report


def try_create_as_nobody(config: Path, out: Path) -> dict[str, object]:
    """Root reads everything: fork, drop to nobody, report back through a pipe."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_end)
        report: dict[str, object] = {}
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            report = try_create(config, out)
        except BaseException as err:
            report = {"outcome": f"child failed: {err!r}"}
        finally:
            try:
                os.write(write_end, json.dumps(report).encode())
            finally:
                os._exit(0)
    os.close(write_end)
    chunks = []
    deadline = time.monotonic() + 60
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                pytest.fail("the unprivileged child did not finish in 60 s")
            ready, _, _ = select.select([read_end], [], [], left)
            if ready:
                chunk = os.read(read_end, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    result: dict[str, object] = json.loads(b"".join(chunks) or b"{}")
    return result


def test_unreadable_file_fails_the_backup_and_leaves_nothing() -> None:
    base = Path(tempfile.mkdtemp(prefix="habackup-unreadable-", dir="/tmp"))
    try:
        config, secret, out = unreadable_layout(base)
        if os.geteuid() == 0:
            report = try_create_as_nobody(config, out)
        else:
            try:
                secret.read_bytes()
            except PermissionError:
                pass
            else:
                pytest.skip("chmod 000 does not make a file unreadable for this user")
            report = try_create(config, out)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert report.get("outcome") == "error", report
    assert report["invalid"] is False, "an unreadable source is not an invalid backup"
    assert report["type"] == "ArchiveError", report
    assert str(secret) in str(report["message"]), report
    assert report["path"] == str(secret), report
    assert report["left"] == [], "partial output left behind"


# ---- entries that change type between the walk and the read -------------------------------


def replace_with(path: Path, kind: str, keep: list[object]) -> None:
    """Replaces whatever is at `path` by an entry of another type."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    if kind == "symlink-loop":
        path.symlink_to(path.name)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        keep.append(server)
    elif kind == "directory":
        path.mkdir()
        (path / "inside.yaml").write_text("x\n")
    elif kind == "file":
        path.write_text("now a file\n")
    elif kind == "symlink-out":
        # Its old children would be read through it: never.
        outside = path.parent.parent / "outside"
        outside.mkdir(exist_ok=True)
        (outside / "one.yaml").write_text("outside secret\n")
        (outside / "two").mkdir(exist_ok=True)
        (outside / "two" / "three.yaml").write_text("outside secret\n")
        path.symlink_to(outside)
    else:  # pragma: no cover - a typo in the cases below
        raise ValueError(kind)


TYPE_CHANGES = [
    ("file", "symlink-loop"),
    ("file", "fifo"),
    ("file", "socket"),
    ("file", "directory"),
    ("symlink", "file"),
    ("symlink", "fifo"),
    ("directory", "file"),
    ("directory", "symlink-out"),
]


@pytest.mark.parametrize(("was", "becomes"), TYPE_CHANGES)
def test_entry_that_changes_type_after_the_walk_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, was: str, becomes: str
) -> None:
    """Like a vanished entry, one replaced by another type (a symlink loop, a FIFO, a socket,
    a directory, a file) between the walk and its read is skipped with a warning."""
    keep: list[object] = []

    def change(config: Path) -> Callable[[], None]:
        gone = config / ("b_gone.yaml" if was == "file" else "b_gone")
        return lambda: replace_with(gone, becomes, keep)

    def make(root: Path, size: int) -> tuple[Path, Path]:
        return config_with_big_file(root, size, middle=was)

    with caplog.at_level(logging.WARNING, logger="habackup.archive"):
        backup, config, original, _ = create_mid_read(make, tmp_path, change)
    for held in keep:
        assert isinstance(held, socket.socket)
        held.close()
    assert backup.path is not None
    with tarfile.open(fileobj=io.BytesIO(inner_bytes(backup.path)), mode="r|gz") as inner:
        names = [info.name for info in inner]
    assert names == ["data", "data/a_big.bin", "data/c_after.yaml"], names
    gone = config / ("b_gone.yaml" if was == "file" else "b_gone")
    messages = [
        r.getMessage()
        for r in caplog.records
        if r.name == "habackup.archive" and r.levelno == logging.WARNING
    ]
    assert any(str(gone) in m and "skipped" in m for m in messages), messages
    assert stored_files(backup)["a_big.bin"] == original
    assert_extracts(backup, tmp_path)


def test_warnings_escape_names(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A name with a terminal escape and bytes that are not UTF-8 reaches the log escaped."""
    config = home_assistant_dir(tmp_path / "config")
    odd = os.fsencode(config) + b"/fifo\x1b[31m\xff"
    os.mkfifo(odd)
    with caplog.at_level(logging.WARNING, logger="habackup.archive"):
        habackup.create_archive(config, tmp_path / "b.tar", name="escaped")
    messages = [r.getMessage() for r in caplog.records if r.name == "habackup.archive"]
    assert any("fifo\\x1b[31m\\xff is a FIFO" in m for m in messages), messages
    assert not any("\x1b" in m or "\udcff" in m for m in messages), messages
