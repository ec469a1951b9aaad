"""The progress line on a terminal: bytes, rate and ETA; nothing at all when stderr is not a TTY."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TextIO

# Redraw at most this often: downloads report every few KiB, and a terminal repainting at that
# rate costs more than the transfer itself.
REDRAW_INTERVAL = 0.1
BAR_WIDTH = 30
# The widest human() figure below 10 TiB ("1023.9 GiB"): columns of this width keep every frame
# of the line the same length, so the bar never changes size as the counts grow.
FIGURE_WIDTH = 10

# The progress line on screen now, if any: messages printed meanwhile go above it.
_active: Progress | None = None


def human(size: int) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


class Progress:
    """A one-line progress bar, redrawn in place with ``\\r``; callable as ``(done, total)``.

    Thread-safe: the archiver calls it from a worker thread, the agents from the event loop, the
    file watcher from its own thread.
    """

    def __init__(self, label: str, stream: TextIO) -> None:
        self.label = label
        self.stream = stream
        self.started = time.monotonic()
        self.shown = False
        self._last_draw = 0.0
        self._width = 0
        self._line = ""
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        with self._lock:
            # Always draw the first and the final state; throttle everything between.
            finished = total > 0 and done >= total
            if self.shown and not finished and now - self._last_draw < REDRAW_INTERVAL:
                return
            elapsed = max(now - self.started, 1e-6)
            rate = done / elapsed
            share = min(done / total, 1.0) if total else 1.0
            # Rounded down, bar and percentage alike: both are full only when the work is done.
            percent = 100 if finished else min(int(share * 100), 99)
            if finished:
                eta = "0s"
            elif rate > 0:
                eta = f"{(total - done) / rate:.0f}s"
            else:
                eta = "?"
            figures = (
                f"{percent:3d}% {human(done):>{FIGURE_WIDTH}} / {human(total):>{FIGURE_WIDTH}} "
                f"{human(int(rate)):>{FIGURE_WIDTH}}/s ETA {eta:>5}"
            )
            # A line wider than the terminal wraps, and "\r" then redraws only its last row.
            room = self._columns() - 1 - len(self.label) - len(figures) - 4
            width = min(BAR_WIDTH, room)
            if width >= 5:
                filled = width if finished else min(int(share * width), width - 1)
                bar = "#" * filled
                self._draw(f"{self.label} [{bar:<{width}}] {figures}", now)
            else:
                self._draw(f"{self.label} {figures}", now)

    def working(self, note: str) -> None:
        """An indeterminate line (no bar, no spinner): for work that reports no byte count."""
        now = time.monotonic()
        with self._lock:
            self._draw(f"{self.label} {note} {now - self.started:4.0f}s", now)

    def _columns(self) -> int:
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError):
            columns = 0
        # A pseudo-terminal nobody sized reports 0 columns: assume the classic 80.
        return columns or 80

    def print_above(self, text: str) -> None:
        """Print a whole line (a warning) and redraw the progress line below it."""
        with self._lock:
            if self.shown:
                self.stream.write("\r" + " " * self._width + "\r")
            self.stream.write(text + "\n")
            if self.shown:
                self.stream.write(self._line)
            self.stream.flush()

    def _draw(self, line: str, now: float) -> None:
        line = line[: self._columns() - 1]
        self._line = line
        # Pad over the rest of a longer previous line instead of relying on terminal escapes.
        padding = " " * max(self._width - len(line), 0)
        self.stream.write(f"\r{line}{padding}")
        self.stream.flush()
        self._width = len(line)
        self._last_draw = now
        self.shown = True

    def close(self) -> None:
        with self._lock:
            if self.shown:
                self.stream.write("\n")
                self.stream.flush()
                self.shown = False


@contextmanager
def terminal_progress(label: str) -> Iterator[Progress | None]:
    """A ``Progress`` on stderr when it is a terminal, else ``None`` (pipes and logs stay clean)."""
    global _active
    progress = Progress(label, sys.stderr) if sys.stderr.isatty() else None
    _active = progress
    try:
        yield progress
    finally:
        _active = None
        if progress is not None:
            progress.close()


def write_line(text: str) -> None:
    """One line on stderr, above the progress line if one is showing."""
    active = _active
    if active is None:
        print(text, file=sys.stderr)
    else:
        active.print_above(text)


class FileReadWatcher:
    """Progress for work that has no callback (extract, verify): how far it has read its file.

    The Rust reader streams the backup front to back through one file descriptor, so that fd's
    offset (``/proc/self/fdinfo/<fd>``, Linux) over the file's size is the share done. Where
    there is no /proc, or the fd is not found, the line just says the work is running.
    """

    POLL_INTERVAL = 0.2

    def __init__(self, progress: Progress | None, path: str | os.PathLike[str]) -> None:
        self.progress = progress
        self.path = os.path.realpath(path)
        try:
            self.total = Path(self.path).stat().st_size
        except OSError:
            self.total = 0
        self._fd: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="habackup-progress", daemon=True)

    def __enter__(self) -> FileReadWatcher:
        if self.progress is not None:
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.progress is None:
            return
        self._stop.set()
        self._thread.join()
        if exc_type is None:
            self.progress(self.total, self.total)

    def _run(self) -> None:
        assert self.progress is not None
        while not self._stop.wait(self.POLL_INTERVAL):
            position = self._position()
            if position is None:
                self.progress.working(f"reading {human(self.total)}...")
            else:
                # The last bytes are read before the work is done: hold at 99% until it is.
                self.progress(min(position, max(self.total - 1, 0)), self.total)

    def _position(self) -> int | None:
        try:
            if self._fd is None or os.readlink(f"/proc/self/fd/{self._fd}") != self.path:
                self._fd = self._find_fd()
            if self._fd is None:
                return None
            with open(f"/proc/self/fdinfo/{self._fd}", encoding="ascii") as info:
                for line in info:
                    if line.startswith("pos:"):
                        return int(line.split()[1])
        except (OSError, ValueError):
            # The fd closed between the two reads, or there is no /proc: no number this time.
            self._fd = None
        return None

    def _find_fd(self) -> str | None:
        for fd in os.listdir("/proc/self/fd"):
            try:
                if os.readlink(f"/proc/self/fd/{fd}") == self.path:
                    return fd
            except OSError:
                continue
        return None
