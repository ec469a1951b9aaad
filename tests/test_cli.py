"""python -m habackup through subprocesses: what an operator types."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from cli_helpers import EXAMPLE, run, run_on_terminal, store_url
from helpers import tree


def test_create_list_info_extract(example: Path, tmp_path: Path) -> None:
    out = tmp_path / "backups"
    created = run("create", example, "-o", out, "--name", "CLI", "--json")
    assert created.returncode == 0, created.stderr
    backup = json.loads(created.stdout)
    path = Path(backup["path"])
    assert path.parent == out
    assert backup["name"] == "CLI"

    listed = run("list", out)
    assert listed.returncode == 0
    assert backup["slug"] in listed.stdout

    info = run("info", path, "--json")
    assert json.loads(info.stdout)["slug"] == backup["slug"]

    dest = tmp_path / "restored"
    extracted = run("extract", path, dest)
    assert extracted.returncode == 0, extracted.stderr
    original = (example / "configuration.yaml").read_bytes()
    assert (dest / "configuration.yaml").read_bytes() == original
    assert (dest / "home-assistant_v2.db").exists()
    assert not (dest / "home-assistant.log").exists()
    assert (dest / "tts").is_dir()
    assert list((dest / "tts").iterdir()) == []
    assert not (dest / "backups" / "old.tar").exists()


def test_human_output_names_what_was_written(example: Path, tmp_path: Path) -> None:
    created = run("create", example, "-o", tmp_path / "out", "--no-database")
    assert created.returncode == 0, created.stderr
    assert "database:  excluded" in created.stdout
    assert "sha256:" in created.stdout


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    assert run().returncode == 2
    assert run("create").returncode == 2
    assert run("frobnicate").returncode == 2


def test_failures_exit_1_with_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"\0" * 100)
    result = run("info", junk)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert str(junk) in result.stderr
    assert "Traceback" not in result.stderr

    missing = run("create", tmp_path / "nope", "-o", tmp_path / "out")
    assert missing.returncode == 1
    assert "nope" in missing.stderr

    debug = run("--debug", "info", junk)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr


def test_protected_create_verify_extract(example: Path, tmp_path: Path) -> None:
    secret = tmp_path / "pw.txt"
    secret.write_text("hunter2\n")
    out = tmp_path / "out"
    created = run("create", example, "-o", out, "--password-file", secret, "--json")
    assert created.returncode == 0, created.stderr
    path = json.loads(created.stdout)["path"]
    assert json.loads(created.stdout)["protected"] is True

    verified = run("verify", path, "--password-file", secret)
    assert verified.returncode == 0, verified.stderr
    assert "OK" in verified.stdout
    assert "securetar v3" in verified.stdout

    env = {**os.environ, "HB_PW": "hunter2"}
    command = ["extract", path, str(tmp_path / "x"), "--password-env", "HB_PW"]
    extracted = subprocess.run(
        [sys.executable, "-m", "habackup", *command],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert extracted.returncode == 0, extracted.stderr
    assert (tmp_path / "x" / "configuration.yaml").exists()

    secret.write_text("wrong\n")
    wrong = run("extract", path, tmp_path / "y", "--password-file", secret)
    assert wrong.returncode == 1
    assert wrong.stderr.count("\n") == 1
    assert "password" in wrong.stderr
    assert "wrong" not in wrong.stderr
    assert not (tmp_path / "y").exists()

    missing = run("verify", path)
    assert missing.returncode == 1
    assert "password" in missing.stderr


def test_password_on_the_command_line_is_refused(example: Path, tmp_path: Path) -> None:
    refused = run("create", example, "-o", tmp_path / "out", "--password", "hunter2")
    assert refused.returncode == 2
    assert "--password-file" in refused.stderr
    assert not (tmp_path / "out").exists()
    unset = run("create", example, "-o", tmp_path / "out", "--password-env", "HB_UNSET_VAR")
    assert unset.returncode == 2
    assert "HB_UNSET_VAR" in unset.stderr


def test_progress_bar_only_on_a_terminal(example: Path, tmp_path: Path) -> None:
    big = example / "media.bin"
    big.write_bytes(os.urandom(8 * 1024 * 1024))
    plain = run("create", example, "-o", tmp_path / "a")
    assert plain.returncode == 0
    assert "\r" not in plain.stderr
    assert "ETA" not in plain.stderr

    code, seen = run_on_terminal("create", example, "-o", tmp_path / "b")
    assert code == 0
    assert b"ETA" in seen
    assert b"\r" in seen
    assert b"100%" in seen


def test_progress_for_extract_upload_download_on_a_terminal_only(
    made: dict[str, Any], tmp_path: Path
) -> None:
    store = store_url(tmp_path / "store")
    steps: list[tuple[str, ...]] = [
        ("extract", made["path"], str(tmp_path / "x1")),
        ("upload", made["path"], store),
        ("download", store, made["slug"], "-o", str(tmp_path / "dl1")),
        ("restore", made["path"], str(tmp_path / "x1")),
    ]
    for step in steps:
        code, seen = run_on_terminal(*step)
        assert code == 0, seen
        assert seen.startswith(f"\r{step[0]} [".encode()), seen
        assert b"100%" in seen
        assert b"ETA" in seen
        assert seen.endswith(b"\n")

    quiet: list[tuple[str, ...]] = [
        ("extract", made["path"], str(tmp_path / "x2")),
        ("upload", made["path"], store),
        ("download", store, made["slug"], "-o", str(tmp_path / "dl2")),
    ]
    for step in quiet:
        result = run(*step)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""


def test_progress_fits_a_narrow_terminal(made: dict[str, Any], tmp_path: Path) -> None:
    # A wrapped line would defeat "\r": every redraw must fit in the terminal's width.
    for columns in (40, 60, 100):
        code, seen = run_on_terminal(
            "extract", made["path"], tmp_path / f"x{columns}", columns=columns
        )
        assert code == 0, seen
        lines = seen.replace(b"\r\n", b"\r").split(b"\r")
        assert max(len(line) for line in lines) < columns
        assert b"100%" in seen
        # The bar goes first when there is no room for it; the figures stay.
        assert (b"[" in seen) == (columns == 100)


def test_json_on_every_command(made: dict[str, Any], tmp_path: Path) -> None:
    path, slug = made["path"], made["slug"]
    assert made["uploads"] == []
    store = store_url(tmp_path / "store")
    config = tmp_path / "restore_into"
    config.mkdir()
    commands: dict[str, tuple[str | Path, ...]] = {
        "info": ("info", path),
        "list": ("list", Path(path).parent),
        "verify": ("verify", path),
        "extract": ("extract", path, tmp_path / "x"),
        "upload": ("upload", path, store),
        "list url": ("list", store),
        "download": ("download", store, slug, "-o", tmp_path / "dl"),
        "restore": ("restore", path, config),
    }
    outputs: dict[str, Any] = {}
    for key, command in commands.items():
        result = run(*command, "--json")
        assert result.returncode == 0, (command, result.stderr)
        outputs[key] = json.loads(result.stdout)
    assert outputs["info"]["slug"] == slug
    assert [b["slug"] for b in outputs["list"]] == [slug]
    assert outputs["verify"]["protected"] is False
    assert outputs["verify"]["members"] > 0
    assert outputs["extract"]["files"] > 0
    assert outputs["upload"]["slug"] == slug
    assert outputs["upload"]["path"] == path
    assert outputs["upload"]["url"] == store
    assert outputs["upload"]["size"] == made["size"]
    assert outputs["list url"][0]["slug"] == slug
    assert outputs["list url"][0]["sha256"] == made["sha256"]
    assert outputs["download"]["path"] == str(tmp_path / "dl" / f"{slug}.tar")
    assert outputs["download"]["size"] == made["size"]
    assert outputs["restore"]["slug"] == slug
    assert outputs["restore"]["database_restored"] is True
    # --json and --debug are accepted before the subcommand too.
    early = run("--json", "info", path)
    assert json.loads(early.stdout)["slug"] == slug


def test_upload_list_download_through_a_store(made: dict[str, Any], tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    store = store_url(store_dir)
    uploaded = run("upload", made["path"], store)
    assert uploaded.returncode == 0, uploaded.stderr
    assert made["slug"] in uploaded.stdout
    assert (store_dir / f"{made['slug']}.tar").read_bytes() == Path(made["path"]).read_bytes()
    assert (store_dir / f"{made['slug']}.metadata.json").exists()

    listed = run("list", store)
    assert listed.returncode == 0, listed.stderr
    assert made["slug"] in listed.stdout
    assert "Made" in listed.stdout

    out = tmp_path / "downloads"
    downloaded = run("download", store, made["slug"], "-o", out)
    assert downloaded.returncode == 0, downloaded.stderr
    copy = out / f"{made['slug']}.tar"
    assert copy.read_bytes() == Path(made["path"]).read_bytes()
    assert run("info", copy).returncode == 0

    again = run("download", store, made["slug"], "-o", out)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert again.stderr.count("\n") == 1

    missing = run("download", store, "deadbeef", "-o", out)
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1
    assert "deadbeef" in missing.stderr
    assert not (out / "deadbeef.tar").exists()

    (tmp_path / "nothing_here").mkdir()
    empty = run("list", store_url(tmp_path / "nothing_here"))
    assert empty.returncode == 0, empty.stderr
    assert "no backups" in empty.stdout


def test_create_uploads_to_every_store(example: Path, tmp_path: Path) -> None:
    stores = [tmp_path / "one", tmp_path / "two"]
    created = run(
        "create",
        example,
        "-o",
        tmp_path / "out",
        *[arg for s in stores for arg in ("--upload", store_url(s))],
        "--json",
    )
    assert created.returncode == 0, created.stderr
    backup = json.loads(created.stdout)
    assert backup["uploads"] == [{"url": store_url(s), "ok": True, "error": None} for s in stores]
    for store in stores:
        assert (store / f"{backup['slug']}.tar").read_bytes() == Path(backup["path"]).read_bytes()

    human = run("create", example, "-o", tmp_path / "out2", "--upload", store_url(stores[0]))
    assert human.returncode == 0, human.stderr
    assert f"uploaded:  {store_url(stores[0])}" in human.stdout


def test_a_failed_upload_keeps_the_backup_and_exits_1(example: Path, tmp_path: Path) -> None:
    good = store_url(tmp_path / "good")
    # Nothing listens on port 1: the connection is refused at once.
    bad = "http://user:SECRETPW@127.0.0.1:1/dav"
    created = run(
        "create", example, "-o", tmp_path / "out", "--upload", bad, "--upload", good, "--json"
    )
    assert created.returncode == 1
    backup = json.loads(created.stdout)
    assert Path(backup["path"]).exists()
    assert [u["ok"] for u in backup["uploads"]] == [False, True]
    assert backup["uploads"][0]["url"] == "http://127.0.0.1:1/dav"
    assert "SECRETPW" not in created.stdout + created.stderr
    assert created.stderr.count("\n") == 1
    assert created.stderr.startswith("habackup: error: upload to http://127.0.0.1:1/dav failed")


def test_store_errors_never_show_credentials(made: dict[str, Any], tmp_path: Path) -> None:
    url = "http://admin:SECRETPW@127.0.0.1:1/dav"
    for command in (
        ("upload", made["path"], url),
        ("list", url),
        ("download", url, made["slug"], "-o", str(tmp_path / "dl")),
    ):
        result = run(*command)
        assert result.returncode == 1, command
        assert result.stderr.count("\n") == 1
        assert result.stderr.startswith("habackup: error: ")
        assert "SECRETPW" not in result.stderr
        assert "127.0.0.1:1" in result.stderr

    unknown = run("list", store_url(tmp_path / "s"), "--option", "bogus_key=SECRETVAL")
    assert unknown.returncode == 1
    assert "bogus_key" in unknown.stderr
    assert "SECRETVAL" not in unknown.stderr

    scheme = run("create", EXAMPLE, "-o", tmp_path / "never", "--upload", "ftp://host/x")
    assert scheme.returncode == 1
    assert "ftp" in scheme.stderr
    # The store is checked before the backup is written.
    assert not (tmp_path / "never").exists()


def test_restore_replaces_the_config_dir_but_keeps_backups(
    made: dict[str, Any], example: Path
) -> None:
    (example / "configuration.yaml").write_text("broken: [\n")
    (example / "added_later.yaml").write_text("x: 1\n")
    shutil.rmtree(example / "blueprints")
    (example / "backups" / "newer.tar").write_bytes(b"keep me")
    (example / "home-assistant_v2.db").write_bytes(b"newer database")
    (example / "home-assistant_v2.db-shm").write_bytes(b"shm")

    restored = run("restore", made["path"], example)
    assert restored.returncode == 0, restored.stderr
    assert made["slug"] in restored.stdout
    assert "database restored" in restored.stdout

    original = EXAMPLE / "configuration.yaml"
    assert (example / "configuration.yaml").read_bytes() == original.read_bytes()
    assert not (example / "added_later.yaml").exists()
    assert (example / "blueprints" / "automation" / "motion_light.yaml").exists()
    assert (example / "home-assistant_v2.db").read_bytes() == (
        EXAMPLE / "home-assistant_v2.db"
    ).read_bytes()
    # The old database's shared-memory file must not outlive it.
    assert not (example / "home-assistant_v2.db-shm").exists()
    assert (example / "backups" / "newer.tar").read_bytes() == b"keep me"
    assert (example / "backups" / "old.tar").exists()
    assert not [p for p in example.iterdir() if p.name.startswith(".habackup")]


def test_restore_without_the_database_keeps_the_current_one(
    made: dict[str, Any], example: Path
) -> None:
    for suffix in ("", "-wal", "-shm"):
        (example / f"home-assistant_v2.db{suffix}").write_bytes(f"current{suffix}".encode())
    (example / "scenes.yaml").write_text("changed\n")

    restored = run("restore", made["path"], example, "--no-database", "--json")
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["database_restored"] is False
    for suffix in ("", "-wal", "-shm"):
        assert (example / f"home-assistant_v2.db{suffix}").read_bytes() == (
            f"current{suffix}".encode()
        )
    assert (example / "scenes.yaml").read_bytes() == (EXAMPLE / "scenes.yaml").read_bytes()


def test_restoring_a_backup_without_database_keeps_the_current_one(
    example: Path, tmp_path: Path
) -> None:
    created = run("create", example, "-o", tmp_path / "out", "--no-database", "--json")
    path = json.loads(created.stdout)["path"]
    (example / "home-assistant_v2.db").write_bytes(b"current")

    restored = run("restore", path, example)
    assert restored.returncode == 0, restored.stderr
    assert "the backup has none" in restored.stdout
    assert (example / "home-assistant_v2.db").read_bytes() == b"current"


def test_restore_from_a_file_inside_the_config_dir_keeps_that_file(
    made: dict[str, Any], example: Path
) -> None:
    inside = example / "saved" / "mine.tar"
    inside.parent.mkdir()
    shutil.copy(made["path"], inside)
    restored = run("restore", inside, example)
    assert restored.returncode == 0, restored.stderr
    assert inside.read_bytes() == Path(made["path"]).read_bytes()
    assert (example / "configuration.yaml").exists()


def test_restore_with_a_wrong_password_changes_nothing(example: Path, tmp_path: Path) -> None:
    secret = tmp_path / "pw.txt"
    secret.write_text("hunter2\n")
    created = run("create", example, "-o", tmp_path / "out", "--password-file", secret, "--json")
    path = json.loads(created.stdout)["path"]
    (example / "configuration.yaml").write_text("changed since\n")
    before = tree(example)

    secret.write_text("wrong\n")
    wrong = run("restore", path, example, "--password-file", secret)
    assert wrong.returncode == 1
    assert wrong.stderr.count("\n") == 1
    assert "password" in wrong.stderr
    assert tree(example) == before

    nothing = run("restore", path, example)
    assert nothing.returncode == 1
    assert tree(example) == before

    secret.write_text("hunter2\n")
    right = run("restore", path, example, "--password-file", secret)
    assert right.returncode == 0, right.stderr
    assert (example / "configuration.yaml").read_bytes() == (
        EXAMPLE / "configuration.yaml"
    ).read_bytes()


def test_restore_into_a_missing_dir_fails(made: dict[str, Any], tmp_path: Path) -> None:
    result = run("restore", made["path"], tmp_path / "absent")
    assert result.returncode == 1
    assert "absent" in result.stderr
    assert not (tmp_path / "absent").exists()


def test_bad_arguments_exit_2(made: dict[str, Any], tmp_path: Path) -> None:
    store = store_url(tmp_path / "store")
    bad: list[tuple[str | Path, ...]] = [
        ("restore", made["path"]),
        ("upload", made["path"]),
        ("upload", made["path"], tmp_path / "not_a_url"),
        ("download", store, made["slug"]),  # no -o
        ("download", tmp_path, made["slug"], "-o", tmp_path / "d"),
        ("download", store, "../escape", "-o", tmp_path / "d"),
        ("list", tmp_path, "--option", "aws_region=x"),
        ("list", store, "--option", "no_equals_sign"),
        ("create", EXAMPLE, "-o", tmp_path / "o", "--upload", "plain/path"),
        ("restore", made["path"], tmp_path, "--password", "x"),
        ("info",),
        ("verify", made["path"], "--password-file", "a", "--password-env", "B"),
    ]
    for args in bad:
        result = run(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "d").exists()
    assert not (tmp_path / "o").exists()


def test_console_script(made: dict[str, Any]) -> None:
    # pyproject's [project.scripts] entry, installed beside the interpreter.
    script = Path(sys.executable).with_name("habackup")
    result = subprocess.run(
        [str(script), "info", made["path"], "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["slug"] == made["slug"]


def test_debug_after_the_subcommand_shows_the_traceback(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"\0" * 100)
    result = run("info", junk, "--debug")
    assert result.returncode == 1
    assert "Traceback" in result.stderr


def test_unexpected_errors_are_one_line_too(tmp_path: Path) -> None:
    # The output dir's parent is a file: an OSError, not a habackup error.
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run("create", EXAMPLE, "-o", blocker / "out")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("habackup: error: ")
