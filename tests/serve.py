"""Serve the test servers to a test run in another Python: ``python tests/serve.py OUT.json``.

The Home Assistant suite runs in venvs (and a chroot) of its own, without moto, wsgidav or
Node.js. ``scripts/ha-test.sh`` starts the servers once with the main test venv through this
script and hands their endpoints over: it writes them as JSON to OUT.json (complete once it
exists: written under another name and renamed), then serves until SIGTERM or SIGINT and stops
every server (they also die with this process). All listen on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from types import FrameType

from servers import run_azurite, run_moto, run_wsgidav


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(out: Path) -> None:
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="habackup-servers-")))
        (tmp / "dav").mkdir()
        (tmp / "azurite").mkdir()
        s3 = stack.enter_context(run_moto(tmp))
        dav = stack.enter_context(run_wsgidav(tmp / "dav", tmp))
        azure = stack.enter_context(run_azurite(tmp / "azurite", tmp))
        endpoints = {"s3": asdict(s3), "webdav": asdict(dav), "azure": asdict(azure)}
        endpoints["webdav"]["root"] = str(dav.root)
        endpoints["azure"].pop("_names", None)
        partial = out.with_name(out.name + ".partial")
        partial.write_text(json.dumps(endpoints, default=str))
        os.replace(partial, out)
        signal.pause()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/serve.py OUT.json")
    main(Path(sys.argv[1]))
