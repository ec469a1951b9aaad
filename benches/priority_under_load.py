"""Does a backup finish on a busy machine, and does the event loop keep its timing on a quiet one?

    python benches/priority_under_load.py --size 1GiB [--data DIR] [--rounds 1] \
        [--priorities background,idle] [--busy 2] [--limit 10] [--out results.md]

For each ``HABACKUP_PRIORITY`` value, in a fresh child process each: ``create_archive`` on a
quiet machine; the same while ``--busy`` processes spin at nice 0 (the user's own load; they
start before the backup and stop after it); and ``await async_create_archive(...)`` with a 1 ms
``asyncio.sleep`` ticker on a quiet machine, as in ``e2e.py``. A run under load that takes more
than ``--limit`` times its quiet time is stopped and reported as "> limit". Every backup made
under load is verified. See benches/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from e2e import (
    MiB,
    _percentile,
    _ticker,
    check_idle,
    ensure_dataset,
    log,
    remove,
    rotate,
    versions,
    warm_page_cache,
)
from gen_dataset import parse_size

Result = dict[str, Any]
BUSY_LOOP = "while True: pass"
# Long enough for the busy loops to be running on every core before the backup starts.
BUSY_WARMUP = 0.5
# The ticker alone, to tell the backup's lag from what the rest of the machine causes.
BASELINE_SECONDS = 10.0


# --- child: one measurement -----------------------------------------------------------------


def run_create(data: Path, out: Path) -> Result:
    import habackup

    start = time.perf_counter()
    habackup.create_archive(data, out, name="bench")
    return {"wall": time.perf_counter() - start}


async def run_lag(data: Path | None, out: Path) -> Result:
    """Loop lag while a backup of ``data`` runs, or for ``BASELINE_SECONDS`` of no backup."""
    import habackup

    stop, lags = asyncio.Event(), []
    ticker = asyncio.create_task(_ticker(stop, lags))
    start = time.perf_counter()
    if data is None:
        await asyncio.sleep(BASELINE_SECONDS)
    else:
        await habackup.async_create_archive(data, out, name="bench")
    wall = time.perf_counter() - start
    stop.set()
    await ticker
    return {
        "wall": wall,
        "ticks": len(lags),
        "p50_ms": 1000 * _percentile(lags, 0.50),
        "p99_ms": 1000 * _percentile(lags, 0.99),
        "max_ms": 1000 * max(lags),
    }


# --- parent ---------------------------------------------------------------------------------


@contextmanager
def busy_loops(count: int) -> Iterator[None]:
    """``count`` processes spinning at nice 0, like a user's own work saturating the cores."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BUSY_LOOP],
            preexec_fn=lambda: os.setpriority(os.PRIO_PROCESS, 0, 0),
        )
        for _ in range(count)
    ]
    try:
        time.sleep(BUSY_WARMUP)
        yield
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def child(kind: str, priority: str, data: Path, out: Path, timeout: float | None) -> Result | None:
    """Runs one measurement in a fresh process; ``None`` when it ran past ``timeout``."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--run-one", kind]
    cmd += ["--data", str(data), "--target", str(out)]
    env = {**os.environ, "HABACKUP_PRIORITY": priority}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        remove_output(out)
        return None
    if kind != "create-keep":
        remove_output(out)
    if proc.returncode != 0:
        sys.exit(f"{kind} ({priority}) failed ({proc.returncode}):\n{stderr}")
    result: Result = json.loads(stdout.strip().splitlines()[-1])
    return result


def remove_output(out: Path) -> None:
    if out.exists():
        remove(out)
    os.sync()


def verify(out: Path) -> str:
    """Verifies ``out`` (untimed): "ok" with its member count, or what is wrong."""
    import habackup
    from habackup.errors import BackupError

    try:
        found = habackup.verify_archive(out)
    except BackupError as err:
        return f"FAILED: {err}"
    return f"ok ({found['members']} members)"


def measure(
    args: argparse.Namespace, data: Path, work: Path
) -> tuple[dict[str, dict[str, list[Any]]], list[Result]]:
    results: dict[str, dict[str, list[Any]]] = {
        p: {"quiet": [], "busy": [], "lag": [], "verified": []} for p in args.priorities
    }
    baselines: list[Result] = []
    for round_ in range(args.rounds):
        baseline = child("lag-baseline", "normal", data, work / "unused", None)
        assert baseline is not None
        baselines.append(baseline)
        log(
            f"round {round_ + 1} no backup: loop lag p99 {baseline['p99_ms']:.2f} ms, "
            f"max {baseline['max_ms']:.2f} ms"
        )
        for priority in rotate(args.priorities, round_):
            out = work / "bench.tar"
            quiet = child("create", priority, data, out, None)
            assert quiet is not None
            results[priority]["quiet"].append(quiet["wall"])
            log(f"round {round_ + 1} {priority}: quiet {quiet['wall']:.2f} s")

            limit = args.limit * quiet["wall"]
            with busy_loops(args.busy):
                busy = child("create-keep", priority, data, out, limit)
            if busy is None:
                results[priority]["busy"].append(None)
                log(f"round {round_ + 1} {priority}: busy stopped after {limit:.1f} s")
            else:
                results[priority]["busy"].append(busy["wall"])
                log(f"round {round_ + 1} {priority}: busy {busy['wall']:.2f} s")
                results[priority]["verified"].append(verify(Path(busy["path"])))
                remove_output(Path(busy["path"]))

            lag = child("lag", priority, data, out, None)
            assert lag is not None
            results[priority]["lag"].append(lag)
            log(
                f"round {round_ + 1} {priority}: loop lag p99 {lag['p99_ms']:.2f} ms, "
                f"max {lag['max_ms']:.2f} ms ({lag['ticks']} ticks, {lag['wall']:.2f} s)"
            )
    return results, baselines


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _lag_cell(runs: Sequence[Result]) -> str:
    """Median p50 and p99 over the rounds, and the worst max."""
    medians = [f"{statistics.median(r[key] for r in runs):.2f}" for key in ("p50_ms", "p99_ms")]
    return " / ".join([*medians, f"{max(r['max_ms'] for r in runs):.2f}"])


def report(
    args: argparse.Namespace,
    data: Path,
    size: int,
    results: dict[str, dict[str, list[Any]]],
    baselines: Sequence[Result],
) -> str:
    lines = [
        f"# Priority under load: {size / MiB:.0f} MiB, {args.busy} busy loops at nice 0, "
        f"{os.cpu_count()} CPUs",
        "",
        f"{versions()}; dataset `{data}`; {args.rounds} round(s), medians; "
        f"runs under load stopped after {args.limit:g}x the quiet time.",
        "",
        "| HABACKUP_PRIORITY | quiet (s) | busy (s) | busy / quiet | verified | "
        "loop lag p50 / p99 / max (ms), quiet |",
        "|---|---:|---:|---:|---|---|",
    ]
    for priority, runs in results.items():
        quiet = statistics.median(runs["quiet"])
        finished = [w for w in runs["busy"] if w is not None]
        if len(finished) == len(runs["busy"]):
            busy = statistics.median(finished)
            busy_cells = [f"{busy:.2f}", f"{busy / quiet:.1f}x"]
        else:
            busy_cells = [f"> {args.limit * quiet:.1f}", f"> {args.limit:g}x"]
        verified = ", ".join(runs["verified"]) or "-"
        lag = _lag_cell(runs["lag"])
        lines.append(_row([f"`{priority}`", f"{quiet:.2f}", *busy_cells, verified, lag]))
    lines += [
        "",
        f"Loop lag with no backup running ({BASELINE_SECONDS:g} s per round): "
        f"{_lag_cell(baselines)} ms (p50 / p99 / max), what the rest of the machine causes.",
        "",
        "Command: `python benches/priority_under_load.py " + " ".join(args.argv) + "`",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1GiB")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--priorities", default="background,idle")
    parser.add_argument("--busy", type=int, default=2, help="busy loops at nice 0 (default 2)")
    parser.add_argument(
        "--limit", type=float, default=10.0, help="stop runs under load after this many quiet times"
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--run-one",
        choices=("create", "create-keep", "lag", "lag-baseline"),
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--target", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.size_text = args.size
    args.size = parse_size(args.size)
    args.priorities = [p.strip() for p in args.priorities.split(",") if p.strip()]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.run_one:
        if args.run_one.startswith("lag"):
            data = None if args.run_one == "lag-baseline" else args.data
            result = asyncio.run(run_lag(data, args.target))
        else:
            result = run_create(args.data, args.target)
            result["path"] = str(args.target)
        print(json.dumps(result))
        return 0
    if os.getpriority(os.PRIO_PROCESS, 0) != 0:
        sys.exit("run at nice 0: the busy loops stand for the user's own work at normal priority")
    data = args.data or Path("bench-data") / args.size_text
    ensure_dataset(data, args.size)
    warm_page_cache(data)
    os.sync()
    notes: list[str] = []
    check_idle(notes, "before the run")
    with tempfile.TemporaryDirectory(prefix="priority-bench-", dir=data.parent) as work:
        results, baselines = measure(args, data, Path(work))
    check_idle(notes, "after the run")
    text = report(args, data, args.size, results, baselines) + "".join(f"\n{n}\n" for n in notes)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
