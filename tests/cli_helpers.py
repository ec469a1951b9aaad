"""Running ``python -m habackup`` the way an operator does: in a subprocess, on a pipe or on a
pseudo-terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "config"


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "habackup", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def run_on_terminal(*args: str | Path, columns: int = 0) -> tuple[int, bytes]:
    """Run with stderr on a pseudo-terminal (stdout discarded); returns (exit code, stderr)."""
    controller, terminal = pty.openpty()
    if columns:
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "habackup", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=terminal,
    )
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO once the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    code = proc.wait(timeout=120)
    os.close(controller)
    return code, seen


def store_url(directory: Path) -> str:
    return directory.absolute().as_uri()
