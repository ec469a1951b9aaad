"""Looking inside backups: ``list_members``/``habackup ls``, ``diff_backups``/``habackup diff``
and ``extract_archive(include=)``/``habackup extract --include``, on plain backups and on
protected ones of every securetar version (v1 written by hand as securetar 2024 wrote it, v2
and v3 by habackup)."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from cli_helpers import run
from helpers import (
    EXCLUDED_BY_DEFAULT,
    LONG_NAME,
    NON_ASCII,
    ha_backup_json,
    make_config_dir,
    temp_leftovers,
    tree,
    v1_encrypt,
    write_backup,
)

import habackup

PASSWORD = "correct horse battery staple"
# 0: not protected; 1-3: the securetar version of a protected backup.
VERSIONS = [0, 1, 2, 3]


def make_backup(config: Path, out: Path, version: int, slug: str) -> Path:
    """A backup of ``config``: habackup's for v0, v2 and v3; for v1 a gzip of the config dir
    (tarfile, under ``data/`` as securetar stored it), AES-128-CBC encrypted, in an outer tar."""
    out.mkdir(parents=True, exist_ok=True)
    if version == 1:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as inner:
            inner.add(config, arcname="data")
        meta = ha_backup_json(protected=True, slug=slug, name=f"v1 {slug}")
        return write_backup(out / f"{slug}.tar", v1_encrypt(buf.getvalue(), PASSWORD), meta)
    backup = habackup.create_archive(
        config,
        out,
        name=f"v{version} {slug}",
        password=PASSWORD if version else None,
        securetar_version=version or 3,
    )
    assert backup.path is not None
    return backup.path


def expected_paths(config: Path, version: int) -> set[str]:
    """What a backup of ``config`` holds: everything for v1 (tarfile applies no excludes),
    everything but Home Assistant's default excludes for habackup's."""
    paths = {str(p.relative_to(config)) for p in config.rglob("*")}
    return paths if version == 1 else paths - EXCLUDED_BY_DEFAULT


@pytest.fixture
def pair(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, Path, int]:
    """Backups A and B of the same config dir; from A to B configuration.yaml changed (same
    size, other bytes), www/new.png was added, secrets.yaml removed and the symlink retargeted."""
    version: int = request.param
    config = make_config_dir(tmp_path / "config")
    a = make_backup(config, tmp_path / "a", version, "aaaa0001")
    (config / "configuration.yaml").write_text("homeassistant:\n  name: Flat\n")
    (config / "www" / "new.png").write_bytes(b"\x89PNG" + os.urandom(500))
    (config / "secrets.yaml").unlink()
    (config / "link_to_config").unlink()
    (config / "link_to_config").symlink_to("automations.yaml")
    b = make_backup(config, tmp_path / "b", version, "bbbb0002")
    return a, b, version


def password_args(version: int, tmp_path: Path) -> list[str]:
    if not version:
        return []
    secret = tmp_path / "password.txt"
    secret.write_text(PASSWORD + "\n")
    return ["--password-file", str(secret)]


@pytest.mark.parametrize("pair", VERSIONS, indirect=True)
def test_list_members(pair: tuple[Path, Path, int], tmp_path: Path) -> None:
    a, _, version = pair
    password = PASSWORD if version else None
    members = {m.path: m for m in habackup.list_members(a, password=password)}
    config = tmp_path / "config"
    # A is the config dir before B's changes.
    assert set(members) == (expected_paths(config, version) | {"secrets.yaml"}) - {"www/new.png"}
    assert members["configuration.yaml"].type == "file"
    assert members["configuration.yaml"].size == len("homeassistant:\n  name: Home\n")
    assert members["scripts/run.sh"].mode & 0o777 == 0o755
    assert members["secrets.yaml"].mode & 0o777 == 0o600
    assert members["link_to_config"].type == "symlink"
    assert members["link_to_config"].link == "configuration.yaml"
    assert members["empty_dir"].type == "directory"
    assert NON_ASCII in members
    assert LONG_NAME in members
    assert members["www/noise.bin"].size == 200_000

    listed = run("ls", a, "--json", *password_args(version, tmp_path))
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [m.as_dict() for m in members.values()]
    human = run("ls", a, *password_args(version, tmp_path))
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert any(line.startswith("-rwxr-xr-x") and line.endswith(" scripts/run.sh") for line in lines)
    assert any(line.endswith("link_to_config -> configuration.yaml") for line in lines)
    assert lines[-1].startswith(f"{len(members)} members, ")


@pytest.mark.parametrize("pair", [1, 2, 3], indirect=True)
async def test_a_protected_backup_needs_its_password(
    pair: tuple[Path, Path, int], tmp_path: Path
) -> None:
    a, b, _ = pair
    for password in (None, "wrong"):
        with pytest.raises(habackup.IncorrectPasswordError):
            await habackup.async_list_members(a, password=password)
        with pytest.raises(habackup.IncorrectPasswordError):
            await habackup.async_diff_backups(a, b, password=password)
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("nope\n")
    for args in (("ls", a), ("diff", a, b), ("extract", a, tmp_path / "out", "--include", "www")):
        result = run(*args, "--password-file", wrong)
        assert result.returncode == 1
        assert "password" in result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("pair", VERSIONS, indirect=True)
async def test_diff(pair: tuple[Path, Path, int], tmp_path: Path) -> None:
    a, b, version = pair
    password = PASSWORD if version else None
    found = await habackup.async_diff_backups(a, b, password=password)
    assert [m.path for m in found.added] == ["www/new.png"]
    assert [m.path for m in found.removed] == ["secrets.yaml"]
    changed = {c.path: c for c in found.changed}
    assert set(changed) == {"configuration.yaml", "link_to_config"}
    # The same size: only the bytes tell them apart.
    assert changed["configuration.yaml"].before.size == changed["configuration.yaml"].after.size
    assert changed["link_to_config"].after.link == "automations.yaml"
    assert habackup.diff_backups(b, a, password=password).added == found.removed
    same = habackup.diff_backups(a, a, password=password)
    assert same.added == same.removed == same.changed == ()

    as_json = run("diff", a, b, "--json", *password_args(version, tmp_path))
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == found.as_dict()
    human = run("diff", a, b, *password_args(version, tmp_path))
    assert human.returncode == 0, human.stderr
    signs = [(line[0], line.rsplit("  ", 1)[-1]) for line in human.stdout.splitlines()[:-1]]
    assert signs == [
        ("M", "configuration.yaml"),
        ("M", "link_to_config -> automations.yaml"),
        ("-", "secrets.yaml"),
        ("+", "www/new.png"),
    ]
    assert human.stdout.splitlines()[-1] == "1 added, 1 removed, 2 changed"


def test_diff_of_a_plain_and_a_protected_backup(tmp_path: Path) -> None:
    config = make_config_dir(tmp_path / "config")
    plain = make_backup(config, tmp_path / "plain", 0, "p")
    locked = make_backup(config, tmp_path / "locked", 3, "l")
    found = habackup.diff_backups(plain, locked, password_b=PASSWORD)
    assert found.added == found.removed == found.changed == ()
    # From the command line, one password opens whichever of the two is protected.
    result = run("diff", plain, locked, *password_args(3, tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["0 added, 0 removed, 0 changed"]


@pytest.mark.parametrize("pair", VERSIONS, indirect=True)
async def test_extract_include(pair: tuple[Path, Path, int], tmp_path: Path) -> None:
    a, _, version = pair
    password = PASSWORD if version else None
    dest = tmp_path / "www_only"
    counts = await habackup.async_extract_archive(
        a, dest, password=password, include=["www", "scripts/*.sh"]
    )
    assert set(tree(dest)) == {"www", "www/states.json", "www/noise.bin", "scripts",
                               "scripts/run.sh"}
    assert counts["files"] == 3
    assert (dest / "www" / "noise.bin").read_bytes() == (
        tmp_path / "config" / "www" / "noise.bin"
    ).read_bytes()

    out = tmp_path / "cli"
    result = run(
        "extract", a, out, "--include", "**/*.yaml", "--include", "nothing/*",
        *password_args(version, tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert 'habackup: warning: include pattern "nothing/*" matched nothing' in result.stderr
    yamls = {p for p, data in tree(out).items() if data is not None}
    assert yamls == {"configuration.yaml", "automations.yaml", "secrets.yaml", NON_ASCII,
                     LONG_NAME}

    # Nothing matched at all: an error, and nothing written.
    none = tmp_path / "none"
    failed = run("extract", a, none, "--include", "zzz", *password_args(version, tmp_path))
    assert failed.returncode == 1
    assert "zzz" in failed.stderr
    assert not none.exists()
    assert not temp_leftovers(tmp_path)
    with pytest.raises(habackup.ArchiveError, match="zzz"):
        habackup.extract_archive(a, none, password=password, include=["zzz"])
    assert not none.exists()


def test_include_takes_a_list(backup_path: Path, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="list"):
        habackup.extract_archive(backup_path, tmp_path / "x", include="www")  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists()


def test_ls_and_diff_name_the_bad_file(backup_path: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"\0" * 4096)
    for args in (("ls", junk), ("diff", backup_path, junk), ("diff", junk, backup_path)):
        result = run(*args)
        assert result.returncode == 1
        assert str(junk) in result.stderr
        assert "Traceback" not in result.stderr
    with pytest.raises(habackup.InvalidBackupError, match=r"junk\.tar"):
        habackup.list_members(junk)
    copy = tmp_path / "copy.tar"
    shutil.copy(backup_path, copy)
    assert run("diff", backup_path, copy).stdout.splitlines() == [
        "0 added, 0 removed, 0 changed"
    ]
