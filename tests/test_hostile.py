"""Hostile and broken backups: extraction refuses them with InvalidBackupError, writes nothing
outside the destination, and leaves neither the destination nor its temp dir behind.

The malicious inner tars are built with Python's tarfile, TarInfo fields set directly, and wrapped
in a valid outer tar with a valid backup.json.
"""

from __future__ import annotations

import dataclasses
import io
import os
import random
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import (
    gz,
    ha_backup_json,
    home_assistant_dir,
    inner_span,
    links_leaving,
    make_tar,
    member,
    temp_leftovers,
    write_backup,
)

import habackup

Member = tuple[tarfile.TarInfo, bytes | None]


@dataclasses.dataclass
class Arena:
    """`work` holds the backup and the destination; `outside` is what attacks aim at."""

    root: Path
    work: Path
    outside: Path

    @property
    def backup(self) -> Path:
        return self.work / "backup.tar"

    @property
    def dest(self) -> Path:
        return self.work / "restore"

    def state(self) -> dict[str, object]:
        """Everything an escaping write could change, for before/after comparison."""
        return {
            "root": sorted(os.listdir(self.root)),
            "work": sorted(os.listdir(self.work)),
            "outside": {
                p.relative_to(self.outside).as_posix(): p.read_bytes() if p.is_file() else None
                for p in sorted(self.outside.rglob("*"))
            },
        }


@pytest.fixture
def arena(tmp_path: Path) -> Arena:
    work = tmp_path / "work"
    outside = tmp_path / "outside"
    work.mkdir()
    outside.mkdir()
    (outside / "target").write_bytes(b"precious")
    (outside / "dir").mkdir()
    (outside / "dir" / "victim").write_bytes(b"also precious")
    return Arena(tmp_path, work, outside)


def base_members() -> list[Member]:
    return [
        member("data/", tarfile.DIRTYPE),
        member("data/ok.yaml", data=b"ok: true\n"),
        member("data/sub/", tarfile.DIRTYPE),
        member("data/sub/inner.yaml", data=b"inner: true\n"),
    ]


def write_hostile(arena: Arena, members: list[Member], fmt: int = tarfile.PAX_FORMAT) -> Path:
    return write_backup(arena.backup, gz(make_tar([*base_members(), *members], fmt)))


def assert_refused(
    arena: Arena,
    exc: type[habackup.ArchiveError] = habackup.InvalidBackupError,
    match: str | None = None,
) -> habackup.ArchiveError:
    """Extraction raises `exc`, and the file system looks exactly as before."""
    before = arena.state()
    try:
        habackup.extract_archive(arena.backup, arena.dest)
    except exc as err:
        error = err
    except habackup.BackupError as err:
        pytest.fail(f"refused with {type(err).__name__}, not {exc.__name__}: {err}")
    else:
        leaving = links_leaving(arena.dest)
        changed = arena.state()["outside"] != before["outside"]
        pytest.fail(
            "extracted instead of refusing; "
            f"symlinks leaving the tree: {leaving}; "
            f"outside dir written to: {changed} {sorted(arena.outside.rglob('*'))}"
        )
    assert not os.path.lexists(arena.dest), "destination left behind"
    assert arena.state() == before, "something was written outside the destination"
    assert not temp_leftovers(Path(arena.work))
    assert isinstance(error, habackup.BackupError)
    assert error.path == str(arena.backup)
    if match is not None:
        assert match in str(error), str(error)
    return error


# Each case: the hostile members appended after a valid start, given the `outside` dir.
HostileCase = Callable[[Path], list[Member]]

CASES: dict[str, tuple[HostileCase, int]] = {
    "absolute-file": (lambda o: [member(str(o / "pwned"), data=b"x")], tarfile.PAX_FORMAT),
    "absolute-dir": (lambda o: [member(str(o / "newdir"), tarfile.DIRTYPE)], tarfile.PAX_FORMAT),
    "outside-data": (lambda o: [member("pwned.txt", data=b"x")], tarfile.PAX_FORMAT),
    "data-prefix-trick": (lambda o: [member("database/pwned", data=b"x")], tarfile.PAX_FORMAT),
    "dotdot-file": (
        lambda o: [member("data/../../outside/pwned", data=b"x")],
        tarfile.PAX_FORMAT,
    ),
    "dotdot-deep": (
        lambda o: [member("data/sub/../../../outside/pwned", data=b"x")],
        tarfile.PAX_FORMAT,
    ),
    "dotdot-harmless-looking": (
        lambda o: [member("data/sub/../ok2.yaml", data=b"x")],
        tarfile.PAX_FORMAT,
    ),
    "dotdot-dir": (
        lambda o: [member("data/../../outside/newdir", tarfile.DIRTYPE)],
        tarfile.PAX_FORMAT,
    ),
    "pax-path-absolute": (
        lambda o: [member("data/benign.yaml", data=b"x", pax={"path": str(o / "pwned")})],
        tarfile.PAX_FORMAT,
    ),
    "pax-path-dotdot": (
        lambda o: [member("data/benign.yaml", data=b"x", pax={"path": "data/../../outside/p"})],
        tarfile.PAX_FORMAT,
    ),
    "gnu-longname-dotdot": (
        lambda o: [member("data/" + "a" * 120 + "/../../../outside/pwned", data=b"x")],
        tarfile.GNU_FORMAT,
    ),
    "symlink-absolute": (
        lambda o: [member("data/link", tarfile.SYMTYPE, linkname=str(o))],
        tarfile.PAX_FORMAT,
    ),
    "symlink-absolute-etc": (
        lambda o: [member("data/sub/passwd", tarfile.SYMTYPE, linkname="/etc/passwd")],
        tarfile.PAX_FORMAT,
    ),
    "symlink-dotdot": (
        lambda o: [member("data/link", tarfile.SYMTYPE, linkname="../outside")],
        tarfile.PAX_FORMAT,
    ),
    "symlink-dotdot-nested": (
        lambda o: [member("data/sub/link", tarfile.SYMTYPE, linkname="../../outside/target")],
        tarfile.PAX_FORMAT,
    ),
    "symlink-dotdot-after-descent": (
        lambda o: [member("data/link", tarfile.SYMTYPE, linkname="sub/../../outside")],
        tarfile.PAX_FORMAT,
    ),
    "symlink-through-earlier-symlink": (
        # up -> "..": the tree's root (legal); esc -> "up/../outside" leaves through it.
        lambda o: [
            member("data/sub/up", tarfile.SYMTYPE, linkname=".."),
            member("data/esc", tarfile.SYMTYPE, linkname="sub/up/../../outside"),
        ],
        tarfile.PAX_FORMAT,
    ),
    "symlink-through-later-symlink": (
        # The same two links in the other order: esc is checked before up exists.
        lambda o: [
            member("data/esc", tarfile.SYMTYPE, linkname="sub/up/../../outside"),
            member("data/sub/up", tarfile.SYMTYPE, linkname=".."),
        ],
        tarfile.PAX_FORMAT,
    ),
    "symlink-planted-through-escaping-symlink": (
        # esc leaves the tree once up exists; a link "under" esc is then created through it.
        lambda o: [
            member("data/esc", tarfile.SYMTYPE, linkname="sub/up/../../outside"),
            member("data/sub/up", tarfile.SYMTYPE, linkname=".."),
            member("data/esc/planted/link", tarfile.SYMTYPE, linkname="."),
        ],
        tarfile.PAX_FORMAT,
    ),
    "symlink-replaces-a-file-through-escaping-symlink": (
        # The same trick aimed at an existing file outside: it would be deleted and replaced.
        lambda o: [
            member("data/esc", tarfile.SYMTYPE, linkname="sub/up/../../outside"),
            member("data/sub/up", tarfile.SYMTYPE, linkname=".."),
            member("data/esc/dir/victim", tarfile.SYMTYPE, linkname="../../ok.yaml"),
        ],
        tarfile.PAX_FORMAT,
    ),
    "hardlink-absolute": (
        lambda o: [member("data/h", tarfile.LNKTYPE, linkname=str(o / "target"))],
        tarfile.PAX_FORMAT,
    ),
    "hardlink-dotdot": (
        lambda o: [member("data/h", tarfile.LNKTYPE, linkname="data/../../outside/target")],
        tarfile.PAX_FORMAT,
    ),
    "hardlink-outside-data": (
        lambda o: [member("data/h", tarfile.LNKTYPE, linkname="etc/passwd")],
        tarfile.PAX_FORMAT,
    ),
    "hardlink-to-later-member": (
        lambda o: [
            member("data/h", tarfile.LNKTYPE, linkname="data/later.yaml"),
            member("data/later.yaml", data=b"later"),
        ],
        tarfile.PAX_FORMAT,
    ),
    "hardlink-to-missing": (
        lambda o: [member("data/h", tarfile.LNKTYPE, linkname="data/nothing.yaml")],
        tarfile.PAX_FORMAT,
    ),
    "hardlink-to-directory": (
        lambda o: [member("data/h", tarfile.LNKTYPE, linkname="data/sub")],
        tarfile.PAX_FORMAT,
    ),
    "hardlink-to-symlink": (
        lambda o: [
            member("data/s", tarfile.SYMTYPE, linkname="ok.yaml"),
            member("data/h", tarfile.LNKTYPE, linkname="data/s"),
        ],
        tarfile.PAX_FORMAT,
    ),
    "hardlink-to-itself": (
        lambda o: [member("data/h", tarfile.LNKTYPE, linkname="data/h")],
        tarfile.PAX_FORMAT,
    ),
    "char-device": (
        lambda o: [member("data/null", tarfile.CHRTYPE, devmajor=1, devminor=3)],
        tarfile.PAX_FORMAT,
    ),
    "block-device": (
        lambda o: [member("data/sda", tarfile.BLKTYPE, devmajor=8, devminor=0)],
        tarfile.PAX_FORMAT,
    ),
    "fifo": (lambda o: [member("data/fifo", tarfile.FIFOTYPE)], tarfile.PAX_FORMAT),
    "data-is-a-file": (lambda o: [member("data", data=b"x")], tarfile.PAX_FORMAT),
    "data-is-a-symlink": (
        lambda o: [member("data", tarfile.SYMTYPE, linkname=str(o))],
        tarfile.PAX_FORMAT,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_member_is_refused(arena: Arena, case: str) -> None:
    build, fmt = CASES[case]
    write_hostile(arena, build(arena.outside), fmt)
    assert_refused(arena)


@pytest.mark.parametrize("case", ["absolute-file", "dotdot-file", "symlink-absolute"])
def test_hostile_member_into_existing_empty_dest(arena: Arena, case: str) -> None:
    build, fmt = CASES[case]
    write_hostile(arena, build(arena.outside), fmt)
    arena.dest.mkdir()
    before = arena.state()
    with pytest.raises(habackup.InvalidBackupError):
        habackup.extract_archive(arena.backup, arena.dest)
    assert arena.state() == before
    assert list(arena.dest.iterdir()) == []


@pytest.mark.parametrize("order", ["link-first", "file-first"])
def test_file_under_an_archive_symlink_is_refused(arena: Arena, order: str) -> None:
    """A link to a directory inside the tree plus a file "under" the link: nothing may be
    written through the link, and the archive (which no tar writer produces) is refused."""
    link = member("data/alias", tarfile.SYMTYPE, linkname="sub")
    file = member("data/alias/planted.yaml", data=b"planted")
    write_hostile(arena, [link, file] if order == "link-first" else [file, link])
    assert_refused(arena)


def test_non_empty_destination_is_refused_untouched(arena: Arena) -> None:
    write_hostile(arena, [])
    arena.dest.mkdir()
    (arena.dest / "keep.txt").write_text("mine")
    before = arena.state()
    with pytest.raises(habackup.ArchiveError, match="not empty") as info:
        habackup.extract_archive(arena.backup, arena.dest)
    assert not isinstance(info.value, habackup.InvalidBackupError)
    assert arena.state() == before
    assert [p.name for p in arena.dest.iterdir()] == ["keep.txt"]


def test_valid_links_are_extracted(arena: Arena) -> None:
    """Control for the cases above: links that stay inside the tree are fine."""
    write_hostile(
        arena,
        [
            member("data/hard", tarfile.LNKTYPE, linkname="data/ok.yaml"),
            member("data/sub/hard", tarfile.LNKTYPE, linkname="./data/sub/inner.yaml"),
            member("data/sub/up", tarfile.SYMTYPE, linkname="../ok.yaml"),
            member("data/sub/self", tarfile.SYMTYPE, linkname="."),
            member("data/root", tarfile.SYMTYPE, linkname="sub/.."),
            member("data/dangling", tarfile.SYMTYPE, linkname="sub/missing"),
            member("./data/dotslash.yaml", data=b"dot slash"),
        ],
    )
    counts = habackup.extract_archive(arena.backup, arena.dest)
    dest = arena.dest
    assert (dest / "hard").read_bytes() == b"ok: true\n"
    assert os.path.samefile(dest / "hard", dest / "ok.yaml")
    assert os.path.samefile(dest / "sub" / "hard", dest / "sub" / "inner.yaml")
    assert os.readlink(dest / "sub" / "up") == "../ok.yaml"
    assert (dest / "sub" / "up").read_bytes() == b"ok: true\n"
    assert os.readlink(dest / "root") == "sub/.."
    assert (dest / "dotslash.yaml").read_bytes() == b"dot slash"
    assert links_leaving(dest) == []
    assert counts["symlinks"] == 4
    assert counts["files"] == 5


# ---- broken files ------------------------------------------------------------------------------


@pytest.fixture
def valid_backup(arena: Arena) -> Path:
    """A small, valid backup made by habackup in `arena.backup`."""
    config = home_assistant_dir(arena.root / "config")
    (config / "configuration.yaml").write_text("homeassistant:\n")
    (config / "sub").mkdir()
    (config / "sub" / "data.json").write_text('{"k": "v"}\n' * 500)
    (config / "link").symlink_to("configuration.yaml")
    habackup.create_archive(config, arena.backup, name="valid")
    return arena.backup


@pytest.mark.parametrize(
    "where",
    ["first-header", "backup-json", "inner-header", "inner-start", "inner-middle", "inner-end"],
)
def test_truncated_outer_file(arena: Arena, valid_backup: Path, where: str) -> None:
    offset, size = inner_span(valid_backup)
    cut = {
        "first-header": 300,
        "backup-json": 512 + 100,
        "inner-header": offset - 200,
        "inner-start": offset + 10,
        "inner-middle": offset + size // 2,
        "inner-end": offset + size - 3,
    }[where]
    data = valid_backup.read_bytes()
    valid_backup.write_bytes(data[:cut])
    assert_refused(arena)
    if where not in ("inner-end", "inner-middle", "inner-start"):
        with pytest.raises(habackup.InvalidBackupError):
            habackup.read_backup(valid_backup)


def test_read_backup_refuses_an_inner_member_running_past_the_end(
    arena: Arena, valid_backup: Path
) -> None:
    offset, size = inner_span(valid_backup)
    valid_backup.write_bytes(valid_backup.read_bytes()[: offset + size // 2])
    with pytest.raises(habackup.InvalidBackupError, match="truncated"):
        habackup.read_backup(valid_backup)


@pytest.mark.parametrize("keep", ["half", "no-trailer", "one-byte-short", "header-only"])
def test_truncated_inner_gzip(arena: Arena, keep: str) -> None:
    tar = make_tar([*base_members(), member("data/big.bin", data=os.urandom(50_000))])
    stream = gz(tar)
    cut = {
        "half": len(stream) // 2,
        "no-trailer": len(stream) - 8,
        "one-byte-short": len(stream) - 1,
        "header-only": 10,
    }[keep]
    write_backup(arena.backup, stream[:cut])
    assert_refused(arena)


@pytest.mark.parametrize("where", ["in-file-data", "in-header"])
def test_truncated_inner_tar_in_valid_gzip(arena: Arena, where: str) -> None:
    tar = make_tar([*base_members(), member("data/big.bin", data=b"z" * 50_000)])
    with tarfile.open(fileobj=io.BytesIO(tar)) as parsed:
        big = parsed.getmember("data/big.bin")
    cut = big.offset_data + 20_000 if where == "in-file-data" else big.offset + 100
    write_backup(arena.backup, gz(tar[:cut]))
    assert_refused(arena)


@pytest.mark.parametrize("field", ["crc", "isize"])
def test_corrupt_gzip_trailer(arena: Arena, field: str) -> None:
    stream = bytearray(gz(make_tar(base_members())))
    stream[-8 if field == "crc" else -1] ^= 0x01
    write_backup(arena.backup, bytes(stream))
    assert_refused(arena)


def test_flipped_byte_in_a_stored_block_is_caught_by_the_crc(arena: Arena) -> None:
    """At level 0 deflate stores bytes verbatim: a flipped byte still inflates, only the CRC
    can tell."""
    config = home_assistant_dir(arena.root / "config")
    marker = b"MARKER-" + os.urandom(16).hex().encode()
    (config / "payload.bin").write_bytes(b"a" * 5000 + marker + b"b" * 5000)
    habackup.create_archive(config, arena.backup, name="stored", compresslevel=0)
    data = bytearray(arena.backup.read_bytes())
    at = data.find(marker)
    assert at > 0, "level 0 should store the file's bytes verbatim"
    data[at + 3] ^= 0x20
    arena.backup.write_bytes(bytes(data))
    assert_refused(arena)


@pytest.mark.parametrize("position", [0.25, 0.5, 0.75])
def test_flipped_byte_in_the_deflate_stream(
    arena: Arena, valid_backup: Path, position: float
) -> None:
    offset, size = inner_span(valid_backup)
    data = bytearray(valid_backup.read_bytes())
    data[offset + 10 + int((size - 18) * position)] ^= 0xFF
    valid_backup.write_bytes(bytes(data))
    assert_refused(arena)


@pytest.mark.parametrize("kind", ["random", "zeros", "plain-tar", "text"])
def test_garbage_instead_of_gzip(arena: Arena, kind: str) -> None:
    inner = {
        "random": random.Random(1).randbytes(4096),
        "zeros": b"\0" * 4096,
        "plain-tar": make_tar(base_members()),
        "text": b"this is not a gzip stream\n" * 100,
    }[kind]
    write_backup(arena.backup, inner)
    assert_refused(arena)


def test_garbage_file(arena: Arena) -> None:
    arena.backup.write_bytes(random.Random(2).randbytes(20_480))
    assert_refused(arena)
    with pytest.raises(habackup.InvalidBackupError):
        habackup.read_backup(arena.backup)


def test_empty_file(arena: Arena) -> None:
    arena.backup.write_bytes(b"")
    assert_refused(arena)


def test_missing_backup_json(arena: Arena) -> None:
    with tarfile.open(arena.backup, "w") as outer:
        info = tarfile.TarInfo("homeassistant.tar.gz")
        inner = gz(make_tar(base_members()))
        info.size = len(inner)
        outer.addfile(info, io.BytesIO(inner))
    with pytest.raises(habackup.InvalidBackupError, match=r"backup\.json"):
        habackup.read_backup(arena.backup)
    assert_refused(arena, match="backup.json")


def test_missing_inner_archive(arena: Arena) -> None:
    write_backup(arena.backup, None)
    assert habackup.read_backup(arena.backup).slug == ha_backup_json()["slug"]
    assert_refused(arena, match="homeassistant.tar")


def test_inner_archive_under_another_name(arena: Arena) -> None:
    write_backup(arena.backup, gz(make_tar(base_members())), inner_name="core.tar.gz")
    assert_refused(arena)


@pytest.mark.parametrize("field", ["slug", "name", "date"])
def test_backup_json_missing_a_field(arena: Arena, field: str) -> None:
    meta = ha_backup_json()
    del meta[field]
    write_backup(arena.backup, gz(make_tar(base_members())), meta)
    with pytest.raises(habackup.InvalidBackupError) as info:
        habackup.read_backup(arena.backup)
    assert field in str(info.value)
    assert_refused(arena, match=field)


@pytest.mark.parametrize(
    "raw", [b"{not json", b"[1, 2, 3]", b'"a string"', b"", b'{"slug": 1, "name": "x"}']
)
def test_backup_json_that_is_not_a_backup_description(arena: Arena, raw: bytes) -> None:
    write_backup(arena.backup, gz(make_tar(base_members())), raw)
    with pytest.raises(habackup.InvalidBackupError):
        habackup.read_backup(arena.backup)
    assert_refused(arena)


# ---- fuzzing -----------------------------------------------------------------------------------


def mutate(data: bytes, rnd: random.Random, hot_end: int) -> tuple[bytes, str]:
    """One random mutation, biased to the bytes that matter (headers, json, gzip stream)."""
    out = bytearray(data)
    at = rnd.randrange(hot_end)
    kind = rnd.choice(["flip", "flips", "byte", "truncate", "insert", "delete", "zero", "splice"])
    if kind == "flip":
        out[at] ^= 1 << rnd.randrange(8)
    elif kind == "flips":
        for _ in range(rnd.randint(2, 8)):
            out[rnd.randrange(hot_end)] ^= rnd.randint(1, 255)
    elif kind == "byte":
        out[at] = rnd.randrange(256)
    elif kind == "truncate":
        del out[at:]
    elif kind == "insert":
        out[at:at] = rnd.randbytes(rnd.randint(1, 64))
    elif kind == "delete":
        del out[at : at + rnd.randint(1, 64)]
    elif kind == "zero":
        end = at + rnd.randint(1, 600)
        out[at:end] = bytes(len(out[at:end]))
    else:
        length = rnd.randint(1, 512)
        src = rnd.randrange(len(data) - length)
        out[at : at + length] = data[src : src + length]
    return bytes(out), f"{kind}@{at}"


def test_fuzzed_backups_never_escape_or_crash(arena: Arena, valid_backup: Path) -> None:
    original = valid_backup.read_bytes()
    offset, size = inner_span(valid_backup)
    hot_end = offset + size + 1024
    rnd = random.Random(20250101)
    fuzz = arena.work / "fuzz"
    fuzz.mkdir()
    target = fuzz / "m.tar"
    outcomes = {"extracted": 0, "refused": 0}
    for i in range(200):
        mutated, how = mutate(original, rnd, hot_end)
        target.write_bytes(mutated)
        dest = fuzz / f"dest{i}"
        before = arena.state()
        try:
            habackup.read_backup(target)
        except habackup.BackupError:
            pass
        except BaseException as err:  # pragma: no cover - a failure report
            pytest.fail(f"mutation {i} ({how}): read_backup raised {type(err).__name__}: {err}")
        try:
            habackup.extract_archive(target, dest)
        except habackup.BackupError:
            outcomes["refused"] += 1
            assert not os.path.lexists(dest), f"mutation {i} ({how}) left its destination"
        except BaseException as err:  # pragma: no cover - a failure report
            pytest.fail(f"mutation {i} ({how}): extract raised {type(err).__name__}: {err}")
        else:
            outcomes["extracted"] += 1
            assert dest.is_dir()
            assert links_leaving(dest) == [], f"mutation {i} ({how})"
            shutil.rmtree(dest)
        assert arena.state() == before, f"mutation {i} ({how}) wrote outside its destination"
        assert sorted(os.listdir(fuzz)) == ["m.tar"], f"mutation {i} ({how}) left files"
    # The mutations must actually exercise the refusal paths.
    assert outcomes["refused"] > 100, outcomes
