"""Exclude patterns, Home Assistant style, checked on real backups: which paths reach the inner
tar. Patterns are anchored at the top of the config dir; `*` stays inside one segment, `**` spans
segments; an excluded directory goes whole."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import home_assistant_dir, relative_names

import habackup

FILES = [
    "configuration.yaml",
    "home-assistant.log",
    "home-assistant.log.1",
    "home-assistant.log.fault",
    "sub/home-assistant.log",
    "home-assistant_v2.db",
    "home-assistant_v2.db-wal",
    "home-assistant_v2.db-shm",
    "sub/home-assistant_v2.db",
    "sub/home-assistant_v2.db-wal",
    "sub/x.db-shm",
    "backups/old.tar",
    "backups/notes.txt",
    "backups/nested/x.tar",
    "another_subdir/backups/x.tar",
    "another_subdir/tts/y.mp3",
    "tts/hello.mp3",
    "tts/sub/z.mp3",
    ".cache/x",
    ".cache/deep/y",
    "__pycache__/a.pyc",
    "custom_components/x/__init__.py",
    "custom_components/x/__pycache__/a.pyc",
    ".DS_Store",
    "www/.DS_Store",
    "www/index.html",
    "OZW_Log.txt",
    "zwave/OZW_Log.txt",
    ".HA_RESTORE",
    "tmp_backups/a.tar",
    "tmp_backups/keep.txt",
    "foo",
    "sub/foo",
    "secret1.yaml",
    "secret10.yaml",
    "a/z",
    "a/b/c/z",
    "a/b/c/zz",
    "deep/one/two/three.yaml",
]
EMPTY_DIRS = ["empty"]
SYMLINKS = {"link.log": "configuration.yaml", "tts_link": "tts"}

DEFAULT = "default"
Config = tuple[str | tuple[str, ...], bool]  # (excludes, include_database)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = home_assistant_dir(tmp_path_factory.mktemp("excludes") / "config")
    for rel in FILES:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)
    for rel in EMPTY_DIRS:
        (root / rel).mkdir()
    for rel, target in SYMLINKS.items():
        (root / rel).symlink_to(target)
    return root


@pytest.fixture(scope="module")
def listing(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[Config], set[str]]:
    """Backs `tree` up once per configuration and lists the inner tar's paths."""
    cache: dict[Config, set[str]] = {}
    out = tmp_path_factory.mktemp("exclude_backups")

    def get(config: Config) -> set[str]:
        if config not in cache:
            excludes, include_database = config
            kwargs = {} if excludes == DEFAULT else {"excludes": list(excludes)}
            backup = habackup.create_archive(
                tree,
                out / f"{len(cache)}.tar",
                name="excludes",
                include_database=include_database,
                **kwargs,  # type: ignore[arg-type]
            )
            assert backup.path is not None
            cache[config] = relative_names(backup.path)
        return cache[config]

    return get


# (path inside the config dir, excludes, include_database, in the backup?)
CASES: list[tuple[str, str | tuple[str, ...], bool, bool]] = [
    # Home Assistant's defaults.
    ("configuration.yaml", DEFAULT, True, True),
    ("home-assistant.log", DEFAULT, True, False),
    ("home-assistant.log.1", DEFAULT, True, False),
    ("home-assistant.log.fault", DEFAULT, True, False),
    ("sub/home-assistant.log", DEFAULT, True, True),  # *.log is anchored at the top
    ("home-assistant_v2.db", DEFAULT, True, True),
    ("home-assistant_v2.db-wal", DEFAULT, True, True),
    ("home-assistant_v2.db-shm", DEFAULT, True, False),
    ("sub/x.db-shm", DEFAULT, True, True),
    ("backups", DEFAULT, True, True),
    ("backups/old.tar", DEFAULT, True, False),
    ("backups/notes.txt", DEFAULT, True, True),
    ("backups/nested/x.tar", DEFAULT, True, True),  # * does not cross a /
    ("another_subdir/backups/x.tar", DEFAULT, True, True),
    ("another_subdir/tts/y.mp3", DEFAULT, True, True),
    ("tts", DEFAULT, True, True),  # tts/* keeps the directory, empty
    ("tts/hello.mp3", DEFAULT, True, False),
    ("tts/sub", DEFAULT, True, False),  # an excluded directory goes whole...
    ("tts/sub/z.mp3", DEFAULT, True, False),  # ...with everything in it
    (".cache", DEFAULT, True, True),
    (".cache/x", DEFAULT, True, False),
    (".cache/deep/y", DEFAULT, True, False),
    ("__pycache__", DEFAULT, True, True),
    ("__pycache__/a.pyc", DEFAULT, True, False),
    ("custom_components/x/__init__.py", DEFAULT, True, True),
    ("custom_components/x/__pycache__", DEFAULT, True, True),
    ("custom_components/x/__pycache__/a.pyc", DEFAULT, True, False),
    (".DS_Store", DEFAULT, True, False),
    ("www/.DS_Store", DEFAULT, True, False),
    ("www/index.html", DEFAULT, True, True),
    ("OZW_Log.txt", DEFAULT, True, False),
    ("zwave/OZW_Log.txt", DEFAULT, True, True),
    (".HA_RESTORE", DEFAULT, True, False),
    ("tmp_backups/a.tar", DEFAULT, True, False),
    ("tmp_backups/keep.txt", DEFAULT, True, True),
    ("empty", DEFAULT, True, True),
    ("link.log", DEFAULT, True, False),  # a symlink is matched by its own name
    ("tts_link", DEFAULT, True, True),  # a symlink to a directory is stored, not followed
    ("tts_link/hello.mp3", DEFAULT, True, False),
    # Without the database: only the top-level recorder files go.
    ("home-assistant_v2.db", DEFAULT, False, False),
    ("home-assistant_v2.db-wal", DEFAULT, False, False),
    ("home-assistant_v2.db-shm", DEFAULT, False, False),
    ("sub/home-assistant_v2.db", DEFAULT, False, True),
    ("sub/home-assistant_v2.db-wal", DEFAULT, False, True),
    ("configuration.yaml", DEFAULT, False, True),
    ("home-assistant.log", DEFAULT, False, False),
    # Custom excludes replace the defaults.
    ("foo", ("foo",), True, False),
    ("sub/foo", ("foo",), True, True),
    ("home-assistant.log", ("foo",), True, True),
    ("tts/hello.mp3", ("foo",), True, True),
    ("backups/old.tar", ("foo",), True, True),
    ("custom_components/x/__pycache__/a.pyc", ("foo",), True, True),
    (".HA_RESTORE", ("foo",), True, True),
    ("home-assistant_v2.db", ("foo",), False, False),  # the database excludes still apply
    ("home-assistant_v2.db", ("foo",), True, True),
    (".HA_RESTORE", (), True, True),
    ("home-assistant.log", (), True, True),
    # `**` spans any number of segments, zero included.
    ("foo", ("**/foo",), True, False),
    ("sub/foo", ("**/foo",), True, False),
    ("configuration.yaml", ("**/*.yaml",), True, False),
    ("deep/one/two/three.yaml", ("**/*.yaml",), True, False),
    ("custom_components/x/__init__.py", ("**/*.yaml",), True, True),
    ("a/z", ("a/**/z",), True, False),
    ("a/b/c/z", ("a/**/z",), True, False),
    ("a/b/c/zz", ("a/**/z",), True, True),
    ("a/b", ("a/**/z",), True, True),
    ("deep/one/two/three.yaml", ("deep/*/three.yaml",), True, True),
    ("deep/one/two/three.yaml", ("deep/*/*/three.yaml",), True, False),
    # A directory pattern takes the directory whole; `dir/*` keeps it empty.
    ("sub", ("sub",), True, False),
    ("sub/foo", ("sub",), True, False),
    ("sub", ("sub/*",), True, True),
    ("sub/foo", ("sub/*",), True, False),
    ("sub", ("sub/",), True, False),
    ("foo", ("./foo",), True, False),
    # ? and [...] stay within one character.
    ("secret1.yaml", ("secret?.yaml",), True, False),
    ("secret10.yaml", ("secret?.yaml",), True, True),
    ("secret1.yaml", ("[!c]*.yaml",), True, False),
    ("configuration.yaml", ("[!c]*.yaml",), True, True),
    ("secret10.yaml", ("secret[0-9][0-9].yaml",), True, False),
]


def case_id(case: tuple[str, str | tuple[str, ...], bool, bool]) -> str:
    path, excludes, include_database, present = case
    pattern = excludes if isinstance(excludes, str) else "|".join(excludes) or "none"
    db = "" if include_database else "-nodb"
    return f"{path}[{pattern}{db}]-{'kept' if present else 'excluded'}"


@pytest.mark.parametrize(
    ("path", "excludes", "include_database", "present"), CASES, ids=[case_id(c) for c in CASES]
)
def test_exclude_table(
    listing: Callable[[Config], set[str]],
    tree: Path,
    path: str,
    excludes: str | tuple[str, ...],
    include_database: bool,
    present: bool,
) -> None:
    assert (tree / path).exists() or (tree / path).is_symlink(), f"{path} is not in the tree"
    names = listing((excludes, include_database))
    assert (path in names) is present, sorted(names)


def test_default_excludes_are_home_assistants() -> None:
    assert habackup.DEFAULT_EXCLUDES == (
        "**/__pycache__/*",
        "**/.DS_Store",
        ".HA_RESTORE",
        "*.db-shm",
        "*.log.*",
        "*.log",
        "backups/*.tar",
        "tmp_backups/*.tar",
        "OZW_Log.txt",
        "tts/*",
        ".cache/*",
    )


def test_passing_the_defaults_explicitly_changes_nothing(
    listing: Callable[[Config], set[str]],
) -> None:
    assert listing((tuple(habackup.DEFAULT_EXCLUDES), True)) == listing((DEFAULT, True))


def test_no_excludes_backs_up_everything(listing: Callable[[Config], set[str]], tree: Path) -> None:
    everything = {p.relative_to(tree).as_posix() for p in tree.rglob("*")}
    assert listing(((), True)) == everything


def test_excluded_directories_stay_as_empty_directories(tree: Path, tmp_path: Path) -> None:
    backup = habackup.create_archive(tree, tmp_path / "b.tar", name="x")
    dest = tmp_path / "restored"
    habackup.extract_archive(tmp_path / "b.tar", dest)
    assert backup.path == tmp_path / "b.tar"
    for name in ("tts", ".cache", "__pycache__", "custom_components/x/__pycache__"):
        assert (dest / name).is_dir(), name
        assert list((dest / name).iterdir()) == [], name
    assert (dest / "tts_link").is_symlink()
    assert (dest / "backups" / "notes.txt").read_text() == "backups/notes.txt"


@pytest.mark.parametrize("pattern", ["/etc", "/etc/*", ""])
def test_invalid_pattern_raises_archive_error(tree: Path, tmp_path: Path, pattern: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(habackup.ArchiveError) as info:
        habackup.create_archive(tree, out, name="x", excludes=["foo", pattern])
    assert not isinstance(info.value, habackup.InvalidBackupError)
    if pattern:
        assert pattern in str(info.value)
    assert list(out.iterdir()) == []
