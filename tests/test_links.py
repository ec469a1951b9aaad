"""Symlinks and raw-byte names, the way Home Assistant keeps them.

Home Assistant's writer (securetar over Python's tarfile) stores every symlink as a link and
names that are not UTF-8 as raw bytes (PAX ``hdrcharset=BINARY``); its restore recreates both.
habackup round-trips the same config dirs, extracts Home Assistant's archives into the same trees
as Home Assistant's own restore, and writes archives that restore writes back exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest
from helpers import (
    expected_snapshot,
    gz,
    ha_backup_json,
    home_assistant_dir,
    inner_bytes,
    make_config_dir,
    make_tar,
    member,
    snapshot,
    write_backup,
    write_like_home_assistant,
)
from securetar import SecureTarArchive, SecureTarFile

import habackup

RAW_NAME = b"caf\xe9 \x1b[31m.yaml"  # Latin-1, not UTF-8, with a terminal escape in it
RAW_DIR = b"r\xe9pertoire"
RAW_TARGET = b"cible-\xff"


def add_links(config: Path, shared: Path) -> dict[str, str]:
    """Links of every kind in `config`; returns name -> target for those leaving the dir."""
    shared.mkdir()
    (shared / "secrets.yaml").write_text("shared: true\n")
    (config / "secrets_link.yaml").symlink_to(shared / "secrets.yaml")  # absolute, outside
    (config / "share").symlink_to(shared)  # absolute directory, outside
    (config / "relative_out.yaml").symlink_to("../shared/secrets.yaml")
    (config / "dangling_abs").symlink_to("/nonexistent/habackup/file")
    (config / "dangling_rel").symlink_to("missing/deeper.yaml")
    (config / "www" / "up").symlink_to("..")  # back to the config dir itself
    (config / "loop_a").symlink_to("loop_b")
    (config / "loop_b").symlink_to("loop_a")
    return {
        "secrets_link.yaml": str(shared / "secrets.yaml"),
        "share": str(shared),
        "relative_out.yaml": "../shared/secrets.yaml",
        "dangling_abs": "/nonexistent/habackup/file",
    }


def add_raw_names(config: Path) -> None:
    base = os.fsencode(config)
    with open(base + b"/" + RAW_NAME, "wb") as f:
        f.write(b"raw name\n")
    os.mkdir(base + b"/" + RAW_DIR)
    with open(base + b"/" + RAW_DIR + b"/inside.yaml", "wb") as f:
        f.write(b"inside\n")
    os.symlink(RAW_TARGET, base + b"/raw_target_link")


@pytest.fixture
def linked_config(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    config = make_config_dir(tmp_path / "config")
    leaving = add_links(config, tmp_path / "shared")
    add_raw_names(config)
    return config, leaving


def raw_tree(root: Path) -> dict[bytes, tuple[str, bytes]]:
    """Relative raw path -> (kind, content or target), walked with bytes paths."""
    found: dict[bytes, tuple[str, bytes]] = {}
    base = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(base):
        assert isinstance(dirpath, bytes)
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, base)
            if os.path.islink(full):
                found[rel] = ("link", os.readlink(full))
            elif os.path.isdir(full):
                found[rel] = ("dir", b"")
            else:
                with open(full, "rb") as f:
                    found[rel] = ("file", f.read())
    return found


def test_links_and_raw_names_round_trip(
    linked_config: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    config, leaving = linked_config
    backup = habackup.create_archive(config, tmp_path / "b.tar", name="links")
    assert backup.path is not None
    report = habackup.verify_archive(backup.path)
    dest = tmp_path / "restored"
    counts = habackup.extract_archive(backup.path, dest)

    skip = {os.fsencode(p) for p in ("home-assistant.log", "tts/hello.mp3", "backups/old.tar")}
    skip.add(b"custom_components/x/__pycache__/a.pyc")
    expected = {k: v for k, v in raw_tree(config).items() if k not in skip}
    assert raw_tree(dest) == expected
    for name, target in leaving.items():
        assert os.readlink(dest / name) == target
    assert os.readlink(dest / "www" / "up") == ".."
    assert os.readlink(os.fsencode(dest) + b"/raw_target_link") == RAW_TARGET
    assert counts["symlinks"] == 10

    # verify warns about exactly the links that leave the config dir, escaped, and passes.
    warned = sorted(w.split('"')[1] for w in report["warnings"])
    assert warned == sorted(f"data/{name}" for name in leaving)
    assert report["protected"] is False
    assert all(w.isprintable() for w in report["warnings"])


def test_tarfile_reads_raw_names_as_home_assistant_does(
    linked_config: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """Home Assistant's restore (securetar, tarfile, ``filter="fully_trusted"``) gives back the
    same raw names and links from our backup."""
    config, _ = linked_config
    backup = habackup.create_archive(config, tmp_path / "b.tar", name="links")
    assert backup.path is not None
    extracted = tmp_path / "extracted"
    with SecureTarFile(backup.path, gzip=False) as outer:
        outer.extractall(extracted, filter="fully_trusted")
    ha_dest = tmp_path / "ha_restore"
    with SecureTarFile(extracted / "homeassistant.tar.gz", gzip=True) as inner:
        inner.extractall(ha_dest, filter="fully_trusted")
    ours = tmp_path / "ours"
    habackup.extract_archive(backup.path, ours)
    assert raw_tree(ha_dest / "data") == raw_tree(ours)
    assert os.path.exists(os.fsencode(ha_dest / "data") + b"/" + RAW_NAME)


def test_home_assistant_backup_with_links_extracts_like_its_own_restore(
    linked_config: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    config, leaving = linked_config
    path = tmp_path / "ha.tar"
    meta = ha_backup_json(name="Written by Home Assistant")
    write_like_home_assistant(config, path, meta)
    with SecureTarArchive(path, "r") as archive:
        fileobj = archive.tar.extractfile("homeassistant.tar.gz")
        assert fileobj is not None
        with tarfile.open(fileobj=fileobj, mode="r|gz") as inner:
            kinds = {m.name: m.issym() for m in inner}
    assert kinds["data/share"], "Home Assistant's writer stores links as links"
    assert os.fsdecode(b"data/" + RAW_NAME) in kinds

    ha_dest = tmp_path / "ha_restore"
    with SecureTarArchive(path, "r") as archive:
        fileobj = archive.tar.extractfile("homeassistant.tar.gz")
        assert fileobj is not None
        with SecureTarFile(fileobj=fileobj, gzip=True) as inner_file:
            inner_file.extractall(ha_dest, filter="fully_trusted")
    ours = tmp_path / "ours"
    habackup.extract_archive(path, ours)
    assert raw_tree(ours) == raw_tree(ha_dest / "data")
    for name, target in leaving.items():
        assert os.readlink(ours / name) == target
    report = habackup.verify_archive(path)
    assert sorted(w.split('"')[1] for w in report["warnings"]) == sorted(
        f"data/{name}" for name in leaving
    )


def test_raw_names_in_the_pax_header_are_binary(tmp_path: Path) -> None:
    """Python's tarfile way: ``hdrcharset=BINARY`` first, then the raw bytes."""
    config = home_assistant_dir(tmp_path / "config")
    add_raw_names(config)
    backup = habackup.create_archive(config, tmp_path / "b.tar", name="raw")
    assert backup.path is not None
    raw = zlib.decompress(inner_bytes(backup.path), 31)
    assert b"21 hdrcharset=BINARY\n" in raw
    assert b" path=data/" + RAW_NAME + b"\n" in raw
    assert b" linkpath=" + RAW_TARGET + b"\n" in raw


def test_messages_escape_raw_names(tmp_path: Path) -> None:
    """A refusal naming a member with raw bytes and a terminal escape prints them escaped."""
    name = os.fsdecode(b"data/" + RAW_NAME)
    inner = make_tar([member("data/", tarfile.DIRTYPE), member(name, tarfile.FIFOTYPE)])
    path = write_backup(tmp_path / "b.tar", gz(inner))
    for call in (
        lambda: habackup.verify_archive(path),
        lambda: habackup.extract_archive(path, tmp_path / "dest"),
    ):
        with pytest.raises(habackup.InvalidBackupError) as info:
            call()
        message = str(info.value)
        assert '"data/caf\\xe9 \\x1b[31m.yaml" is a device node or FIFO' in message, message
        assert message.isprintable(), message


def test_cli_verify_prints_link_warnings(
    linked_config: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    config, leaving = linked_config
    backup = habackup.create_archive(config, tmp_path / "b.tar", name="links")
    assert backup.path is not None
    run = subprocess.run(
        [sys.executable, "-m", "habackup", "verify", str(backup.path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "OK" in run.stdout
    lines = run.stderr.splitlines()
    assert len(lines) == len(leaving), lines
    assert all(line.startswith("habackup: warning: ") for line in lines), lines
    assert "error" not in run.stderr
    as_json = subprocess.run(
        [sys.executable, "-m", "habackup", "verify", str(backup.path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["protected"] is False
    assert len(report["warnings"]) == len(leaving)


def test_plain_config_has_no_warnings(config_dir: Path, tmp_path: Path) -> None:
    backup = habackup.create_archive(config_dir, tmp_path / "b.tar", name="plain")
    assert backup.path is not None
    report = habackup.verify_archive(backup.path)
    assert report["warnings"] == []
    dest = tmp_path / "restored"
    habackup.extract_archive(backup.path, dest)
    assert snapshot(dest) == expected_snapshot(config_dir)
