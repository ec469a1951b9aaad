"""The command line says what happened, in one line a terminal cannot be tricked by: exit codes
that match the words, escaped names and bytes, one JSON shape for a backup, messages that name
the user's path, and no directory left by a command that failed."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import re
import shutil
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import EXAMPLE, run, run_on_terminal, store_url

import habackup
from habackup._cli.output import BACKUP_KEYS

EVIL_NAME = "two\nlines\x1b[31mred"
# Printable text only: no C0/C1 control characters (a trailing newline is checked apart).
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def one_clean_line(text: str) -> None:
    """``text`` is one line (or none) with no control character in it."""
    assert text.count("\n") <= 1, text
    assert not CONTROL.search(text), repr(text)


def no_raw_errors(text: str) -> None:
    for raw in ("[Errno", "(os error", ".habackup-", "Traceback"):
        assert raw not in text, text


@pytest.fixture
def random_file(tmp_path: Path) -> Path:
    """5000 random bytes with the header bytes that used to reach terminals: ESC among them."""
    path = tmp_path / "random.tar"
    path.write_bytes(b"\x1b[2J\x1b[31m\n" + os.urandom(4990))
    return path


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"habackup {habackup.__version__}"


def test_missing_store_folder_fails_but_an_empty_one_holds_no_backups(tmp_path: Path) -> None:
    missing = run("list", store_url(tmp_path / "nope" / "dir"))
    assert missing.returncode == 1
    assert (
        missing.stderr
        == f"habackup: error: {store_url(tmp_path / 'nope' / 'dir')}: no such directory\n"
    )

    (tmp_path / "empty").mkdir()
    empty = run("list", store_url(tmp_path / "empty"))
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.startswith("no backups in ")
    assert empty.stderr == ""

    # The agent itself (under a manager) lists a folder nothing was uploaded to as empty.
    agent = habackup.ObjectStoreBackupSyncAgent("nas", store_url(tmp_path / "nope" / "dir"))
    assert agent.local_dir == tmp_path / "nope" / "dir"
    assert asyncio.run(agent.async_list_backups()) == []


def test_unreadable_files_in_a_listing_are_one_warning_each(example: Path) -> None:
    listed = run("list", example / "backups")
    assert listed.returncode == 0
    old = example / "backups" / "old.tar"
    assert listed.stderr == (f"habackup: warning: skipped {old}: backup.json has no 'name' field\n")
    assert listed.stdout.startswith("no backups in ")


def test_names_and_header_bytes_never_reach_the_terminal_raw(
    example: Path, tmp_path: Path, random_file: Path
) -> None:
    out = tmp_path / "out"
    created = run("create", example, "-o", out, "--name", EVIL_NAME)
    assert created.returncode == 0, created.stderr
    assert "\x1b" not in created.stdout
    assert created.stdout.splitlines()[0].endswith("  two\\nlines\\x1b[31mred")
    [path] = out.glob("*.tar")
    shutil.copy(random_file, out / "random.tar")
    store = store_url(tmp_path / "store")
    assert run("upload", path, store).returncode == 0

    for command in (("info", path), ("list", out), ("list", store)):
        result = run(*command)
        assert result.returncode == 0, (command, result.stderr)
        assert "two\\nlines\\x1b[31mred" in result.stdout, command
        for line in result.stdout.splitlines() + result.stderr.splitlines():
            one_clean_line(line)
    listed = run("list", out)
    assert listed.stderr.startswith(f"habackup: warning: skipped {out / 'random.tar'}: ")
    one_clean_line(listed.stderr)

    for command in (("info", random_file), ("verify", random_file)):
        result = run(*command)
        assert result.returncode == 1, command
        assert result.stderr.startswith(f"habackup: error: {random_file}: "), result.stderr
        one_clean_line(result.stderr)
        assert "\ufffd" not in result.stderr, "the header's bytes are not quoted at all"

    # --json: valid JSON, ASCII only, and the name comes back exactly.
    for command in (("info", path), ("list", out), ("list", store)):
        result = run(*command, "--json")
        assert result.returncode == 0
        assert result.stdout.isascii()
        one_clean_line(result.stdout)
        data = json.loads(result.stdout)
        records = data if isinstance(data, list) else [data]
        assert records[0]["name"] == EVIL_NAME


def test_exception_and_log_texts_are_escaped(
    config_dir: Path, tmp_path: Path, random_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(habackup.InvalidBackupError) as raised:
        habackup.read_backup(random_file)
    one_clean_line(str(raised.value))
    # The path attribute stays the real path, for programs.
    assert raised.value.path == str(random_file)

    caplog.set_level("WARNING", logger="habackup")
    habackup.create_archive(
        config_dir, tmp_path / "b.tar", name="x", excludes=["evil\x1b[2J\npattern"]
    )
    [record] = [r for r in caplog.records if "matched nothing" in r.getMessage()]
    assert '"evil\\x1b[2J\\npattern"' in record.getMessage()
    one_clean_line(record.getMessage())


async def test_the_managers_skipping_warning_is_escaped(
    config_dir: Path, tmp_path: Path, random_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backups = config_dir / "backups"
    shutil.copy(random_file, backups / "junk.tar")
    evil = backups / "bad\x1b[31mname.tar"
    evil.write_bytes(b"\n\x1b]0;title\x07")
    manager = habackup.BackupManager(object(), config_dir=config_dir)
    caplog.set_level("WARNING", logger="habackup")
    await manager.async_get_backups()
    skipped = [
        r.getMessage() for r in caplog.records if "Skipping unreadable backup" in r.getMessage()
    ]
    assert len(skipped) == 3, skipped  # old.tar, junk.tar and the one with the evil name
    for message in skipped:
        one_clean_line(message)
    assert any("bad\\x1b[31mname.tar" in m for m in skipped), skipped


def test_one_json_shape_for_a_backup(example: Path, tmp_path: Path) -> None:
    store = store_url(tmp_path / "store")
    created = run(
        "create", example, "-o", tmp_path / "out", "--name", "Shape", "--upload", store, "--json"
    )
    assert created.returncode == 0, created.stderr
    made = json.loads(created.stdout)
    assert made["uploads"] == [{"url": store, "ok": True, "error": None}]
    path = made["path"]
    (tmp_path / "store2").mkdir()
    outputs: dict[str, dict[str, Any]] = {"create": made}
    for key, command in {
        "info": ("info", path),
        "list": ("list", tmp_path / "out"),
        "list url": ("list", store),
        "upload": ("upload", path, store_url(tmp_path / "store2")),
        "download": ("download", store, made["slug"], "-o", tmp_path / "dl"),
    }.items():
        result = run(*command, "--json")
        assert result.returncode == 0, (command, result.stderr)
        data = json.loads(result.stdout)
        outputs[key] = data[0] if isinstance(data, list) else data
    for key, record in outputs.items():
        expected = set(BACKUP_KEYS) | ({"uploads"} if key == "create" else set())
        assert set(record) == expected, key
        for field in ("slug", "name", "date", "size", "protected", "homeassistant_version"):
            assert record[field] == made[field], (key, field)
        assert record["database_included"] is True
    # What each one knows: the digest where it was computed or stored, a path where a file is.
    assert made["sha256"] is not None
    for key in ("list url", "upload", "download"):
        assert outputs[key]["sha256"] == made["sha256"], key
    for key in ("info", "list"):
        assert outputs[key]["sha256"] is None, key
    assert outputs["create"]["url"] is None
    assert outputs["list url"]["path"] is None
    assert outputs["list url"]["url"] == store
    assert outputs["upload"]["path"] == path
    assert outputs["upload"]["url"] == store_url(tmp_path / "store2")
    assert outputs["download"]["path"] == str(tmp_path / "dl" / f"{made['slug']}.tar")
    assert outputs["download"]["url"] == store

    failed = run(
        "create", example, "-o", tmp_path / "o2", "--upload", "http://127.0.0.1:1/x", "--json"
    )
    assert failed.returncode == 1
    [upload] = json.loads(failed.stdout)["uploads"]
    assert upload["ok"] is False
    assert upload["url"] == "http://127.0.0.1:1/x"
    assert upload["error"]


def test_memory_store_is_refused_with_a_reason(made: dict[str, Any], tmp_path: Path) -> None:
    for command in (
        ("upload", made["path"], "memory://"),
        ("list", "memory://"),
        ("create", EXAMPLE, "-o", tmp_path / "o", "--upload", "memory://x"),
    ):
        result = run(*command)
        assert result.returncode == 2, command
        assert "memory:// keeps backups in this process only" in result.stderr
    assert not (tmp_path / "o").exists()
    assert habackup.ObjectStoreBackupSyncAgent("m", "memory://").url == "memory://"
    assert habackup.ObjectStoreBackupSyncAgent("s", "s3://bucket/").url == "s3://bucket"


def test_failed_commands_leave_no_directory(
    made: dict[str, Any], example: Path, tmp_path: Path
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    not_ha = tmp_path / "not_ha"
    not_ha.mkdir()
    for config, out in (
        (tmp_path / "nonexistent", tmp_path / "o1"),
        (afile, tmp_path / "o2"),
        (not_ha, tmp_path / "o3" / "deeper"),
    ):
        result = run("create", config, "-o", out)
        assert result.returncode == 1
        one_clean_line(result.stderr)
        assert not out.exists()
    assert not (tmp_path / "o3").exists()

    store = store_url(tmp_path / "store")
    assert run("upload", made["path"], store).returncode == 0
    missing = run("download", store, "deadbeef", "-o", tmp_path / "new" / "dl")
    assert missing.returncode == 1
    assert not (tmp_path / "new").exists()
    found = run("download", store, made["slug"], "-o", tmp_path / "new" / "dl")
    assert found.returncode == 0, found.stderr
    assert (tmp_path / "new" / "dl" / f"{made['slug']}.tar").is_file()


@pytest.fixture
def plain_web_server(tmp_path: Path) -> Iterator[str]:
    """A web server that is not a WebDAV server: PROPFIND and PUT get its HTML error page."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dav"
    finally:
        server.shutdown()
        server.server_close()


def test_messages_name_the_users_path_and_nothing_raw(
    made: dict[str, Any], example: Path, tmp_path: Path, plain_web_server: str
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("mine")
    backup = Path(made["path"])
    cut = {n: tmp_path / f"cut{n}.tar" for n in (0, 100, 700, 1500)}
    for n, path in cut.items():
        path.write_bytes(backup.read_bytes()[:n])
    cases: list[tuple[tuple[str | Path, ...], str]] = [
        (("create", example, "-o", afile), f"{afile}: is a file, not a directory for the backup"),
        (("create", example, "-o", "/proc/habackup-out"), "/proc/habackup-out: cannot create"),
        (("upload", backup, "s3://"), "s3:// names no bucket: use s3://BUCKET/PREFIX"),
        (("upload", backup, "az://"), "az:// names no container"),
        (("info", tmp_path), f"{tmp_path}: is a directory, not a backup file"),
        (("info", cut[0]), f"{cut[0]}: the file is empty"),
        (("info", cut[100]), f"{cut[100]}: the file is truncated"),
        (("info", cut[700]), f"{cut[700]}: the file is truncated"),
        (("verify", cut[1500]), f"{cut[1500]}: the file is truncated"),
        (("info", tmp_path / "absent.tar"), f"{tmp_path / 'absent.tar'}: No such file"),
        (("extract", backup, tmp_path / "no" / "such" / "dest"), str(tmp_path / "no" / "such")),
        (
            ("list", plain_web_server),
            "answered PROPFIND with 501 Not Implemented: it is not a WebDAV server",
        ),
        (("upload", backup, plain_web_server), "it is not a WebDAV server"),
    ]
    for command, expected in cases:
        result = run(*command)
        assert result.returncode == 1, (command, result.stderr)
        assert result.stderr.startswith("habackup: error: "), result.stderr
        assert expected in result.stderr, (command, result.stderr)
        one_clean_line(result.stderr)
        no_raw_errors(result.stderr)
        assert "<" not in result.stderr, "no HTML page in a message"
    assert afile.read_text() == "mine"
    password = run("verify", backup, "--password-file", tmp_path / "nopw")
    assert password.returncode == 2
    assert f"cannot read the password file {tmp_path / 'nopw'}: No such file" in password.stderr


def test_a_dir_without_ha_version_is_refused_unless_one_is_given(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("not Home Assistant\n")
    refused = run("create", plain, "-o", tmp_path / "out")
    assert refused.returncode == 1
    assert refused.stderr == (
        f"habackup: error: {plain}: is not a Home Assistant config dir: it has no .HA_VERSION "
        "(give the Home Assistant version explicitly to back it up anyway)\n"
    )
    with pytest.raises(habackup.ArchiveError, match=r"no \.HA_VERSION") as raised:
        habackup.create_archive(plain, tmp_path, name="x")
    assert raised.value.path == str(plain)

    given = run("create", plain, "-o", tmp_path / "out", "--ha-version", "2024.12.1", "--json")
    assert given.returncode == 0, given.stderr
    assert json.loads(given.stdout)["homeassistant_version"] == "2024.12.1"
    assert "DEFAULT_HA_VERSION" not in dir(habackup._core)


def inner_names(path: str | Path) -> set[str]:
    with tarfile.open(path) as outer:
        inner = outer.extractfile("homeassistant.tar.gz")
        assert inner is not None
        with tarfile.open(fileobj=inner, mode="r|gz") as tar:
            return {m.name for m in tar}


def test_exclude_adds_to_the_defaults_and_warns_when_it_matches_nothing(
    example: Path, tmp_path: Path
) -> None:
    (example / "www" / "logo.png").write_bytes(b"png")
    result = run(
        "create", example, "-o", tmp_path / "a", "--exclude", "**/*.png",
        "--exclude", "demo/*", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    names = inner_names(json.loads(result.stdout)["path"])
    assert "data/www/logo.png" not in names
    # Home Assistant's defaults still apply: no old backups, no logs in the new one.
    assert "data/backups/old.tar" not in names
    assert "data/home-assistant.log" not in names
    assert result.stderr == (
        f'habackup: warning: exclude pattern "demo/*" matched nothing in {example}\n'
    )

    only = run(
        "create", example, "-o", tmp_path / "b", "--exclude", "www/*.png",
        "--no-default-excludes", "--json",
    )  # fmt: skip
    assert only.returncode == 0, only.stderr
    names = inner_names(json.loads(only.stdout)["path"])
    assert "data/www/logo.png" not in names
    assert "data/backups/old.tar" in names
    assert "data/home-assistant.log" in names

    helptext = run("create", "--help").stdout
    for words in ("in addition to Home Assistant's defaults", "**", "one path segment"):
        assert words in " ".join(helptext.split()), words


def test_edge_cases_of_names_and_restores(made: dict[str, Any], example: Path) -> None:
    blank = run("create", example, "-o", example.parent / "o", "--name", " ")
    assert blank.returncode == 2
    assert "a backup needs a name" in blank.stderr
    with pytest.raises(habackup.ArchiveError, match="needs a name"):
        habackup.create_archive(example, example.parent, name="")

    restored = run("restore", made["path"], example)
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.rstrip().endswith("backups/ kept as it was")


def test_progress_bar_keeps_one_width_and_is_full_at_the_end(
    made: dict[str, Any], example: Path, tmp_path: Path
) -> None:
    (example / "media.bin").write_bytes(os.urandom(16 * 1024 * 1024))
    for step in (
        ("create", example, "-o", tmp_path / "out"),
        ("extract", made["path"], tmp_path / "x"),
    ):
        code, seen = run_on_terminal(*step, columns=120)
        assert code == 0, seen
        frames = [f for f in seen.decode().replace("\r\n", "\r").split("\r") if "[" in f]
        assert frames, seen
        assert len({len(f.rstrip()) for f in frames}) == 1, frames
        bars = [re.search(r"\[([# ]+)\] +(\d+)%", f) for f in frames]
        assert all(bars), frames
        for bar in bars:
            assert bar is not None
            full = " " not in bar.group(1)
            assert full == (bar.group(2) == "100"), bar.group(0)
        assert bars[-1] is not None
        assert bars[-1].group(2) == "100"
