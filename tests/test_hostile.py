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
    # verify promises that a backup restores: it refuses exactly what extract refuses.
    with pytest.raises(type(error)) as verified:
        habackup.verify_archive(arena.backup)
    assert str(verified.value) == str(error)
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
    # Links may point anywhere (see LINKS below), but nothing is ever written through one: a
    # member whose path runs through a symlink of the archive, met before or after it, is refused.
    "file-through-absolute-link": (
        lambda o: [
            member("data/l", tarfile.SYMTYPE, linkname=str(o)),
            member("data/l/pwned", data=b"x"),
        ],
        tarfile.PAX_FORMAT,
    ),
    "file-through-link-met-later": (
        lambda o: [
            member("data/l/pwned", data=b"x"),
            member("data/l", tarfile.SYMTYPE, linkname=str(o)),
        ],
        tarfile.PAX_FORMAT,
    ),
    "file-through-dotdot-link": (
        lambda o: [
            member("data/l", tarfile.SYMTYPE, linkname="../outside"),
            member("data/l/dir/victim", data=b"overwritten"),
        ],
        tarfile.PAX_FORMAT,
    ),
    "dir-through-link": (
        lambda o: [
            member("data/l", tarfile.SYMTYPE, linkname=str(o)),
            member("data/l/newdir", tarfile.DIRTYPE),
        ],
        tarfile.PAX_FORMAT,
    ),
    "hardlink-through-link": (
        lambda o: [
            member("data/l", tarfile.SYMTYPE, linkname=str(o)),
            member("data/l/h", tarfile.LNKTYPE, linkname="data/ok.yaml"),
        ],
        tarfile.PAX_FORMAT,
    ),
    "hardlink-source-through-link": (
        lambda o: [
            member("data/alias", tarfile.SYMTYPE, linkname=str(o / "dir")),
            member("data/h", tarfile.LNKTYPE, linkname="data/alias/victim"),
        ],
        tarfile.PAX_FORMAT,
    ),
    "file-through-link-chain": (
        lambda o: [
            member("data/a", tarfile.SYMTYPE, linkname="b"),
            member("data/b", tarfile.SYMTYPE, linkname=str(o)),
            member("data/a/pwned", data=b"x"),
        ],
        tarfile.PAX_FORMAT,
    ),
    "file-through-link-chain-met-later": (
        lambda o: [
            member("data/a/pwned", data=b"x"),
            member("data/a", tarfile.SYMTYPE, linkname="b"),
            member("data/b", tarfile.SYMTYPE, linkname=str(o)),
        ],
        tarfile.PAX_FORMAT,
    ),
    "link-replaces-a-populated-dir": (
        lambda o: [
            member("data/d", tarfile.DIRTYPE),
            member("data/d/f", data=b"x"),
            member("data/d", tarfile.SYMTYPE, linkname=str(o)),
        ],
        tarfile.PAX_FORMAT,
    ),
    "link-with-empty-target": (
        lambda o: [member("data/l", tarfile.SYMTYPE, linkname="")],
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
    "name-longer-than-a-file-system-takes": (
        lambda o: [member("data/" + "x" * 256, data=b"x")],
        tarfile.PAX_FORMAT,
    ),
    "path-longer-than-linux-takes": (
        lambda o: [member("data/" + "/".join(["d" * 200] * 21) + "/f", data=b"x")],
        tarfile.PAX_FORMAT,
    ),
    "unknown-type": (lambda o: [member("data/odd", b"\x9e")], tarfile.PAX_FORMAT),
    "gnu-sparse": (lambda o: [member("data/sparse", tarfile.GNUTYPE_SPARSE)], tarfile.GNU_FORMAT),
    "data-is-a-file": (lambda o: [member("data", data=b"x")], tarfile.PAX_FORMAT),
    "data-is-a-symlink": (
        lambda o: [member("data", tarfile.SYMTYPE, linkname=str(o))],
        tarfile.PAX_FORMAT,
    ),
}


# Through-link cases: the refusal names the member that would be written through the link.
THROUGH = {
    "file-through-absolute-link": "data/l/pwned",
    "file-through-link-met-later": "data/l/pwned",
    "file-through-dotdot-link": "data/l/dir/victim",
    "dir-through-link": "data/l/newdir/",
    "hardlink-through-link": "data/l/h",
    "file-through-link-chain": "data/a/pwned",
    "file-through-link-chain-met-later": "data/a/pwned",
    "symlink-planted-through-escaping-symlink": "data/esc/planted/link",
    "symlink-replaces-a-file-through-escaping-symlink": "data/esc/dir/victim",
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_member_is_refused(arena: Arena, case: str) -> None:
    build, fmt = CASES[case]
    write_hostile(arena, build(arena.outside), fmt)
    error = assert_refused(arena)
    if case == "unknown-type":
        assert 'member "data/odd" has an unsupported type (type byte 0x9e)' in str(error)
    if case in THROUGH:
        assert f'"{THROUGH[case]}"' in str(error), str(error)


# Symlinks are restored as links wherever they point, as Home Assistant restores them: creating
# a link writes nothing outside. Each case: the links, and which of them leave the config dir.
LINKS: dict[str, tuple[Callable[[Path], list[tuple[str, str]]], set[str]]] = {
    "absolute": (lambda o: [("data/link", str(o))], {"data/link"}),
    "absolute-etc": (lambda o: [("data/sub/passwd", "/etc/passwd")], {"data/sub/passwd"}),
    "dotdot": (lambda o: [("data/link", "../outside")], {"data/link"}),
    "dotdot-nested": (lambda o: [("data/sub/link", "../../outside/target")], {"data/sub/link"}),
    "dotdot-after-descent": (lambda o: [("data/link", "sub/../../outside")], {"data/link"}),
    "dangling": (lambda o: [("data/gone", "/nonexistent/file")], {"data/gone"}),
    "dangling-inside": (lambda o: [("data/gone", "sub/missing")], set()),
    "through-earlier-symlink": (
        # up -> "..": the tree's root; esc -> "up/../outside" leaves through it.
        lambda o: [("data/sub/up", ".."), ("data/esc", "sub/up/../../outside")],
        {"data/esc"},
    ),
    "through-later-symlink": (
        lambda o: [("data/esc", "sub/up/../../outside"), ("data/sub/up", "..")],
        {"data/esc"},
    ),
    "chain": (lambda o: [("data/a", "b"), ("data/b", str(o))], {"data/a", "data/b"}),
    "loop": (lambda o: [("data/a", "b"), ("data/b", "a")], set()),
    "replaces-a-file": (
        lambda o: [("data/ok.yaml", str(o / "target"))],
        {"data/ok.yaml"},
    ),
}


@pytest.mark.parametrize("case", list(LINKS))
def test_links_anywhere_are_recreated_as_links(arena: Arena, case: str) -> None:
    build, leaving = LINKS[case]
    links = build(arena.outside)
    write_hostile(arena, [member(name, tarfile.SYMTYPE, linkname=to) for name, to in links])
    before = arena.state()
    report = habackup.verify_archive(arena.backup)
    counts = habackup.extract_archive(arena.backup, arena.dest)
    assert arena.state()["outside"] == before["outside"], "written outside the destination"
    assert counts["symlinks"] == len(links)
    for name, to in links:
        path = arena.dest / name[len("data/") :]
        assert path.is_symlink(), name
        assert os.readlink(path) == to, name
    assert (arena.dest / "sub" / "inner.yaml").read_bytes() == b"inner: true\n"
    warned = {w.split('"')[1] for w in report["warnings"]}
    assert warned == leaving, report["warnings"]
    assert all("outside the config dir" in w for w in report["warnings"])


@pytest.mark.parametrize("case", ["absolute-file", "dotdot-file", "data-is-a-symlink"])
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
    error = assert_refused(arena)
    assert '"data/alias/planted.yaml"' in str(error)
    assert '"data/alias"' in str(error)


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


Outcome = tuple[str, str]


def outcome_of(call: Callable[[], object]) -> Outcome:
    """("ok", "") or (exception type, message); anything but a BackupError fails the test."""
    try:
        call()
    except habackup.BackupError as err:
        return type(err).__name__, str(err)
    return "ok", ""


def check_mutant(arena: Arena, target: Path, dest: Path, label: str) -> Outcome:
    """Extracts and verifies one mutant: both must agree, and nothing may escape or stay."""
    before = arena.state()
    try:
        habackup.read_backup(target)
    except habackup.BackupError:
        pass
    except BaseException as err:  # pragma: no cover - a failure report
        pytest.fail(f"{label}: read_backup raised {type(err).__name__}: {err}")
    try:
        verified = outcome_of(lambda: habackup.verify_archive(target))
        extracted = outcome_of(lambda: habackup.extract_archive(target, dest))
    except BaseException as err:  # pragma: no cover - a failure report
        pytest.fail(f"{label}: raised {type(err).__name__}: {err}")
    assert verified == extracted, f"{label}: verify and extract disagree"
    if extracted[0] == "ok":
        assert dest.is_dir()
        shutil.rmtree(dest)
    else:
        assert extracted[0] == "InvalidBackupError", f"{label}: {extracted}"
        assert not os.path.lexists(dest), f"{label} left its destination"
    assert arena.state() == before, f"{label} wrote outside its destination"
    assert sorted(os.listdir(target.parent)) == [target.name], f"{label} left files"
    return extracted


def test_fuzzed_backups_never_escape_or_crash(arena: Arena, valid_backup: Path) -> None:
    original = valid_backup.read_bytes()
    offset, size = inner_span(valid_backup)
    hot_end = offset + size + 1024
    rnd = random.Random(20250101)
    fuzz = arena.work / "fuzz"
    fuzz.mkdir()
    target = fuzz / "m.tar"
    outcomes = {"ok": 0, "refused": 0}
    for i in range(200):
        mutated, how = mutate(original, rnd, hot_end)
        target.write_bytes(mutated)
        kind, _ = check_mutant(arena, target, fuzz / f"dest{i}", f"mutation {i} ({how})")
        outcomes["ok" if kind == "ok" else "refused"] += 1
    # The mutations must actually exercise the refusal paths.
    assert outcomes["refused"] > 100, outcomes


# Members of every kind, for mutating inside valid gzip (where only the tar rules can object).
def rich_members(outside: Path) -> list[Member]:
    return [
        *base_members(),
        member("data/" + "n" * 120 + ".yaml", data=b"long name"),
        member("data/\u00e9t\u00e9.yaml", data=b"accents"),
        member("data/link", tarfile.SYMTYPE, linkname="ok.yaml"),
        member("data/outside", tarfile.SYMTYPE, linkname=str(outside)),
        member("data/up", tarfile.SYMTYPE, linkname="sub/.."),
        member("data/hard", tarfile.LNKTYPE, linkname="data/ok.yaml"),
        member("data/sub/deeper/", tarfile.DIRTYPE),
        member("data/sub/deeper/last.bin", data=bytes(range(256)) * 3),
    ]


NAMES = [
    b"data/link/x",
    b"data/outside/pwned",
    b"data/up/ok.yaml",
    b"data/ok.yaml/x",
    b"data/sub",
    b"data",
    b"/abs",
    b"data/../x",
    b"data/hard",
    b"data/ok.yaml",
    b"data/new\xff",
    b"other/x",
    b"",
]
LINK_NAMES = [b"ok.yaml", b"data/ok.yaml", b"data/link", b"sub", b"/etc", b"..", b"", b"data/sub"]
TYPES = b"0123456\x007xgLKSVM9\x9e"


def fix_checksum(block: bytearray) -> None:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)


def mutate_header(tar: bytes, headers: list[int], rnd: random.Random) -> tuple[bytes, str]:
    """One change to one header's fields, usually with a correct checksum (so the change reaches
    the member rules instead of failing the checksum)."""
    out = bytearray(tar)
    at = rnd.choice(headers)
    block = out[at : at + 512]
    field = rnd.choice(["type", "name", "link", "mode", "mtime", "size", "raw", "name+type"])
    if field in ("type", "name+type"):
        block[156] = rnd.choice(TYPES)
    if field in ("name", "name+type"):
        name = rnd.choice(NAMES)
        block[0:100] = name[:100].ljust(100, b"\0")
    elif field == "link":
        block[157:257] = rnd.choice(LINK_NAMES).ljust(100, b"\0")
    elif field in ("mode", "mtime", "size"):
        lo, hi = {"mode": (100, 108), "mtime": (136, 148), "size": (124, 136)}[field]
        block[lo:hi] = rnd.choice(
            [
                b"\xff" * (hi - lo),
                b"\x80" + b"\xff" * (hi - lo - 1),
                b"\x80" + bytes(hi - lo - 1),
                b"7" * (hi - lo),
                b" " * (hi - lo),
                rnd.randbytes(hi - lo),
            ]
        )
    elif field == "raw":
        block[rnd.randrange(512)] = rnd.randrange(256)
    if rnd.random() < 0.9:
        fix_checksum(block)
    out[at : at + 512] = block
    return bytes(out), f"{field}@{at}"


def test_verify_and_extract_agree_on_mutated_members(arena: Arena) -> None:
    """Mutants of the inner tar inside valid gzip: every header field, member type, name and
    link target the rules look at. verify accepts exactly what extract accepts, with the same
    message for what it refuses."""
    tar = make_tar(rich_members(arena.outside))
    with tarfile.open(fileobj=io.BytesIO(tar)) as parsed:
        # Extension headers (PAX, long names) come first; the member's own header is the last.
        infos = parsed.getmembers()
        headers = sorted({m.offset for m in infos} | {m.offset_data - 512 for m in infos})
    rnd = random.Random(11)
    fuzz = arena.work / "fuzz"
    fuzz.mkdir()
    target = fuzz / "m.tar"
    kinds: dict[str, int] = {}
    for i in range(300):
        mutated, how = mutate_header(tar, headers, rnd)
        if rnd.random() < 0.3:
            mutated, more = mutate_header(mutated, headers, rnd)
            how += " " + more
        write_backup(target, gz(mutated))
        kind, message = check_mutant(arena, target, fuzz / f"dest{i}", f"mutant {i} ({how})")
        reason = "ok" if kind == "ok" else message.split(": ", 1)[1].split(" ", 1)[0]
        kinds[reason] = kinds.get(reason, 0) + 1
        assert "Nonexhaustive" not in message, message
        assert "panicked" not in message, message
    # Both sides of the rules were reached.
    assert kinds.get("ok", 0) > 40, kinds
    assert sum(kinds.values()) - kinds.get("ok", 0) > 100, kinds
