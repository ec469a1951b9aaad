"""Check that a manylinux (glibc) wheel loads everywhere its platform tag promises.

    python scripts/check_wheel.py WHEEL --tag manylinux_2_17

Two checks, both needed:
- `auditwheel show` must find the wheel consistent with the tag: no symbol *version* of glibc
  (or of any other system library) newer than the tag allows.
- No C library function may be imported *without* a version. A wheel linked against an old
  glibc (zig's glibc 2.17 stubs) gets an unversioned import for any function that glibc lacked
  (`renameat2` before 2.28, `memfd_create` before 2.27); auditwheel ignores those, and the
  module then fails to import on exactly the systems the tag names ("undefined symbol").
  Python's C API (`Py*`, `_Py*`) is imported unversioned by design and weak imports are
  optional, so both are left out.
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerSymSection
from elftools.elf.sections import SymbolTableSection


def unversioned_imports(library: bytes) -> list[str]:
    elf = ELFFile(io.BytesIO(library))
    dynsym = elf.get_section_by_name(".dynsym")
    versions = elf.get_section_by_name(".gnu.version")
    if not isinstance(dynsym, SymbolTableSection):
        return []
    if not isinstance(versions, GNUVerSymSection):
        versions = None
    missing = []
    for index, symbol in enumerate(dynsym.iter_symbols()):
        if symbol["st_shndx"] != "SHN_UNDEF" or not symbol.name:
            continue
        if symbol["st_info"]["bind"] == "STB_WEAK" or symbol.name.startswith(("Py", "_Py")):
            continue
        version = versions.get_symbol(index)["ndx"] if versions is not None else "VER_NDX_GLOBAL"
        if version in ("VER_NDX_LOCAL", "VER_NDX_GLOBAL"):
            missing.append(symbol.name)
    return sorted(missing)


def auditwheel_tag(wheel: Path) -> str | None:
    shown = subprocess.run(
        [sys.executable, "-m", "auditwheel", "show", str(wheel)],
        capture_output=True,
        text=True,
        check=True,
    )
    text = " ".join(shown.stdout.split())
    found = re.search(r'consistent with the following platform tag: "([^"]+)"', text)
    return found.group(1) if found else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument("--tag", required=True, help="e.g. manylinux_2_17 (no architecture)")
    args = parser.parse_args(argv)
    problems = []
    tag = auditwheel_tag(args.wheel)
    if tag is None or not tag.startswith(f"{args.tag}_"):
        problems.append(f"auditwheel finds the wheel consistent with {tag}, not {args.tag}")
    with zipfile.ZipFile(args.wheel) as wheel:
        for name in wheel.namelist():
            if name.endswith(".so") or ".so." in name:
                missing = unversioned_imports(wheel.read(name))
                if missing:
                    problems.append(
                        f"{name} imports functions the tag's C library lacks (it would not load "
                        f"there): {', '.join(missing)}"
                    )
    for problem in problems:
        print(f"{args.wheel.name}: {problem}", file=sys.stderr)
    if not problems:
        print(f"{args.wheel.name}: loads on {tag}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
