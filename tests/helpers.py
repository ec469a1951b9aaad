"""Shared helpers for the interop, hostile, excludes and live-file tests.

Everything here reads and writes archives with the standard library only, so the tests never
trust habackup to check habackup.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import sqlite3
import tarfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath
from typing import Any

MTIME = 1_700_000_000
INSTANCE_ID = "0123456789abcdef0123456789abcdef"
LONG_NAME = "l" * 110 + ".yaml"  # one path segment longer than ustar's 100-byte name field
NON_ASCII = "données/été.yaml"

# What the fixture config dir holds that Home Assistant's default excludes leave out.
EXCLUDED_BY_DEFAULT = frozenset(
    {
        "home-assistant.log",
        "tts/hello.mp3",
        "backups/old.tar",
        "custom_components/x/__pycache__/a.pyc",
    }
)

Snapshot = dict[str, tuple[str, int, int, str]]


HA_VERSION = "2025.1.2"


def home_assistant_dir(root: Path) -> Path:
    """An empty dir that is a Home Assistant config dir: it has the ``.HA_VERSION`` Home
    Assistant writes on every start (habackup refuses to back up a dir without one)."""
    root.mkdir(parents=True)
    (root / ".HA_VERSION").write_text(f"{HA_VERSION}\n")
    return root


def make_config_dir(root: Path) -> Path:
    """A small Home Assistant config dir with the awkward cases a backup has to carry."""
    home_assistant_dir(root)
    (root / "configuration.yaml").write_text("homeassistant:\n  name: Home\n")
    (root / "automations.yaml").write_text("[]\n")
    (root / ".storage").mkdir()
    (root / ".storage" / "core.uuid").write_text(
        json.dumps({"version": 1, "key": "core.uuid", "data": {"uuid": INSTANCE_ID}})
    )
    (root / "empty_dir").mkdir()
    (root / "link_to_config").symlink_to("configuration.yaml")
    (root / "données").mkdir()
    (root / NON_ASCII).write_text("soleil: oui\n", encoding="utf-8")
    (root / LONG_NAME).write_text("long: name\n")
    (root / "scripts").mkdir()
    (root / "scripts" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "scripts" / "run.sh").chmod(0o755)
    (root / "secrets.yaml").write_text("password: hunter2\n")
    (root / "secrets.yaml").chmod(0o600)
    db = sqlite3.connect(root / "home-assistant_v2.db")
    db.execute("CREATE TABLE states (id INTEGER PRIMARY KEY, entity_id TEXT, state TEXT)")
    db.executemany(
        "INSERT INTO states (entity_id, state) VALUES (?, ?)",
        [(f"sensor.s{i}", str(i * 1.5)) for i in range(500)],
    )
    db.commit()
    db.close()
    # More than one 1 MiB compression chunk, so the multi-threaded gzip joins several.
    line = b'{"entity_id": "sensor.temperature", "state": "21.5", "unit": "C"}\n'
    (root / "www").mkdir()
    (root / "www" / "states.json").write_bytes(line * 40_000)
    (root / "www" / "noise.bin").write_bytes(_pseudo_random(200_000))
    # Excluded by the defaults.
    (root / "home-assistant.log").write_text("log line\n")
    (root / "tts").mkdir()
    (root / "tts" / "hello.mp3").write_bytes(b"ID3" + b"\0" * 100)
    (root / "backups").mkdir()
    (root / "backups" / "old.tar").write_bytes(b"\0" * 1024)
    (root / "custom_components" / "x" / "__pycache__").mkdir(parents=True)
    (root / "custom_components" / "x" / "__init__.py").write_text('"""x."""\n')
    (root / "custom_components" / "x" / "__pycache__" / "a.pyc").write_bytes(b"\x00pyc")
    set_mtimes(root)
    return root


def _pseudo_random(n: int) -> bytes:
    out = bytearray()
    seed = b"habackup"
    while len(out) < n:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return bytes(out[:n])


def set_mtimes(root: Path, mtime: int = MTIME) -> None:
    """Fixed mtimes on everything but symlinks, deepest first."""
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if not path.is_symlink():
            os.utime(path, (mtime, mtime))


def snapshot(root: Path, skip: Iterable[str] = ()) -> Snapshot:
    """Relative path -> (kind, mode, mtime, content digest or link target), minus `skip`."""
    skipped = set(skip)
    result: Snapshot = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel in skipped:
            continue
        st = path.lstat()
        if path.is_symlink():
            result[rel] = ("link", 0, 0, os.readlink(path))
        elif path.is_dir():
            result[rel] = ("dir", st.st_mode & 0o7777, int(st.st_mtime), "")
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            result[rel] = ("file", st.st_mode & 0o7777, int(st.st_mtime), digest)
    return result


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` -> its bytes (None for directories, the target for links)."""
    found: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if path.is_symlink():
            found[name] = os.readlink(path).encode()
        elif path.is_dir():
            found[name] = None
        else:
            found[name] = path.read_bytes()
    return found


def expected_snapshot(config_dir: Path) -> Snapshot:
    """What a backup of the fixture config dir with the default excludes must give back."""
    return snapshot(config_dir, skip=EXCLUDED_BY_DEFAULT)


def _normalized(name: str) -> str:
    return name[2:] if name.startswith("./") else name


def outer_member_bytes(backup: Path, name: str) -> bytes:
    """Bytes of an outer member, `./` prefix or not."""
    with tarfile.open(backup, "r:") as outer:
        for member in outer.getmembers():
            if _normalized(member.name) == _normalized(name):
                fileobj = outer.extractfile(member)
                assert fileobj is not None
                return fileobj.read()
    raise KeyError(name)


def inner_bytes(backup: Path) -> bytes:
    """The raw (gzipped) homeassistant.tar.gz member of a backup."""
    return outer_member_bytes(backup, "homeassistant.tar.gz")


def inner_members(backup: Path) -> list[tarfile.TarInfo]:
    """The inner tar's members, read with Python's tarfile."""
    with tarfile.open(fileobj=io.BytesIO(inner_bytes(backup)), mode="r:gz") as inner:
        return inner.getmembers()


def inner_member_names(backup: Path) -> list[str]:
    """Names of the inner tar's members as Python's tarfile reports them (no trailing slash)."""
    return [m.name for m in inner_members(backup)]


def relative_names(backup: Path) -> set[str]:
    """Inner member names relative to the config dir (`data` itself is left out)."""
    names = set()
    for name in inner_member_names(backup):
        assert name == "data" or name.startswith("data/"), name
        if name != "data":
            names.add(name[len("data/") :])
    return names


# ---- building backups by hand (for hostile and foreign-writer tests) ----------------------


def ha_backup_json(**overrides: Any) -> dict[str, Any]:
    """backup.json as Home Assistant Core writes it."""
    meta: dict[str, Any] = {
        "compressed": True,
        "date": "2025-01-02T03:04:05.678901+00:00",
        "extra": {"instance_id": INSTANCE_ID, "with_automatic_settings": False},
        "homeassistant": {"exclude_database": False, "version": "2025.1.2"},
        "name": "Hand made",
        "protected": False,
        "slug": "1a2b3c4d",
        "type": "partial",
        "version": 2,
    }
    meta.update(overrides)
    return meta


def member(
    name: str,
    kind: bytes = tarfile.REGTYPE,
    data: bytes = b"",
    *,
    linkname: str = "",
    mode: int | None = None,
    pax: Mapping[str, str] | None = None,
    devmajor: int = 0,
    devminor: int = 0,
) -> tuple[tarfile.TarInfo, bytes | None]:
    """A TarInfo with its fields set directly (so nothing is sanitised on the way in)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mtime = MTIME
    info.linkname = linkname
    info.devmajor = devmajor
    info.devminor = devminor
    if mode is None:
        mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mode = mode
    if pax:
        info.pax_headers = dict(pax)
    if kind in (tarfile.REGTYPE, tarfile.AREGTYPE):
        info.size = len(data)
        return info, data
    info.size = 0
    return info, None


def make_tar(
    members: Iterable[tuple[tarfile.TarInfo, bytes | None]],
    fmt: int = tarfile.PAX_FORMAT,
) -> bytes:
    """An uncompressed tar of the given members, in order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def write_backup(
    path: Path,
    inner: bytes | None,
    meta: Mapping[str, Any] | bytes | None = None,
    *,
    json_name: str = "./backup.json",
    inner_name: str = "homeassistant.tar.gz",
) -> Path:
    """An outer tar the way Home Assistant writes one: backup.json, then the inner archive."""
    if meta is None:
        meta = ha_backup_json()
    raw = meta if isinstance(meta, bytes) else json.dumps(meta, separators=(",", ":")).encode()
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as outer:
        info = tarfile.TarInfo(json_name)
        info.size = len(raw)
        info.mtime = MTIME
        outer.addfile(info, io.BytesIO(raw))
        if inner is not None:
            info = tarfile.TarInfo(inner_name)
            info.size = len(inner)
            info.mtime = MTIME
            outer.addfile(info, io.BytesIO(inner))
    return path


def v1_encrypt(plaintext: bytes, password: str) -> bytes:
    """securetar v1 as design §6 describes it: salt, then AES-128-CBC, PKCS7 padded."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = password.encode()
    for _ in range(100):
        key = hashlib.sha256(key).digest()
    key = key[:16]
    salt = os.urandom(16)
    iv = key + salt
    for _ in range(100):
        iv = hashlib.sha256(iv).digest()
    pad = 16 - len(plaintext) % 16
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv[:16])).encryptor()
    return salt + encryptor.update(plaintext + bytes([pad]) * pad) + encryptor.finalize()


def inner_span(backup: Path) -> tuple[int, int]:
    """(offset, size) of the inner archive's bytes inside the outer file."""
    with tarfile.open(backup, "r:") as outer:
        for info in outer.getmembers():
            if _normalized(info.name) in ("homeassistant.tar.gz", "homeassistant.tar"):
                return info.offset_data, info.size
    raise KeyError("homeassistant.tar.gz")


def links_leaving(root: Path) -> list[str]:
    """Symlinks under `root` whose target resolves outside it."""
    real_root = root.resolve()
    leaving = []
    for path in root.rglob("*"):
        if path.is_symlink():
            target = path.resolve()
            if target != real_root and real_root not in target.parents:
                leaving.append(f"{path.relative_to(root)} -> {os.readlink(path)} ({target})")
    return leaving


def is_temp_name(name: str) -> bool:
    """habackup's temp files and dirs (``.habackup-...``; ``.partial`` in older versions)."""
    return name.startswith(".habackup-") or ".partial" in name


def temp_leftovers(directory: Path) -> list[str]:
    """The temp entries habackup left in ``directory`` (there must be none once it is done)."""
    return sorted(p.name for p in directory.iterdir() if is_temp_name(p.name))


# ---- Home Assistant's own writer ---------------------------------------------------------


def ha_file_filter(excluded: set[str], path: PurePath) -> bool:
    """Home Assistant's file filter over a fixed list (full_match needs Python 3.13)."""
    parts = path.parts
    return parts[0] == "data" and "/".join(parts[1:]) in excluded


def write_like_home_assistant(config_dir: Path, path: Path, meta: dict[str, Any]) -> None:
    """CoreBackupReaderWriter._async_create_backup, with securetar's current API."""
    # Imported here: the Home Assistant suite's venv has an older securetar, and imports this
    # module through conftest.py without needing this function.
    from securetar import SecureTarArchive, atomic_contents_add

    excluded = set(EXCLUDED_BY_DEFAULT)
    if meta["homeassistant"]["exclude_database"]:
        excluded |= {"home-assistant_v2.db", "home-assistant_v2.db-wal"}
    with SecureTarArchive(path, "w", bufsize=4 * 1024 * 1024) as archive:
        raw = json.dumps(meta, separators=(",", ":")).encode()
        info = tarfile.TarInfo(name="./backup.json")
        info.size = len(raw)
        info.mtime = int(time.time())
        archive.tar.addfile(info, fileobj=io.BytesIO(raw))
        with archive.create_tar("./homeassistant.tar.gz", gzip=True) as core_tar:
            atomic_contents_add(
                tar_file=core_tar,
                origin_path=config_dir,
                file_filter=lambda p: ha_file_filter(excluded, p),
                arcname="data",
            )
