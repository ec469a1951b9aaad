"""Use an installed habackup wheel once, end to end: back up a small config dir (plain and
protected), read the backup with Python's own tarfile (``r|gz``, as Home Assistant's restore
does), verify it and extract it again. Run by scripts/test.sh on the manylinux2014 wheel it
builds, and by the release workflow on every wheel on its own platform (Alpine for musl).

    python scripts/smoke_wheel.py [--installed-in DIR]

``--installed-in`` makes sure the habackup under test is the one installed in DIR (not a
development install that happens to come first on the path).
"""

from __future__ import annotations

import argparse
import io
import platform
import sys
import tarfile
import tempfile
from pathlib import Path

import habackup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--installed-in", type=Path)
    args = parser.parse_args(argv)
    module = Path(habackup.__file__).resolve()
    if args.installed_in is not None and not module.is_relative_to(args.installed_in.resolve()):
        sys.exit(f"habackup was imported from {module}, not from {args.installed_in}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = root / "config"
        (config / ".storage").mkdir(parents=True)
        (config / ".HA_VERSION").write_text("2025.4.4")
        (config / "configuration.yaml").write_text("default_config:\n" * 1000)
        (config / ".storage" / "core.uuid").write_text('{"data": {"uuid": "0"}}')
        (config / "shared.yaml").symlink_to("/share/secrets.yaml")

        backup = habackup.create_archive(config, root / "plain.tar", name="smoke")
        with tarfile.open(backup.path) as outer:
            inner = outer.extractfile("homeassistant.tar.gz")
            assert inner is not None
            with tarfile.open(fileobj=io.BytesIO(inner.read()), mode="r|gz") as tar:
                names = sorted(member.name for member in tar)
        expected = [
            "data",
            "data/.HA_VERSION",
            "data/.storage",
            "data/.storage/core.uuid",
            "data/configuration.yaml",
            "data/shared.yaml",
        ]
        assert names == expected, names
        assert habackup.verify_archive(backup.path)["members"] == len(expected)

        protected = habackup.create_archive(
            config, root / "protected.tar", name="smoke", password="pw"
        )
        counts = habackup.extract_archive(protected.path, root / "restored", password="pw")
        assert counts["files"] == 3, counts
        restored = (root / "restored" / "configuration.yaml").read_text()
        assert restored == (config / "configuration.yaml").read_text()
    libc = " ".join(platform.libc_ver()) or "musl"
    where = f"{platform.machine()}, {libc}, Python {platform.python_version()}"
    print(f"habackup from {module.parent}: OK on {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
