"""``habackup verify``, ``prune`` and ``copy`` as an operator types them, against local folders
and the real stores: exit codes, one line per problem, the JSON shapes, nothing removed by a
dry run, nothing listed after an interrupted copy, no credentials printed."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run, run_on_terminal
from helpers import gz, ha_backup_json, make_config_dir, make_tar, temp_leftovers, write_backup
from stores import BACKENDS, Backend, azure_backend, make_backend, s3_backend, webdav_backend
from test_inside import make_backup, password_args
from test_trust import SUNDAYS, metadata_for

import habackup
from habackup import ObjectStoreBackupSyncAgent


def option_args(flag: str, options: dict[str, str]) -> list[str]:
    return [arg for key, value in options.items() for arg in (flag, f"{key}={value}")]


def no_secrets(backend: Backend, *outputs: subprocess.CompletedProcess[str]) -> None:
    for output in outputs:
        for secret in backend.secrets:
            assert secret not in output.stdout + output.stderr


def problem_lines(stderr: str, slug: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"habackup: error: {slug}: ")]


# ---- verify ---------------------------------------------------------------------------------


async def test_verify_on_a_store_finds_a_flipped_byte(
    backend: Backend, small_backup: Path
) -> None:
    await backend.agent().async_upload_backup(path=small_backup)
    slug = habackup.read_backup(small_backup).slug
    digest = hashlib.sha256(small_backup.read_bytes()).hexdigest()
    options = option_args("--option", backend.options)
    good = run("verify", backend.url, slug, *options)
    assert good.returncode == 0, good.stderr
    assert good.stdout == f"{slug}: OK, {small_backup.stat().st_size / 1024:.1f} KiB, " \
        f"sha256 {digest}\n"

    data = bytearray(backend.get(f"{slug}.tar"))
    data[len(data) // 2] ^= 0x01
    backend.put(f"{slug}.tar", bytes(data))
    bad = run("verify", backend.url, "--all", *options)
    assert bad.returncode == 1
    [problem] = problem_lines(bad.stderr, slug)
    assert "sha256" in problem
    assert bad.stdout == f"{slug}: FAILED (1 problem)\n"
    as_json = run("verify", backend.url, slug, "deadbeef", "--json", *options)
    assert as_json.returncode == 1
    [result, missing] = json.loads(as_json.stdout)
    assert (result["slug"], result["ok"], result["deep"]) == (slug, False, False)
    assert result["size"] == small_backup.stat().st_size
    assert (missing["slug"], missing["ok"]) == ("deadbeef", False)
    assert "deadbeef" in missing["problems"][0]
    no_secrets(backend, good, bad, as_json)


@pytest.fixture
def protected(tmp_path: Path) -> list[Path]:
    """Protected backups of one config dir, securetar v1, v2 and v3."""
    config = make_config_dir(tmp_path / "config")
    return [make_backup(config, tmp_path / f"v{v}", v, f"0000000{v}") for v in (1, 2, 3)]


@pytest.mark.parametrize("kind", ["folder", *BACKENDS])
async def test_deep_verify_finds_a_wrong_password_and_a_tampered_backup(
    kind: str, protected: list[Path], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    slugs = [habackup.read_backup(b).slug for b in protected]
    data = bytearray(protected[2].read_bytes())
    data[len(data) // 2] ^= 0x40
    if kind == "folder":
        folder = tmp_path / "folder"
        folder.mkdir()
        for backup in protected:
            (folder / backup.name).write_bytes(backup.read_bytes())
        (folder / protected[2].name).write_bytes(bytes(data))
        location, options = str(folder), []
    else:
        store = make_backend(kind, request, tmp_path)
        agent = store.agent()
        for backup in protected:
            await agent.async_upload_backup(path=backup)
        # The tampered bytes with a sidecar that matches them: only the MACs can tell.
        tampered = tmp_path / "tampered.tar"
        tampered.write_bytes(bytes(data))
        metadata = metadata_for(protected[2], sha256=hashlib.sha256(data).hexdigest())
        await agent.async_upload_backup(path=tampered, metadata=metadata)
        location, options = store.url, option_args("--option", store.options)

    quick = run("verify", location, "--all", *options)
    assert quick.returncode == 0, quick.stderr
    password = password_args(3, tmp_path)
    deep = run("verify", location, *slugs, "--deep", "--json", *options, *password)
    assert deep.returncode == 1
    results = {r["slug"]: r for r in json.loads(deep.stdout)}
    assert [results[s]["ok"] for s in slugs] == [True, True, False]
    assert all(results[s]["deep"] and results[s]["members"] > 5 for s in slugs[:2])
    assert problem_lines(deep.stderr, slugs[2])
    assert not problem_lines(deep.stderr, slugs[0]) + problem_lines(deep.stderr, slugs[1])
    human = run("verify", location, slugs[0], "--deep", *options, *password)
    assert human.returncode == 0, human.stderr
    assert human.stdout.startswith(f"{slugs[0]}: OK, every byte decoded: ")

    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not it\n")
    for slug in slugs:
        refused = run("verify", location, slug, "--deep", "--password-file", wrong, *options)
        assert refused.returncode == 1
        [problem] = problem_lines(refused.stderr, slug)
        assert "password" in problem
        assert refused.stdout == f"{slug}: FAILED (1 problem)\n"


def test_verify_usage(backup_path: Path, tmp_path: Path) -> None:
    folder = backup_path.parent
    slug = habackup.read_backup(backup_path).slug
    # A FILE is decoded whole, as before folders and stores could be verified.
    whole = run("verify", backup_path, "--json")
    assert whole.returncode == 0, whole.stderr
    assert json.loads(whole.stdout)["path"] == str(backup_path)
    assert run("verify", backup_path, "--deep").returncode == 0
    for args in (
        (backup_path, slug),  # a FILE is one backup
        (backup_path, "--all"),
        (backup_path, "--option", "a=b"),  # options are for stores
        (folder,),  # which backups?
        (folder, slug, "--all"),
        (folder, "../etc"),  # not a slug
        (folder, slug, "--option", "a=b"),
        ("memory://x", "--all"),
    ):
        result = run("verify", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("habackup: error: "), result.stderr
    missing = run("verify", f"file://{tmp_path}/nowhere", "--all")
    assert missing.returncode == 1
    assert "no such directory" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = run("verify", empty, "--all")
    assert (nothing.returncode, nothing.stdout) == (0, f"no backups in {empty}\n")
    quick = run("verify", folder, slug)
    assert quick.returncode == 0, quick.stderr
    assert "a folder records no sha256" in quick.stderr


# ---- prune ----------------------------------------------------------------------------------


def folder_of(backups: list[tuple[str, str]], folder: Path) -> Path:
    """Tiny valid backups with these slugs and dates, as Home Assistant names its files."""
    folder.mkdir()
    inner = gz(make_tar([]))
    for slug, date in backups:
        meta = ha_backup_json(slug=slug, date=date, name=f"Backup {slug}")
        write_backup(folder / f"Automatic_backup_{slug}.tar", inner, meta)
    return folder


def slugs_in(folder: Path) -> set[str]:
    return {habackup.read_backup(p).slug for p in folder.glob("*.tar")}


def test_prune_reproduces_restics_documented_example(tmp_path: Path) -> None:
    """restic's forget documentation: one backup every Sunday for 12 weeks, `--keep-daily 4`
    keeps the last four Sundays (each a "daily snapshot") and removes the other eight."""
    folder = folder_of(SUNDAYS, tmp_path / "backups")
    dry = run("prune", folder, "--keep-daily", "4", "--tz", "UTC", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    kept = [(s, d) for s, d in reversed(SUNDAYS[8:])]
    removed = [(s, d) for s, d in reversed(SUNDAYS[:8])]
    assert dry.stdout.splitlines() == [
        *(f"keep    {s}  {d}  (daily)" for s, d in kept),
        *(f"remove  {s}  {d}" for s, d in removed),
        f"{folder}: kept 4, would remove 8",
    ]
    assert slugs_in(folder) == {s for s, _ in SUNDAYS}

    done = run("prune", folder, "--keep-daily", "4", "--tz", "UTC", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "keep": [{"slug": s, "date": d, "reasons": ["daily"]} for s, d in kept],
        "remove": [{"slug": s, "date": d} for s, d in removed],
    }
    assert slugs_in(folder) == {s for s, _ in kept}


# Every rule keeps one backup that no other rule keeps (UTC, newest first): restic's algorithm
# by hand. "within 3h" reaches back to 09:40 on the 15th; weeks start on Monday (June 9th).
EVERY_RULE = [
    ("a0000001", "2025-06-15T12:40:00+00:00",
     ["within 3h", "last", "hourly", "daily", "weekly", "monthly", "yearly"]),
    ("a0000002", "2025-06-15T12:20:00+00:00", ["within 3h"]),
    ("a0000003", "2025-06-15T08:00:00+00:00", ["hourly"]),
    ("a0000004", "2025-06-15T07:30:00+00:00", None),
    ("a0000005", "2025-06-14T10:00:00+00:00", ["daily"]),
    ("a0000006", "2025-06-13T10:00:00+00:00", None),
    ("a0000007", "2025-06-05T10:00:00+00:00", ["weekly"]),
    ("a0000008", "2025-06-02T10:00:00+00:00", None),
    ("a0000009", "2025-05-20T10:00:00+00:00", ["monthly"]),
    ("a0000010", "2025-01-20T10:00:00+00:00", None),
    ("a0000011", "2024-12-01T10:00:00+00:00", ["yearly"]),
    ("a0000012", "2024-11-01T10:00:00+00:00", None),
]
EVERY_RULE_ARGS = [
    "--keep-last", "1", "--keep-hourly", "2", "--keep-daily", "2", "--keep-weekly", "2",
    "--keep-monthly", "2", "--keep-yearly", "2", "--keep-within", "3h", "--tz", "UTC",
]


async def test_prune_on_a_store_where_every_rule_matters(
    backend: Backend, small_backup: Path
) -> None:
    agent = backend.agent()
    for slug, date, _ in EVERY_RULE:
        metadata = metadata_for(small_backup, slug=slug, date=date)
        await agent.async_upload_backup(path=small_backup, metadata=metadata)
    options = option_args("--option", backend.options)
    expected = {
        "keep": [{"slug": s, "date": d, "reasons": r} for s, d, r in EVERY_RULE if r],
        "remove": [{"slug": s, "date": d} for s, d, r in EVERY_RULE if not r],
    }
    dry = run("prune", backend.url, *EVERY_RULE_ARGS, "--dry-run", "--json", *options)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) == expected
    assert len(await agent.async_list_backups()) == len(EVERY_RULE)
    done = run("prune", backend.url, *EVERY_RULE_ARGS, *options)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].endswith(": kept 7, removed 5")
    left = {b.slug for b in await agent.async_list_backups()}
    assert left == {s for s, _, r in EVERY_RULE if r}
    # Only the removed backups' objects went, sidecars included.
    assert not [n for n in backend.names() if n.split(".")[0] not in left]
    no_secrets(backend, dry, done)


def test_prune_usage_removes_nothing(tmp_path: Path) -> None:
    folder = folder_of(SUNDAYS, tmp_path / "backups")
    for args in (
        (),  # no rule: restic refuses too
        ("--keep-last", "0"),  # 0 is no rule
        ("--keep-within", "0d"),
        ("--keep-daily", "-1"),
        ("--keep-daily", "many"),
        ("--keep-within", "1w"),  # weeks are no unit of restic's
        ("--keep-last", "1", "--tz", "Mars/Olympus"),
        ("--keep-last", "1", "--option", "a=b"),
    ):
        result = run("prune", folder, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert slugs_in(folder) == {s for s, _ in SUNDAYS}
    missing = run("prune", tmp_path / "nowhere", "--keep-last", "1")
    assert missing.returncode == 2
    assert "nowhere" in missing.stderr
    # A rule with buckets left keeps the oldest too, as restic marks it; unlimited always has.
    for count in ("9", "unlimited"):
        every = run("prune", folder, "--keep-monthly", count, "--tz", "UTC", "--json",
                    "--dry-run")
        assert every.returncode == 0, every.stderr
        plan = json.loads(every.stdout)
        assert [(k["slug"], k["reasons"]) for k in plan["keep"]] == [
            ("e1ae2f40", ["monthly"]),
            ("8f8018c0", ["monthly"]),
            ("8cf1cb9a", ["monthly"]),
            ("0a1f9759", ["oldest monthly"]),
        ]
    assert slugs_in(folder) == {s for s, _ in SUNDAYS}


# ---- copy -----------------------------------------------------------------------------------


async def test_copy_between_different_backends(
    s3_server: object, webdav_server: object, azurite_server: object, big_backup: Path,
    tmp_path: Path,
) -> None:
    s3 = s3_backend(s3_server, f"copy{random.getrandbits(32):x}")
    dav = webdav_backend(webdav_server, f"copy{random.getrandbits(32):x}")
    blob = azure_backend(azurite_server, f"copy{random.getrandbits(32):x}")
    await s3.agent().async_upload_backup(path=big_backup)
    info = habackup.read_backup(big_backup)
    digest = hashlib.sha256(big_backup.read_bytes()).hexdigest()
    s3_options, dav_options = option_args("--option", s3.options), option_args(
        "--dest-option", dav.options
    )
    copied = run("copy", s3.url, info.slug, dav.url, *s3_options, *dav_options, "--json")
    assert copied.returncode == 0, copied.stderr
    record = json.loads(copied.stdout)
    assert (record["slug"], record["sha256"], record["sent"]) == (info.slug, digest, True)
    assert (record["size"], record["name"]) == (big_backup.stat().st_size, info.name)
    assert record["url"] == dav.agent().url
    assert record["source"] == s3.agent().url
    assert record["path"] is None
    [listed] = await dav.agent().async_list_backups()
    assert listed.sha256 == digest
    again = run("copy", s3.url, info.slug, dav.url, *s3_options, *dav_options)
    assert again.returncode == 0, again.stderr
    assert again.stdout.endswith("nothing was sent\n")

    # Store to folder, folder to store, with a progress bar on a terminal.
    folder = tmp_path / "folder"
    to_folder = run("copy", dav.url, info.slug, folder, *option_args("--option", dav.options),
                    "--json")
    assert to_folder.returncode == 0, to_folder.stderr
    assert json.loads(to_folder.stdout)["path"] == str(folder / f"{info.slug}.tar")
    assert (folder / f"{info.slug}.tar").read_bytes() == big_backup.read_bytes()
    code, shown = run_on_terminal(
        "copy", folder, info.slug, blob.url, *option_args("--dest-option", blob.options)
    )
    assert code == 0, shown
    assert b"copy [" in shown
    assert b"100%" in shown
    assert f"{info.slug}.tar" in blob.names()
    no_secrets(s3, copied, again)
    no_secrets(dav, copied, again, to_folder)


def test_copy_usage(backup_path: Path, tmp_path: Path) -> None:
    folder = backup_path.parent
    slug = habackup.read_backup(backup_path).slug
    for args in (
        (folder, "../x", tmp_path / "dest"),
        (folder, slug, tmp_path / "dest", "--option", "a=b"),  # SOURCE is a folder
        (folder, slug, tmp_path / "dest", "--dest-option", "a=b"),  # DEST is a folder
        (tmp_path / "nowhere", slug, tmp_path / "dest"),
        (backup_path, slug, tmp_path / "dest"),  # a FILE is no folder of backups
        (folder, slug, "memory://x"),
    ):
        result = run("copy", *args)
        assert result.returncode == 2, (args, result.stderr)
    assert not (tmp_path / "dest").exists()
    missing = run("copy", folder, "deadbeef", tmp_path / "dest")
    assert missing.returncode == 1
    assert "deadbeef" in missing.stderr


def _ctrl_c_as_in_a_terminal() -> None:
    """A shell runs background jobs with SIGINT ignored, and a child inherits that (Python then
    installs no KeyboardInterrupt handler): give the command Ctrl-C as a terminal would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_an_interrupted_copy_leaves_nothing_listed(
    s3_server: object, webdav_server: object, big_backup: Path, tmp_path: Path
) -> None:
    """Ctrl-C during a copy: exit 130, and neither a store nor a folder lists the backup."""
    s3 = s3_backend(s3_server, f"cut{random.getrandbits(32):x}")
    dav = webdav_backend(webdav_server, f"cut{random.getrandbits(32):x}")
    asyncio.run(s3.agent().async_upload_backup(path=big_backup))
    slug = habackup.read_backup(big_backup).slug
    # Slow enough that the copy is surely running when it is interrupted.
    slow = option_args("--option", {**s3.options, "limit_download": "4MiB"})
    folder = tmp_path / "folder"
    folder.mkdir()
    for dest, dest_options in ((dav.url, dav.options), (str(folder), {})):
        proc = subprocess.Popen(
            [sys.executable, "-m", "habackup", "copy", s3.url, slug, dest, *slow,
             *option_args("--dest-option", dest_options)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_ctrl_c_as_in_a_terminal,
        )
        time.sleep(3)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, (out, err)
        assert err == "habackup: interrupted\n"
    assert asyncio.run(dav.agent().async_list_backups()) == []
    assert not [n for n in dav.names() if n.endswith(".metadata.json")]
    assert list(folder.iterdir()) == []
    assert not temp_leftovers(folder)


# ---- the README's nightly cron line -----------------------------------------------------------


def test_the_readme_cron_line_runs(s3_server: Any, example: Path, tmp_path: Path) -> None:
    """The operators' line exactly as the README prints it, with its paths moved into tmp_path
    and its environment file pointing at moto: four nights, then what is left."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    [line] = [row for row in readme.splitlines() if row.startswith("30 3 * * * root ")]
    command = line.removeprefix("30 3 * * * root ")
    backup_dir, env_file, secret = tmp_path / "backup", tmp_path / "env", tmp_path / "pw"
    for old, new in (
        ("/etc/habackup.env", env_file),
        ("/etc/habackup.pw", secret),
        (" /config ", f" {example} "),
        (" /backup ", f" {backup_dir} "),
    ):
        assert old in command
        command = command.replace(old, str(new))
    bucket = f"cron{random.getrandbits(32):x}"
    s3_server.client().create_bucket(Bucket=bucket)
    exports = {key.upper(): value for key, value in s3_server.options().items()}
    exports["URL"] = f"s3://{bucket}/ha"
    env_file.write_text("".join(f"export {k}='{v}'\n" for k, v in exports.items()))
    secret.write_text("night shift\n")
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    nights = []
    for night in range(4):
        done = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True,
                              env=env, timeout=300, check=False)
        assert done.returncode == 0, (night, done.stdout, done.stderr)
        nights.append(done)
    made = sorted((habackup.read_backup(p) for p in backup_dir.glob("*.tar")),
                  key=lambda b: b.date)
    # The folder keeps the last 3: the first night's backup went on the fourth.
    assert len(made) == 3
    # All four nights fell on one day. In the bucket --keep-daily keeps the newest of the day
    # and, with buckets left, the oldest as restic does ("oldest daily"): the two between went.
    listed = asyncio.run(
        ObjectStoreBackupSyncAgent("check", exports["URL"], options=s3_server.options())
        .async_list_backups()
    )
    kept = sorted(listed, key=lambda b: b.date)
    assert len(kept) == 2
    assert kept[1].slug == made[-1].slug
    assert kept[0].slug not in {b.slug for b in made}
    assert nights[0].stdout.splitlines()[-1].startswith(f"{kept[0].slug}: OK, ")
    # Each night verify read back every backup the bucket held after the prune.
    last = nights[-1].stdout.splitlines()
    assert [line.split(":")[0] for line in last if ": OK, " in line] == [
        b.slug for b in reversed(kept)
    ]
    assert "FAILED" not in "".join(n.stdout for n in nights)
