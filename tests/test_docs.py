"""``help(habackup)`` explains everything public: every class, function, method, property and
field has a docstring, and signatures read the way they are called."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import habackup

STUB = Path(habackup.__file__).with_name("_core.pyi")


def public_members(cls: type) -> Iterator[tuple[str, Any]]:
    """What ``cls`` itself defines for its users (not what every object or exception has)."""
    bases = (object, BaseException, dict)
    for name, value in vars(cls).items():
        if name.startswith("_") and name != "__init__":
            continue
        if any(name in vars(base) for base in bases if base is not cls):
            continue
        yield name, value


def test_every_public_name_has_a_docstring() -> None:
    missing: list[str] = []
    for name in habackup.__all__:
        obj = getattr(habackup, name)
        if not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        if not (obj.__doc__ or "").strip():
            missing.append(name)
        if not inspect.isclass(obj):
            continue
        for member, value in public_members(obj):
            if member == "__init__" and not inspect.isfunction(value):
                continue
            doc = getattr(value, "__doc__", None)
            if isinstance(value, classmethod | staticmethod):
                doc = value.__func__.__doc__
            # A slots dataclass's fields cannot carry docstrings: its own lists them.
            if type(value).__name__ == "member_descriptor":
                if f"``{member}``" not in (obj.__doc__ or ""):
                    missing.append(f"{name}.{member}")
                continue
            # Class attributes (TypedDict keys, constants) are data, documented by the class.
            if (
                not callable(value)
                and type(value).__name__ != "getset_descriptor"
                and not isinstance(value, property)
            ):
                continue
            if not (doc or "").strip():
                missing.append(f"{name}.{member}")
    assert missing == []


def test_signatures_read_the_way_they_are_called() -> None:
    assert str(inspect.signature(habackup.BackupSyncAgent)) == "(name)"
    backup = str(inspect.signature(habackup.Backup))
    assert "Ellipsis" not in backup
    assert backup.startswith("(*, slug, name, date, size, path=None")
    assert "synced_agents=[]" in backup
    assert "the manager fills it" in (habackup.Backup.agents.__doc__ or "")
    assert habackup.BackupSyncAgent.name.__doc__
    assert habackup.BackupManager.config_dir.__doc__
    assert habackup.BackupManager.backup_dir.__doc__


def test_typed_dicts_know_their_optional_keys() -> None:
    keys = habackup.BackupSyncMetadata.__required_keys__
    assert "database_included" not in keys
    assert "extra" not in keys
    assert "slug" in keys


def test_every_class_in_the_stub_has_a_docstring() -> None:
    tree = ast.parse(STUB.read_text())
    classes = [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    assert classes
    assert [c.name for c in classes if not ast.get_docstring(c)] == []
