"""Interoperability: our backups read by Python's tarfile, GNU tar, gzip and securetar, and
backups written the way Home Assistant (securetar), the Supervisor and plain tarfile write them
read and extracted by habackup."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    EXCLUDED_BY_DEFAULT,
    INSTANCE_ID,
    LONG_NAME,
    MTIME,
    NON_ASCII,
    Snapshot,
    expected_snapshot,
    gz,
    ha_backup_json,
    inner_bytes,
    inner_members,
    make_tar,
    member,
    outer_member_bytes,
    snapshot,
    write_backup,
    write_like_home_assistant,
)
from securetar import SecureTarArchive, SecureTarFile

import habackup

HA_KEY_ORDER = [
    "compressed",
    "date",
    "extra",
    "homeassistant",
    "name",
    "protected",
    "slug",
    "type",
    "version",
]

needs_gnu_tar = pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar not installed")
needs_gzip = pytest.mark.skipif(shutil.which("gzip") is None, reason="gzip not installed")


def member_snapshot(tar: tarfile.TarFile, *, stream: bool) -> Snapshot:
    """Relative path -> (kind, mode, mtime, digest or target) for every inner member.

    Reads each member's bytes while iterating, which is what stream mode requires.
    """
    result: Snapshot = {}
    for info in tar:
        assert info.name == "data" or info.name.startswith("data/"), info.name
        if info.name == "data":
            assert info.isdir()
            continue
        rel = info.name[len("data/") :]
        assert rel not in result, f"duplicate member {rel}"
        if info.issym():
            result[rel] = ("link", 0, 0, info.linkname)
        elif info.isdir():
            result[rel] = ("dir", info.mode, int(info.mtime), "")
        else:
            assert info.isreg(), f"{rel} has type {info.type!r}"
            fileobj = tar.extractfile(info)
            assert fileobj is not None
            data = fileobj.read()
            assert len(data) == info.size
            result[rel] = ("file", info.mode, int(info.mtime), hashlib.sha256(data).hexdigest())
    if stream:
        assert result, "stream read no members"
    return result


# ---- our archives, read by others -------------------------------------------------------------


def test_tarfile_random_access_reads_every_member(backup_path: Path, config_dir: Path) -> None:
    with tarfile.open(backup_path, "r:") as outer:
        assert [m.name for m in outer.getmembers()] == ["./backup.json", "homeassistant.tar.gz"]
        fileobj = outer.extractfile("homeassistant.tar.gz")
        assert fileobj is not None
        with tarfile.open(fileobj=fileobj, mode="r:gz") as inner:
            names = inner.getnames()
            assert names[0] == "data"
            got = member_snapshot(inner, stream=False)
    assert got == expected_snapshot(config_dir)
    assert len(names) == len(set(names))
    assert LONG_NAME in got
    assert NON_ASCII in got
    assert got["link_to_config"] == ("link", 0, 0, "configuration.yaml")
    assert got["empty_dir"][0] == "dir"
    # tts/* excludes the children only: the directory itself stays, empty.
    assert got["tts"][0] == "dir"
    assert not {"home-assistant.log", "tts/hello.mp3", "backups/old.tar"} & got.keys()


def test_fixture_backup_lists_exactly_the_expected_members(
    backup_path: Path, config_dir: Path, list_inner: Callable[[Path], list[str]]
) -> None:
    names = list_inner(backup_path)
    expected = {"data"} | {f"data/{rel}" for rel in expected_snapshot(config_dir)}
    assert len(names) == len(expected), "duplicate members"
    assert set(names) == expected
    # Depth first, names sorted: a directory comes before what it holds.
    assert names.index("data/custom_components") < names.index("data/custom_components/x")


def test_tarfile_stream_mode_reads_every_member(backup_path: Path, config_dir: Path) -> None:
    seen_outer = []
    got: Snapshot | None = None
    with open(backup_path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as outer:
        for info in outer:
            seen_outer.append(info.name)
            if info.name == "homeassistant.tar.gz":
                fileobj = outer.extractfile(info)
                assert fileobj is not None
                with tarfile.open(fileobj=fileobj, mode="r|gz") as inner:
                    got = member_snapshot(inner, stream=True)
    assert seen_outer == ["./backup.json", "homeassistant.tar.gz"]
    assert got == expected_snapshot(config_dir)


def test_inner_members_carry_source_metadata(backup_path: Path, config_dir: Path) -> None:
    for info in inner_members(backup_path):
        source = config_dir / info.name[len("data") :].lstrip("/")
        st = source.lstat()
        assert info.uid == st.st_uid, info.name
        assert info.gid == st.st_gid, info.name
        if not info.issym():
            assert info.mode == st.st_mode & 0o7777, info.name
            assert info.mtime == int(st.st_mtime), info.name


def test_directory_members_have_a_trailing_slash(backup_path: Path) -> None:
    """tarfile strips it on reading, so look at the raw ustar name fields."""
    raw = zlib.decompress(inner_bytes(backup_path), 31)
    dir_names = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as inner:
        for info in inner.getmembers():
            if info.isdir() and len(info.name) < 99 and info.name.isascii():
                header = raw[info.offset_data - 512 : info.offset_data]
                dir_names.append(header[:100].rstrip(b"\0").decode())
    assert "data/" in dir_names
    assert "data/empty_dir/" in dir_names
    assert "data/tts/" in dir_names
    assert all(name.endswith("/") for name in dir_names), dir_names


@needs_gnu_tar
def test_gnu_tar_extracts_both_layers(backup_path: Path, config_dir: Path, tmp_path: Path) -> None:
    outer_dir = tmp_path / "gnu_outer"
    inner_dir = tmp_path / "gnu_inner"
    outer_dir.mkdir()
    inner_dir.mkdir()
    run = subprocess.run(
        ["tar", "-xf", str(backup_path), "-C", str(outer_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    assert sorted(p.name for p in outer_dir.iterdir()) == ["backup.json", "homeassistant.tar.gz"]
    run = subprocess.run(
        ["tar", "-xzf", str(outer_dir / "homeassistant.tar.gz"), "-C", str(inner_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == "", "GNU tar warned about our archive"
    assert sorted(p.name for p in inner_dir.iterdir()) == ["data"]
    assert snapshot(inner_dir / "data") == expected_snapshot(config_dir)
    meta = json.loads((outer_dir / "backup.json").read_bytes())
    assert meta["slug"] == habackup.read_backup(backup_path).slug


@needs_gnu_tar
def test_gnu_tar_lists_raw_names(backup_path: Path, tmp_path: Path) -> None:
    inner = tmp_path / "inner.tar.gz"
    inner.write_bytes(inner_bytes(backup_path))
    run = subprocess.run(
        ["tar", "-tzf", str(inner)],
        capture_output=True,
        check=False,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == b""
    listed = run.stdout.decode("utf-8").splitlines()
    assert listed[0] == "data/"
    assert "data/empty_dir/" in listed
    assert f"data/{LONG_NAME}" in listed
    assert "data/home-assistant.log" not in listed


@needs_gzip
def test_gzip_t_accepts_the_inner_member(backup_path: Path, tmp_path: Path) -> None:
    inner = tmp_path / "homeassistant.tar.gz"
    inner.write_bytes(inner_bytes(backup_path))
    run = subprocess.run(["gzip", "-t", str(inner)], capture_output=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stderr == b""


def test_inner_gzip_is_a_single_member(backup_path: Path, config_dir: Path) -> None:
    data = inner_bytes(backup_path)
    assert data[:3] == b"\x1f\x8b\x08"
    decoder = zlib.decompressobj(31)
    tar_bytes = decoder.decompress(data) + decoder.flush()
    assert decoder.eof, "gzip member not finished"
    assert decoder.unused_data == b"", "bytes after the first gzip member"
    # ISIZE and the tar inside agree with the single member.
    assert int.from_bytes(data[-4:], "little") == len(tar_bytes) % 2**32
    assert zlib.crc32(tar_bytes) == int.from_bytes(data[-8:-4], "little")
    assert len(tar_bytes) % 512 == 0
    # Several 1 MiB chunks went through the parallel compressor.
    assert len(tar_bytes) > 2 * 1024 * 1024
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as inner:
        assert member_snapshot(inner, stream=False) == expected_snapshot(config_dir)


@pytest.mark.parametrize("threads", [1, 2, 4])
@pytest.mark.parametrize("level", [0, 1, 9])
def test_every_level_and_thread_count_is_standard_gzip(
    config_dir: Path, tmp_path: Path, level: int, threads: int
) -> None:
    backup = habackup.create_archive(
        config_dir, tmp_path / "b.tar", name="x", compresslevel=level, threads=threads
    )
    data = inner_bytes(tmp_path / "b.tar")
    decoder = zlib.decompressobj(31)
    tar_bytes = decoder.decompress(data)
    assert decoder.eof
    assert decoder.unused_data == b""
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as inner:
        assert member_snapshot(inner, stream=False) == expected_snapshot(config_dir)
    assert backup.sha256 == hashlib.sha256((tmp_path / "b.tar").read_bytes()).hexdigest()


def test_backup_json_is_compact_with_home_assistant_key_order(
    config_dir: Path, tmp_path: Path
) -> None:
    backup = habackup.create_archive(
        config_dir, tmp_path / "b.tar", name="Sauvegarde d'été", include_database=False
    )
    raw = outer_member_bytes(tmp_path / "b.tar", "./backup.json")
    pairs = json.loads(raw, object_pairs_hook=lambda kv: kv)
    assert [k for k, _ in pairs] == HA_KEY_ORDER
    meta = json.loads(raw)
    assert list(meta["extra"]) == ["instance_id", "with_automatic_settings"]
    assert list(meta["homeassistant"]) == ["exclude_database", "version"]
    # orjson's output: no spaces, non-ASCII kept as UTF-8.
    assert raw == json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode()
    assert meta == {
        "compressed": True,
        "date": backup.date,
        "extra": {"instance_id": INSTANCE_ID, "with_automatic_settings": False},
        "homeassistant": {"exclude_database": True, "version": "2025.1.2"},
        "name": "Sauvegarde d'été",
        "protected": False,
        "slug": backup.slug,
        "type": "partial",
        "version": 2,
    }


def test_outer_file_is_record_padded_and_hashed(config_dir: Path, tmp_path: Path) -> None:
    created = habackup.create_archive(config_dir, tmp_path / "b.tar", name="x")
    data = (tmp_path / "b.tar").read_bytes()
    assert len(data) % tarfile.RECORDSIZE == 0
    assert created.sha256 == hashlib.sha256(data).hexdigest()
    assert created.size == len(data)
    read = habackup.read_backup(tmp_path / "b.tar")
    assert read.size == len(data)
    assert read.sha256 is None
    with tarfile.open(tmp_path / "b.tar", "r:") as outer:
        infos = outer.getmembers()
        assert [i.name for i in infos] == ["./backup.json", "homeassistant.tar.gz"]
        assert all(i.isreg() for i in infos)
        end = infos[-1].offset_data + infos[-1].size
    # After the last member: padding, two zero blocks at least, and nothing else.
    assert data[end:].strip(b"\0") == b""
    assert len(data) - end >= 1024


@pytest.mark.parametrize("variant", ["archive", "like_restore"])
def test_securetar_reads_our_backup(
    backup_path: Path, config_dir: Path, tmp_path: Path, variant: str
) -> None:
    dest = tmp_path / "securetar_out"
    if variant == "archive":
        with SecureTarArchive(backup_path, "r") as archive:
            names = archive.tar.getnames()
            assert names == ["./backup.json", "homeassistant.tar.gz"]
            fileobj = archive.tar.extractfile("homeassistant.tar.gz")
            assert fileobj is not None
            with SecureTarFile(fileobj=fileobj, gzip=True) as inner:
                inner.extractall(dest, filter="fully_trusted")
    else:
        # Home Assistant's restore: extract the outer tar, read backup.json, then the inner.
        extracted = tmp_path / "extracted"
        with SecureTarFile(backup_path, gzip=False) as outer:
            outer.extractall(extracted, filter="fully_trusted")
        meta = json.loads((extracted / "backup.json").read_text(encoding="utf8"))
        assert meta["compressed"] is True
        inner_path = extracted / "homeassistant.tar.gz"
        with SecureTarFile(inner_path, gzip=meta["compressed"]) as inner:
            inner.extractall(dest, filter="fully_trusted")
    assert sorted(p.name for p in dest.iterdir()) == ["data"]
    assert snapshot(dest / "data") == expected_snapshot(config_dir)


# ---- foreign archives, read and extracted by habackup -----------------------------------------


@pytest.mark.parametrize("exclude_database", [False, True])
def test_reads_and_extracts_a_securetar_backup(
    config_dir: Path, tmp_path: Path, exclude_database: bool
) -> None:
    os.link(config_dir / "automations.yaml", config_dir / "automations_hardlink.yaml")
    path = tmp_path / "ha.tar"
    meta = ha_backup_json(
        name="Written by securetar",
        homeassistant={"exclude_database": exclude_database, "version": "2025.1.2"},
    )
    write_like_home_assistant(config_dir, path, meta)
    with tarfile.open(path) as outer:
        inner_info = outer.getmember("homeassistant.tar.gz")
        fileobj = outer.extractfile(inner_info)
        assert fileobj is not None
        with tarfile.open(fileobj=fileobj, mode="r:gz") as inner:
            assert any(m.islnk() for m in inner.getmembers()), "expected a hardlink member"

    backup = habackup.read_backup(path)
    assert backup.slug == meta["slug"]
    assert backup.name == "Written by securetar"
    assert backup.date == meta["date"]
    assert backup.homeassistant_version == "2025.1.2"
    assert backup.database_included is not exclude_database
    assert backup.protected is False
    assert backup.size == path.stat().st_size
    assert backup.path == path

    dest = tmp_path / "restored"
    counts = habackup.extract_archive(path, dest)
    skip = set(EXCLUDED_BY_DEFAULT)
    if exclude_database:
        skip.add("home-assistant_v2.db")
    assert snapshot(dest) == snapshot(config_dir, skip=skip)
    assert os.path.samefile(dest / "automations.yaml", dest / "automations_hardlink.yaml")
    assert counts["symlinks"] == 1
    assert counts["files"] == sum(1 for k in snapshot(dest).values() if k[0] == "file")


def plain_tarfile_inner(config_dir: Path, fmt: int, compressed: bool) -> bytes:
    def tar_filter(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        rel = info.name[len("data/") :] if info.name.startswith("data/") else ""
        return None if rel in EXCLUDED_BY_DEFAULT else info

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if compressed else "w:", format=fmt) as tar:
        tar.add(config_dir, arcname="data", filter=tar_filter)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "compressed"),
    [(tarfile.PAX_FORMAT, True), (tarfile.GNU_FORMAT, True), (tarfile.PAX_FORMAT, False)],
    ids=["pax-gz", "gnu-gz", "pax-uncompressed"],
)
def test_reads_and_extracts_a_plain_tarfile_backup(
    config_dir: Path, tmp_path: Path, fmt: int, compressed: bool
) -> None:
    path = tmp_path / "plain.tar"
    inner = plain_tarfile_inner(config_dir, fmt, compressed)
    write_backup(
        path,
        inner,
        ha_backup_json(compressed=compressed, name="tarfile"),
        inner_name="homeassistant.tar.gz" if compressed else "homeassistant.tar",
    )
    backup = habackup.read_backup(path)
    assert backup.name == "tarfile"
    dest = tmp_path / "restored"
    habackup.extract_archive(path, dest)
    assert snapshot(dest) == expected_snapshot(config_dir)


def test_reads_a_supervisor_backup_json(tmp_path: Path) -> None:
    meta = {
        "slug": "9f8e7d6c",
        "version": 2,
        "name": "Full Backup 2024-01-01",
        "date": "2024-01-01T00:00:00.000000+00:00",
        "type": "full",
        "supervisor_version": "2024.01.0",
        "extra": {"supervisor.backup_request_date": "2024-01-01T00:00:00+00:00"},
        "protected": False,
        "compressed": True,
        "homeassistant": {"version": "2024.1.0", "exclude_database": True, "size": 0.5},
        "folders": ["share", "ssl"],
        "addons": [{"slug": "core_ssh", "name": "SSH", "version": "9.8.0", "size": 0.0}],
        "repositories": ["https://github.com/hassio-addons/repository"],
        "crypto": None,
        "docker": {"registries": {}},
    }
    raw = json.dumps(meta, indent=2).encode()  # the Supervisor's spaced layout
    path = write_backup(tmp_path / "sup.tar", gz(b"\0" * 1024), raw, json_name="backup.json")
    with tarfile.open(path) as outer:
        assert outer.getnames()[0] == "backup.json"
    backup = habackup.read_backup(path)
    assert backup.slug == "9f8e7d6c"
    assert backup.name == "Full Backup 2024-01-01"
    assert backup.date == "2024-01-01T00:00:00.000000+00:00"
    assert backup.homeassistant_version == "2024.1.0"
    assert backup.database_included is False
    assert backup.protected is False
    assert backup.size == path.stat().st_size


def test_protected_supervisor_backup_needs_its_password(tmp_path: Path) -> None:
    meta = ha_backup_json(protected=True, crypto="aes128")
    path = write_backup(tmp_path / "p.tar", b"\x00" * 2048, meta)
    assert habackup.read_backup(path).protected is True
    dest = tmp_path / "dest"
    with pytest.raises(habackup.IncorrectPasswordError, match="no password"):
        habackup.extract_archive(path, dest)
    # Zeros are no AES ciphertext of a gzip stream under any password.
    with pytest.raises(habackup.IncorrectPasswordError):
        habackup.extract_archive(path, dest, password="guess")
    assert not dest.exists()


@pytest.mark.parametrize(
    ("homeassistant", "version", "database_included"),
    [
        ({"version": "0.110.0", "boot": True, "image": "homeassistant/qemux86"}, "0.110.0", True),
        ("0.96.0", "0.96.0", True),
    ],
    ids=["object", "bare-string"],
)
@pytest.mark.parametrize("json_name", ["snapshot.json", "./snapshot.json"])
def test_reads_an_old_snapshot_json(
    tmp_path: Path, homeassistant: Any, version: str, database_included: bool, json_name: str
) -> None:
    meta = {
        "slug": "0000aaaa",
        "name": "Old snapshot",
        "date": "2020-05-01T12:00:00.000000+00:00",
        "type": "full",
        "protected": False,
        "homeassistant": homeassistant,
        "folders": [],
        "addons": [],
        "repositories": [],
    }
    path = write_backup(
        tmp_path / "old.tar", gz(b"\0" * 1024), json.dumps(meta).encode(), json_name=json_name
    )
    backup = habackup.read_backup(path)
    assert backup.slug == "0000aaaa"
    assert backup.name == "Old snapshot"
    assert backup.date == "2020-05-01T12:00:00.000000+00:00"
    assert backup.homeassistant_version == version
    assert backup.database_included is database_included
    assert backup.protected is False


def test_our_backup_round_trips_through_securetar_rewrite(
    backup_path: Path, config_dir: Path, tmp_path: Path
) -> None:
    """Extract ours with securetar, write it back the way Home Assistant does, read it with
    habackup: the three trees and both backup.json files agree."""
    first = tmp_path / "first"
    with SecureTarArchive(backup_path, "r") as archive:
        fileobj = archive.tar.extractfile("homeassistant.tar.gz")
        assert fileobj is not None
        with SecureTarFile(fileobj=fileobj, gzip=True) as inner:
            inner.extractall(first, filter="fully_trusted")
    meta = json.loads(outer_member_bytes(backup_path, "./backup.json"))
    rewritten = tmp_path / "rewritten.tar"
    write_like_home_assistant(first / "data", rewritten, meta)
    assert habackup.read_backup(rewritten).slug == habackup.read_backup(backup_path).slug
    dest = tmp_path / "second"
    habackup.extract_archive(rewritten, dest)
    assert snapshot(dest) == expected_snapshot(config_dir)
    assert all(mode[2] == MTIME for mode in snapshot(dest).values() if mode[0] != "link")


def test_extracts_a_supervisor_inner_archive(tmp_path: Path) -> None:
    """The Supervisor's homeassistant.tar.gz holds its root and homeassistant.json beside data/."""
    inner = make_tar(
        [
            member(".", tarfile.DIRTYPE),
            member("./homeassistant.json", data=b'{"version": "2024.1.0"}'),
            member("./data", tarfile.DIRTYPE),
            member("./data/configuration.yaml", data=b"homeassistant:\n"),
        ]
    )
    path = write_backup(
        tmp_path / "supervisor.tar",
        gz(inner),
        json_name="backup.json",
        inner_name="./homeassistant.tar.gz",
    )
    dest = tmp_path / "dest"
    habackup.extract_archive(path, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["configuration.yaml"]
    assert (dest / "configuration.yaml").read_bytes() == b"homeassistant:\n"
