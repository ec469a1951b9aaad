"""create -> extract gives back the same tree: content, modes, mtimes, links, empty dirs, names."""

from __future__ import annotations

import hashlib
import json
import os
import random
import tarfile
from pathlib import Path

import pytest
from helpers import home_assistant_dir, temp_leftovers

import habackup

MTIME = 1_700_000_000


def make_tree(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "configuration.yaml").write_text("homeassistant:\n  name: Home\n")
    (root / "sub" / "deeper" / "data.bin").write_bytes(os.urandom(300_000))
    (root / "script.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "script.sh").chmod(0o755)
    (root / "private.yaml").write_text("secret: 1\n")
    (root / "private.yaml").chmod(0o600)
    (root / "données").mkdir()
    (root / "données" / "été ☀.yaml").write_text("sun: yes\n")
    long_dir = root / ("d" * 60) / ("e" * 60)
    long_dir.mkdir(parents=True)
    (long_dir / ("f" * 80 + ".txt")).write_text("long name\n")
    (root / "link_to_config").symlink_to("configuration.yaml")
    (root / "sub" / "dangling").symlink_to("../nowhere")
    (root / "empty_file").write_bytes(b"")
    (root / "exact_block").write_bytes(b"x" * 512)
    for path in sorted(root.rglob("*"), reverse=True):
        if not path.is_symlink():
            os.utime(path, (MTIME, MTIME))


def snapshot(root: Path) -> dict[str, tuple[str, int, int, str]]:
    """Relative path -> (kind, mode, mtime, content digest or link target)."""
    result = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        st = path.lstat()
        if path.is_symlink():
            result[rel] = ("link", 0, 0, os.readlink(path))
        elif path.is_dir():
            result[rel] = ("dir", st.st_mode & 0o777, int(st.st_mtime), "")
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            result[rel] = ("file", st.st_mode & 0o777, int(st.st_mtime), digest)
    return result


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = home_assistant_dir(tmp_path / "config")
    make_tree(root)
    return root


def test_round_trip_is_exact(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    backup = habackup.create_archive(tree, out, name="Round trip")
    assert backup.path == out / f"{backup.slug}.tar"
    dest = tmp_path / "restored"
    counts = habackup.extract_archive(backup.path, dest)
    assert snapshot(dest) == snapshot(tree)
    assert counts["symlinks"] == 2
    assert counts["files"] == sum(1 for p in tree.rglob("*") if p.is_file() and not p.is_symlink())


def test_backup_metadata(tree: Path, tmp_path: Path) -> None:
    backup = habackup.create_archive(
        tree, tmp_path / "named.tar", name="Meta", ha_version="2025.1.0", extra={"k": [1, 2]}
    )
    assert backup.path == tmp_path / "named.tar"
    assert backup.size == backup.path.stat().st_size
    assert backup.sha256 == hashlib.sha256(backup.path.read_bytes()).hexdigest()
    assert backup.homeassistant_version == "2025.1.0"
    assert backup.database_included is True
    assert backup.protected is False
    expected_slug = hashlib.sha1(f"{backup.date} - Meta".lower().encode()).hexdigest()[:8]
    assert backup.slug == expected_slug
    with tarfile.open(backup.path) as outer:
        member = outer.extractfile("./backup.json")
        assert member is not None
        meta = json.loads(member.read())
    assert meta["extra"]["k"] == [1, 2]
    assert meta["extra"]["with_automatic_settings"] is False
    read = habackup.read_backup(backup.path)
    assert read.slug == backup.slug
    assert read.date == backup.date
    assert read.size == backup.size
    assert read.sha256 is None


def test_instance_id_and_version_come_from_the_config_dir(tree: Path, tmp_path: Path) -> None:
    (tree / ".storage").mkdir()
    (tree / ".storage" / "core.uuid").write_text(json.dumps({"data": {"uuid": "abc123"}}))
    (tree / ".HA_VERSION").write_text("2024.12.5\n")
    backup = habackup.create_archive(tree, tmp_path / "b.tar", name="x")
    with tarfile.open(backup.path) as outer:
        member = outer.extractfile("./backup.json")
        assert member is not None
        meta = json.loads(member.read())
    assert meta["extra"]["instance_id"] == "abc123"
    assert meta["homeassistant"]["version"] == "2024.12.5"
    assert backup.homeassistant_version == "2024.12.5"


def test_backup_value_semantics(tree: Path, tmp_path: Path) -> None:
    backup = habackup.create_archive(tree, tmp_path / "b.tar", name="x")
    same = habackup.Backup(**{k: v for k, v in backup.as_dict().items()})
    assert same == backup
    assert hash(same) == hash(backup)
    assert json.loads(json.dumps(backup.as_dict()))["slug"] == backup.slug
    assert "slug='" in repr(backup) or 'slug="' in repr(backup)
    with pytest.raises(AttributeError):
        backup.slug = "other"  # type: ignore[misc]


def test_an_existing_file_is_never_replaced(tree: Path, tmp_path: Path) -> None:
    target = tmp_path / "b.tar"
    target.write_bytes(b"an earlier backup")
    with pytest.raises(habackup.ArchiveError, match="already exists") as raised:
        habackup.create_archive(tree, target, name="x")
    assert raised.value.path == str(target)
    assert target.read_bytes() == b"an earlier backup"
    assert temp_leftovers(tmp_path) == []


def test_a_path_ending_in_a_slash_is_a_directory_made_for_the_backup(
    tree: Path, tmp_path: Path
) -> None:
    backup = habackup.create_archive(tree, f"{tmp_path}/new/dir/", name="x")
    assert backup.path == tmp_path / "new" / "dir" / f"{backup.slug}.tar"
    # Without the slash it names the file itself, which needs its directory.
    named = habackup.create_archive(tree, tmp_path / "new" / "named", name="y")
    assert named.path == tmp_path / "new" / "named"
    with pytest.raises(habackup.ArchiveError, match="is not a directory"):
        habackup.create_archive(tree, tmp_path / "absent" / "b.tar", name="z")
    # A failed backup takes the directory made for it away again.
    with pytest.raises(habackup.ArchiveError, match="compresslevel"):
        habackup.create_archive(tree, f"{tmp_path}/never/", name="x", compresslevel=10)
    (tmp_path / "x.yaml").write_text("not a dir")
    with pytest.raises(habackup.ArchiveError, match="not a directory"):
        habackup.create_archive(tmp_path / "x.yaml", f"{tmp_path}/never/", name="x")
    assert not (tmp_path / "never").exists()
    assert not (tmp_path / "absent").exists()


@pytest.mark.parametrize("level", [0, 1, 9])
def test_compresslevel_and_threads(tree: Path, tmp_path: Path, level: int) -> None:
    backup = habackup.create_archive(
        tree, tmp_path / "b.tar", name="x", compresslevel=level, threads=1
    )
    dest = tmp_path / "restored"
    habackup.extract_archive(backup.path, dest)
    assert snapshot(dest) == snapshot(tree)


def test_bad_arguments_raise_archive_errors(tree: Path, tmp_path: Path) -> None:
    with pytest.raises(habackup.ArchiveError, match="compresslevel"):
        habackup.create_archive(tree, tmp_path / "b.tar", name="x", compresslevel=10)
    with pytest.raises(habackup.ArchiveError, match="threads"):
        habackup.create_archive(tree, tmp_path / "b.tar", name="x", threads=0)
    with pytest.raises(habackup.ArchiveError, match="extra"):
        habackup.create_archive(tree, tmp_path / "b.tar", name="x", extra={"x": object()})
    missing = tmp_path / "missing"
    with pytest.raises(habackup.ArchiveError) as info:
        habackup.create_archive(missing, tmp_path / "b.tar", name="x")
    assert info.value.path == str(missing)
    assert not (tmp_path / "b.tar").exists()
    with pytest.raises(habackup.ArchiveError):
        habackup.create_archive(tree, tmp_path / "no" / "such" / "dir" / "b.tar", name="x")


def test_extract_refuses_non_empty_destination(tree: Path, tmp_path: Path) -> None:
    backup = habackup.create_archive(tree, tmp_path / "b.tar", name="x")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(habackup.ArchiveError, match="not empty"):
        habackup.extract_archive(backup.path, dest)
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]
    empty = tmp_path / "empty_dest"
    empty.mkdir()
    habackup.extract_archive(backup.path, empty)
    assert (empty / "configuration.yaml").exists()


def test_errors_carry_codes(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(habackup.InvalidBackupError) as info:
        habackup.read_backup(junk)
    assert info.value.error_code == "invalid_backup"
    assert str(junk) in str(info.value)
    assert isinstance(info.value, habackup.BackupError)


def assert_plain(message: str) -> None:
    """No temp file, no errno text: what a user can act on."""
    assert ".partial" not in message, message
    assert "os error" not in message, message
    assert "Errno" not in message, message


def test_errors_name_the_users_paths(tree: Path, tmp_path: Path) -> None:
    backup = habackup.create_archive(tree, tmp_path / "b.tar", name="x")
    assert backup.path is not None

    dest = tmp_path / "no" / "such" / "parent" / "dest"
    with pytest.raises(habackup.ArchiveError) as info:
        habackup.extract_archive(backup.path, dest)
    assert not isinstance(info.value, habackup.InvalidBackupError)
    assert info.value.path == str(dest)
    assert str(info.value) == f"{dest}: No such file or directory"

    out = tmp_path / "no" / "such" / "dir" / "b.tar"
    with pytest.raises(habackup.ArchiveError) as info:
        habackup.create_archive(tree, out, name="x")
    assert info.value.path == str(out)
    assert_plain(str(info.value))

    with pytest.raises(habackup.ArchiveError) as info:
        habackup.read_backup(tmp_path)
    assert not isinstance(info.value, habackup.InvalidBackupError)
    assert str(info.value) == f"{tmp_path}: is a directory, not a backup file"

    missing = tmp_path / "missing"
    with pytest.raises(habackup.ArchiveError) as info:
        habackup.create_archive(missing, tmp_path / "c.tar", name="x")
    assert str(info.value) == f"{missing}: No such file or directory"


def test_truncated_backup_json_says_truncated(tree: Path, tmp_path: Path) -> None:
    backup = habackup.create_archive(tree, tmp_path / "b.tar", name="x")
    assert backup.path is not None
    cut = tmp_path / "cut.tar"
    cut.write_bytes(backup.path.read_bytes()[:700])
    with pytest.raises(habackup.InvalidBackupError, match="truncated") as info:
        habackup.read_backup(cut)
    assert "JSON" not in str(info.value)


def test_extreme_mtimes_round_trip(tmp_path: Path) -> None:
    """Before 1970 and after 2242 (beyond ustar's 11 octal digits): a PAX record carries the
    exact time, as Python's tarfile writes it, and extract restores it."""
    root = home_assistant_dir(tmp_path / "config")
    far = 8**11 + 1000  # one past ustar's largest mtime is 8**11
    for name, mtime in (("old", -86_400 * 365), ("far", far)):
        (root / name).write_text(name)
        os.utime(root / name, (mtime, mtime))
    backup = habackup.create_archive(root, tmp_path / "b.tar", name="x")
    assert backup.path is not None
    dest = tmp_path / "dest"
    habackup.extract_archive(backup.path, dest)
    assert (dest / "old").stat().st_mtime == -86_400 * 365
    assert (dest / "far").stat().st_mtime == far
    with tarfile.open(backup.path) as outer:
        inner_file = outer.extractfile("homeassistant.tar.gz")
        assert inner_file is not None
        with tarfile.open(fileobj=inner_file, mode="r|gz") as inner:
            mtimes = {m.name: m.mtime for m in inner}
    assert mtimes["data/old"] == -86_400 * 365
    assert mtimes["data/far"] == far


def test_hard_links_are_stored_as_files_and_setuid_is_dropped(tmp_path: Path) -> None:
    """What the README says about them: hard links become separate files (each stored whole),
    setuid, setgid and sticky bits are kept in the archive but never restored."""
    root = home_assistant_dir(tmp_path / "config")
    (root / "a.bin").write_bytes(b"shared" * 100)
    (root / "a.bin").chmod(0o644)
    os.link(root / "a.bin", root / "b.bin")
    (root / "tool").write_text("#!/bin/sh\n")
    (root / "tool").chmod(0o6755)
    (root / "shared_dir").mkdir()
    (root / "shared_dir").chmod(0o3777)
    backup = habackup.create_archive(root, tmp_path / "b.tar", name="x")
    assert backup.path is not None
    with tarfile.open(backup.path) as outer:
        inner_file = outer.extractfile("homeassistant.tar.gz")
        assert inner_file is not None
        with tarfile.open(fileobj=inner_file, mode="r|gz") as inner:
            infos = {m.name: (m.type, m.size, m.mode) for m in inner}
    assert infos["data/a.bin"] == (tarfile.REGTYPE, 600, 0o644)
    assert infos["data/b.bin"] == (tarfile.REGTYPE, 600, 0o644)
    assert infos["data/tool"][2] == 0o6755
    dest = tmp_path / "dest"
    habackup.extract_archive(backup.path, dest)
    assert not os.path.samefile(dest / "a.bin", dest / "b.bin")
    assert (dest / "b.bin").read_bytes() == b"shared" * 100
    assert (dest / "tool").stat().st_mode & 0o7777 == 0o755
    assert (dest / "shared_dir").stat().st_mode & 0o7777 == 0o777


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_bytes_give_a_printable_message(tmp_path: Path, seed: int) -> None:
    """Header bytes of a random file never reach the message (they used to, ESC included)."""
    junk = tmp_path / "r1.bin"
    junk.write_bytes(random.Random(seed).randbytes(5000))
    with pytest.raises(habackup.InvalidBackupError) as info:
        habackup.read_backup(junk)
    message = str(info.value)
    assert message.isprintable(), message
    assert message.startswith(f"{junk}: not a Home Assistant backup, not even a tar archive: ")
