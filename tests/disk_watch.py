"""Disk use under a folder, sampled from a thread of its own while something runs: which files
appeared, and the most bytes they took beyond what was there before. Used by the Home Assistant
suite (nothing but Home Assistant's own file under the config dir) and benches/ha_adapter.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path


class DiskWatch:
    """Samples every file under ``root`` every few milliseconds, from a thread of its own (the
    event loop never waits on it), while the ``async with`` block runs: which files appeared, and
    the most bytes that files other than ``allowed`` held beyond what was there before (disk
    blocks, so sparse files count what they take), and the most that ``allowed`` ones held."""

    def __init__(
        self,
        root: Path,
        allowed: Callable[[str], bool] = lambda name: False,
        *,
        interval: float = 0.005,
    ) -> None:
        self.root = root
        self.interval = interval
        self.allowed = allowed
        self.appeared: set[str] = set()
        self.peak_extra = 0
        self.peak_allowed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._before: dict[str, int] = {}

    def _sizes(self) -> dict[str, int]:
        sizes = {}
        for folder, _dirs, names in os.walk(self.root):
            for name in names:
                path = os.path.join(folder, name)
                with contextlib.suppress(FileNotFoundError):
                    sizes[os.path.relpath(path, self.root)] = os.lstat(path).st_blocks * 512
        return sizes

    def _sample(self) -> None:
        extra = allowed = 0
        for name, size in self._sizes().items():
            grown = size - self._before.get(name, 0)
            if name not in self._before:
                self.appeared.add(name)
            if grown <= 0:
                continue
            if self.allowed(name):
                allowed += grown
            else:
                extra += grown
        self.peak_extra = max(self.peak_extra, extra)
        self.peak_allowed = max(self.peak_allowed, allowed)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    async def __aenter__(self) -> DiskWatch:
        self._before = await asyncio.to_thread(self._sizes)
        self._thread.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.to_thread(self._thread.join)
        await asyncio.to_thread(self._sample)
