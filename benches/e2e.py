"""End-to-end benchmark: habackup against Home Assistant's own ways of writing a backup.

    python benches/e2e.py --size 1GiB [--data DIR] [--rounds 2] [--out results.md]

Every measurement runs in a fresh child process (``--run-one NAME``) so that peak RSS is the
contender's own; contenders are interleaved round robin so that drift on the machine hits all
of them alike. See benches/README.md for what each row means.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib.util
import io
import json
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from fnmatch import translate
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path, PurePath
from typing import Any

from gen_dataset import generate, parse_size

MiB = 1 << 20
# Home Assistant's backup manager patterns (homeassistant/components/backup/const.py), kept
# here so the pure-Python contenders never import habackup (that would inflate their RSS).
HA_EXCLUDES = (
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
# Home Assistant passes a 4 MiB bufsize to the outer tar.
BUF_SIZE = 4 * MiB
TICK = 0.001
IDLE_TICKER_SECONDS = 3.0
CREATE = ("habackup", "tarfile", "securetar", "pigz")
EXTRACT = ("extract-habackup", "extract-tarfile")
LAG = (
    "lag-idle",
    "lag-habackup",
    "lag-habackup-progress",
    "lag-habackup-1thread",
    "lag-tarfile-executor",
)
LAG_LABELS = {
    "lag-idle": f"nothing (idle loop, {IDLE_TICKER_SECONDS:g} s)",
    "lag-habackup": "`await habackup.async_create_archive(...)`",
    "lag-habackup-progress": "`await habackup.async_create_archive(..., on_progress=cb)`",
    # With one compression thread a core stays free: tells CPU contention from GIL holding.
    "lag-habackup-1thread": "`await habackup.async_create_archive(..., threads=1)`",
    "lag-tarfile-executor": "tarfile backup in `loop.run_in_executor` (what HA does today)",
}

Result = dict[str, Any]


# --- Home Assistant's exclude filter -------------------------------------------------------

Segments = tuple[re.Pattern[str] | None, ...]


def _compile(pattern: str) -> Segments:
    # None stands for "**": any number of whole segments, as in PurePath.full_match.
    return tuple(
        None if seg == "**" else re.compile(translate(seg)) for seg in f"data/{pattern}".split("/")
    )


def _match(parts: Sequence[str], pattern: Segments) -> bool:
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head is None:
        return any(_match(parts[i:], rest) for i in range(len(parts) + 1))
    return bool(parts) and head.match(parts[0]) is not None and _match(parts[1:], rest)


def make_exclude_filter(patterns: Sequence[str]) -> Callable[[PurePath], bool]:
    """HA's ``is_excluded_by_filter``: ``path.full_match(f"data/{pattern}")`` for any pattern."""
    if hasattr(PurePath, "full_match"):  # Python 3.13+, exactly what Home Assistant calls
        full = [f"data/{p}" for p in patterns]
        return lambda path: any(path.full_match(p) for p in full)  # type: ignore[attr-defined]
    compiled = [_compile(p) for p in patterns]
    return lambda path: any(_match(path.parts, c) for c in compiled)


def included_files(root: Path, is_excluded: Callable[[PurePath], bool]) -> tuple[int, int]:
    """Bytes and entries a backup of ``root`` holds, walking the way atomic_contents_add does."""
    total, entries = 0, 1
    stack = [(root, PurePath("data"))]
    while stack:
        folder, arc = stack.pop()
        for entry in os.scandir(folder):
            arcpath = arc / entry.name
            if is_excluded(arcpath):
                continue
            entries += 1
            if entry.is_dir(follow_symlinks=False):
                stack.append((Path(entry.path), arcpath))
            elif entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
    return total, entries


# --- contenders that create a backup -------------------------------------------------------


def _backup_json(name: str) -> bytes:
    date = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    slug = hashlib.sha1(f"{date} - {name}".encode()).hexdigest()[:8]
    return json.dumps(
        {
            "compressed": True,
            "date": date,
            "extra": {},
            "folders": [],
            "addons": [],
            "homeassistant": {"exclude_database": False, "version": "2025.4.4"},
            "name": name,
            "protected": False,
            "slug": slug,
            "type": "partial",
            "version": 2,
        }
    ).encode()


def _add_backup_json(outer: tarfile.TarFile, name: str) -> None:
    raw = _backup_json(name)
    info = tarfile.TarInfo("./backup.json")
    info.size, info.mtime = len(raw), int(time.time())
    outer.addfile(info, io.BytesIO(raw))


@contextmanager
def _inner_gzip_tar(outer: tarfile.TarFile, name: str) -> Iterator[tarfile.TarFile]:
    """Stream a gzip tar straight into ``outer`` and patch its header after, like securetar."""
    fileobj = outer.fileobj
    assert fileobj is not None
    info = tarfile.TarInfo(name)
    # A float mtime forces a PAX header, so the size field can be rewritten at the same length.
    info.mtime = time.time()
    header_pos = fileobj.tell()
    header = info.tobuf(outer.format, outer.encoding, outer.errors)
    fileobj.write(header)
    with tarfile.open(fileobj=fileobj, mode="w:gz", compresslevel=6, dereference=False) as inner:
        yield inner
    end = fileobj.tell()
    info.size = end - header_pos - len(header)
    padding = -info.size % tarfile.BLOCKSIZE
    fileobj.write(tarfile.NUL * padding)
    fileobj.seek(header_pos)
    fileobj.write(info.tobuf(outer.format, outer.encoding, outer.errors))
    fileobj.seek(end + padding)
    outer.offset += len(header) + info.size + padding
    outer.members.append(info)


def add_tree(
    tar: tarfile.TarFile, origin: Path, is_excluded: Callable[[PurePath], bool], arcname: str
) -> None:
    """securetar's atomic_contents_add: directories alone (keeps empty ones), then recurse."""
    tar.add(origin.as_posix(), arcname=arcname, recursive=False)
    for item in origin.iterdir():
        item_arc = PurePath(arcname, item.name)
        if is_excluded(item_arc):
            continue
        if item.is_dir() and not item.is_symlink():
            add_tree(tar, item, is_excluded, item_arc.as_posix())
        else:
            tar.add(item.as_posix(), arcname=item_arc.as_posix(), recursive=False)


def _fsync(path: Path) -> None:
    # habackup fsyncs before it reports success; the others are made to do the same.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_with_tarfile(data: Path, out: Path) -> None:
    is_excluded = make_exclude_filter(HA_EXCLUDES)
    with tarfile.open(out, "w:", bufsize=BUF_SIZE, format=tarfile.PAX_FORMAT) as outer:
        _add_backup_json(outer, "bench")
        with _inner_gzip_tar(outer, "homeassistant.tar.gz") as inner:
            if not is_excluded(PurePath("data")):
                add_tree(inner, data, is_excluded, "data")
    _fsync(out)


def _securetar_creator() -> Callable[[Path, Path], None]:
    from securetar import SecureTarArchive, atomic_contents_add

    def create(data: Path, out: Path) -> None:
        is_excluded = make_exclude_filter(HA_EXCLUDES)
        with SecureTarArchive(out, "w", bufsize=BUF_SIZE) as archive:
            _add_backup_json(archive.tar, "bench")
            with archive.create_tar("homeassistant.tar.gz", gzip=True) as inner:
                atomic_contents_add(inner, data, is_excluded, arcname="data")
        _fsync(out)

    return create


def _habackup_creator() -> Callable[[Path, Path], None]:
    import habackup

    def create(data: Path, out: Path) -> None:
        habackup.create_archive(data, out, name="bench")

    return create


def gnu_tar_excludes(patterns: Sequence[str]) -> list[str]:
    """HA's patterns as GNU tar options: anchored at the top, ``*`` within one segment."""
    anchored = ["--anchored", "--no-wildcards-match-slash"]
    floating = ["--no-anchored"]
    for pattern in patterns:
        if pattern.startswith("**/"):
            floating.append(f"--exclude={pattern[3:]}")
        else:
            anchored.append(f"--exclude=./{pattern}")
    return anchored + floating


def _timed(cmd: list[str], report: Path) -> list[str]:
    # GNU time's own footprint is tiny, so the peak RSS the kernel hands on across exec is too.
    if not Path("/usr/bin/time").exists():
        return cmd
    return ["/usr/bin/time", "-f", "%M %U %S", "-o", str(report), *cmd]


def _time_report(report: Path) -> tuple[int, float] | None:
    """Peak RSS (KiB) and CPU seconds that GNU time wrote, if it ran."""
    if not report.exists():
        return None
    peak, user, system = report.read_text().split()[-3:]
    return int(peak), float(user) + float(system)


def create_with_pigz(data: Path, out: Path) -> Result:
    """``tar | pigz -p2 -6``; its peak RSS is tar's plus pigz's (they run side by side)."""
    reports = [out.with_name(out.name + ".tar-time"), out.with_name(out.name + ".pigz-time")]
    tar_cmd = ["tar", "-C", str(data), r"--transform=s,^\.,data,"]
    tar_cmd += [*gnu_tar_excludes(HA_EXCLUDES), "-cf", "-", "."]
    with out.open("wb") as sink:
        tar = subprocess.Popen(_timed(tar_cmd, reports[0]), stdout=subprocess.PIPE)
        pigz_cmd = _timed(["pigz", "-p2", "-6"], reports[1])
        pigz = subprocess.Popen(pigz_cmd, stdin=tar.stdout, stdout=sink)
        assert tar.stdout is not None
        tar.stdout.close()
        for proc in (tar, pigz):
            if proc.wait():
                raise subprocess.CalledProcessError(proc.returncode, proc.args)
        os.fsync(sink.fileno())
    usages = [_time_report(r) for r in reports]
    for report in reports:
        report.unlink(missing_ok=True)
    if None in usages:
        return {"peak_kib": None, "cpu": None}
    return {
        "peak_kib": sum(u[0] for u in usages if u),
        "cpu": sum(u[1] for u in usages if u),
    }


# --- children: one measurement each --------------------------------------------------------


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_kib() -> int:
    # Not ru_maxrss: on Linux it carries the parent's high-water mark across fork and exec.
    with suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def member_names(path: Path) -> list[str]:
    """Inner member names of a backup (or of a bare tar.gz), for comparing contenders."""
    with tarfile.open(path, "r:*") as outer:
        inner_member = next((m for m in outer if m.name.endswith("homeassistant.tar.gz")), None)
        if inner_member is None:
            return sorted(m.name.rstrip("/") for m in tarfile.open(path, "r:gz"))
        stream = outer.extractfile(inner_member)
        assert stream is not None
        with tarfile.open(fileobj=stream, mode="r|gz") as inner:
            return sorted(m.name.rstrip("/") for m in inner)


def run_create(name: str, data: Path, out: Path, verify: bool) -> Result:
    if name == "pigz":
        start = time.perf_counter()
        result: Result = {**create_with_pigz(data, out), "idle_kib": None}
        result["wall"] = time.perf_counter() - start
    else:
        creators: dict[str, Callable[[], Callable[[Path, Path], None]]] = {
            "habackup": _habackup_creator,
            "tarfile": lambda: create_with_tarfile,
            "securetar": _securetar_creator,
        }
        create = creators[name]()
        idle, cpu0, start = _peak_kib(), _cpu_seconds(), time.perf_counter()
        create(data, out)
        wall = time.perf_counter() - start
        result = {
            "wall": wall,
            "cpu": _cpu_seconds() - cpu0,
            "peak_kib": _peak_kib(),
            "idle_kib": idle,
        }
    result["out_size"] = out.stat().st_size
    if verify:
        names = member_names(out)
        result["members"] = len(names)
        result["members_sha"] = hashlib.sha256("\n".join(names).encode()).hexdigest()
    return result


def extract_with_tarfile(backup: Path, dest: Path) -> None:
    """Home Assistant's restore: stream the inner gzip tar out of the outer one."""
    with tarfile.open(backup, "r:") as outer:
        member = next(m for m in outer if m.name.endswith("homeassistant.tar.gz"))
        stream = outer.extractfile(member)
        assert stream is not None
        with tarfile.open(fileobj=stream, mode="r|gz") as inner:
            inner.extractall(dest, filter="fully_trusted")


def run_extract(name: str, backup: Path, dest: Path) -> Result:
    if name == "extract-habackup":
        import habackup

        def extract(src: Path, dst: Path) -> None:
            habackup.extract_archive(src, dst)
    else:
        extract = extract_with_tarfile
    idle, cpu0, start = _peak_kib(), _cpu_seconds(), time.perf_counter()
    extract(backup, dest)
    wall = time.perf_counter() - start
    files = sum(len(names) for _, _, names in os.walk(dest))
    return {
        "wall": wall,
        "cpu": _cpu_seconds() - cpu0,
        "peak_kib": _peak_kib(),
        "idle_kib": idle,
        "files": files,
    }


async def _ticker(stop: asyncio.Event, lags: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        expected = loop.time() + TICK
        await asyncio.sleep(TICK)
        # asyncio may wake a hair early (clock resolution); early is not lag.
        lags.append(max(0.0, loop.time() - expected))


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _lag_work(name: str, data: Path, out: Path) -> Awaitable[object]:
    if name == "lag-idle":
        return asyncio.sleep(IDLE_TICKER_SECONDS)
    if name == "lag-tarfile-executor":
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(None, create_with_tarfile, data, out)
    import habackup

    progress = (lambda done, total: None) if name == "lag-habackup-progress" else None
    threads = 1 if name == "lag-habackup-1thread" else None
    return habackup.async_create_archive(
        data, out, name="bench", on_progress=progress, threads=threads
    )


async def _measure_lag(name: str, data: Path, out: Path) -> Result:
    work = _lag_work(name, data, out)
    stop, lags = asyncio.Event(), []
    ticker = asyncio.create_task(_ticker(stop, lags))
    start = time.perf_counter()
    await work
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


def run_one(args: argparse.Namespace) -> Result:
    name = args.run_one
    if name in CREATE:
        return run_create(name, args.data, args.target, args.verify)
    if name in EXTRACT:
        return run_extract(name, args.backup, args.target)
    return asyncio.run(_measure_lag(name, args.data, args.target))


# --- parent: orchestration ------------------------------------------------------------------


@dataclass
class Setup:
    data: Path
    work: Path
    dataset_bytes: int
    dataset_files: int
    included_bytes: int
    included_entries: int
    contenders: list[str]
    notes: list[str]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def child(name: str, setup: Setup, target: Path, *extra: str) -> Result:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--run-one",
        name,
        "--data",
        str(setup.data),
        "--target",
        str(target),
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{name} failed ({proc.returncode}):\n{proc.stderr}")
    # Flush dirty pages now, untimed, so one contender's writeback doesn't slow the next.
    os.sync()
    result: Result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def ensure_dataset(data: Path, size: int) -> None:
    if data.exists():
        log(f"dataset: reusing {data}")
        return
    log(f"dataset: generating {size / MiB:.0f} MiB into {data} ...")
    start = time.perf_counter()
    data.parent.mkdir(parents=True, exist_ok=True)
    generate(data, size)
    log(f"dataset: generated in {time.perf_counter() - start:.1f} s")


def warm_page_cache(data: Path) -> tuple[int, int]:
    """Read every file once so that every contender reads from the page cache."""
    total = files = 0
    for folder, _, names in os.walk(data):
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                while chunk := f.read(MiB):
                    total += len(chunk)
            files += 1
    return total, files


def find_pigz(notes: list[str]) -> bool:
    if shutil.which("pigz") is None and shutil.which("apt-get") is not None:
        log("pigz not found; trying apt-get install -y pigz once")
        subprocess.run(["apt-get", "install", "-y", "-q", "pigz"], capture_output=True, check=False)
    if shutil.which("pigz") is None:
        notes.append("pigz skipped: not on PATH and `apt-get install pigz` failed.")
        return False
    tar_version = subprocess.run(["tar", "--version"], capture_output=True, text=True, check=False)
    if "GNU tar" not in tar_version.stdout:
        notes.append("pigz skipped: its exclude options need GNU tar.")
        return False
    return True


def _cpu_ticks() -> tuple[int, int]:
    """Busy and total jiffies of all CPUs since boot."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:8]]
    return sum(fields) - fields[3] - fields[4], sum(fields)  # minus idle and iowait


def check_idle(notes: list[str], when: str, seconds: float = 2.0) -> None:
    """Note how busy the machine is while we sleep: other work skews every number."""
    try:
        busy0, total0 = _cpu_ticks()
        time.sleep(seconds)
        busy1, total1 = _cpu_ticks()
    except OSError:
        return
    busy = (busy1 - busy0) / max(1, total1 - total0)
    load = os.getloadavg()[0]
    log(f"CPU busy with other work {when}: {100 * busy:.0f} % (load average {load:.2f})")
    if busy > 0.10:
        notes.append(
            f"**The machine was not idle {when}**: other processes kept {100 * busy:.0f} % of "
            f"the CPUs busy (load average {load:.2f}); treat the numbers as noisy."
        )


def prepare(args: argparse.Namespace) -> Setup:
    data = args.data or Path("bench-data") / args.size_text
    ensure_dataset(data, args.size)
    notes: list[str] = []
    start = time.perf_counter()
    dataset_bytes, dataset_files = warm_page_cache(data)
    # A freshly generated dataset is still dirty; its writeback would land on the first run.
    os.sync()
    log(f"warm-up read: {dataset_bytes / MiB:.0f} MiB in {time.perf_counter() - start:.1f} s")
    check_idle(notes, "before the run")
    included, entries = included_files(data, make_exclude_filter(HA_EXCLUDES))
    contenders = ["habackup", "tarfile"]
    if importlib.util.find_spec("securetar") is not None:
        contenders.append("securetar")
    else:
        notes.append("securetar skipped: not importable (`pip install securetar`).")
    if find_pigz(notes):
        contenders.append("pigz")
    work = data.with_name(data.name + ".work")
    remove(work)
    work.mkdir(parents=True)
    return Setup(data, work, dataset_bytes, dataset_files, included, entries, contenders, notes)


def rotate(items: Sequence[str], by: int) -> list[str]:
    # Each round starts with a different contender so no one always runs first.
    by %= len(items)
    return [*items[by:], *items[:by]]


def bench_create(setup: Setup, rounds: int) -> tuple[dict[str, list[Result]], Path]:
    results: dict[str, list[Result]] = {name: [] for name in setup.contenders}
    source = setup.work / "source.tar"
    for r in range(rounds):
        for name in rotate(setup.contenders, r):
            out = setup.work / f"{name}.out"
            remove(out)
            extra = ("--verify",) if r == 0 else ()
            result = child(name, setup, out, *extra)
            log(f"round {r + 1}/{rounds} create {name:<10} {result['wall']:7.2f} s")
            results[name].append(result)
            if name == "habackup":
                out.replace(source)  # the last one feeds the extraction benchmark
            remove(out)
    return results, source


def bench_extract(setup: Setup, source: Path, rounds: int) -> dict[str, list[Result]]:
    results: dict[str, list[Result]] = {name: [] for name in EXTRACT}
    for r in range(rounds):
        for name in rotate(EXTRACT, r):
            dest = setup.work / name
            remove(dest)
            result = child(name, setup, dest, "--backup", str(source))
            log(f"round {r + 1}/{rounds} {name:<18} {result['wall']:7.2f} s")
            results[name].append(result)
            remove(dest)
            os.sync()
    return results


def bench_lag(setup: Setup) -> dict[str, Result]:
    results = {}
    for name in LAG:
        out = setup.work / f"{name}.out"
        result = results[name] = child(name, setup, out)
        log(f"{name:<22} p99 {result['p99_ms']:7.2f} ms, max {result['max_ms']:.1f} ms")
        remove(out)
    return results


# --- report ---------------------------------------------------------------------------------


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def _median(results: Sequence[Result], key: str) -> float:
    return statistics.median(r[key] for r in results)


_SPEED_HEADER = ("wall s (median)", "each round", "CPU s", "MiB/s", "speedup vs tarfile")
_MEMORY_HEADER = ("peak RSS MiB", "RSS above idle import MiB")


def _speed_cells(setup: Setup, runs: Sequence[Result], base_wall: float) -> list[str]:
    wall = _median(runs, "wall")
    cpu = "n/a" if runs[0]["cpu"] is None else f"{_median(runs, 'cpu'):.1f}"
    return [
        f"{wall:.2f}",
        " / ".join(f"{r['wall']:.2f}" for r in runs),
        cpu,
        f"{setup.included_bytes / MiB / wall:.0f}",
        f"{base_wall / wall:.2f}x",
    ]


def _memory_cells(runs: Sequence[Result]) -> list[str]:
    if runs[0]["peak_kib"] is None:
        return ["not measured (no /usr/bin/time)", "n/a"]
    peak = max(r["peak_kib"] for r in runs)
    idle = runs[0]["idle_kib"]
    above = "n/a (no interpreter)" if idle is None else f"{(peak - idle) / 1024:.1f}"
    return [f"{peak / 1024:.0f}", above]


def create_table(setup: Setup, results: dict[str, list[Result]]) -> list[str]:
    base_wall = _median(results["tarfile"], "wall")
    base_size = results["tarfile"][0]["out_size"]
    rows = []
    for name, runs in results.items():
        size = runs[0]["out_size"]
        output = [f"{size / MiB:.1f}", f"{100 * size / base_size:.1f} %"]
        rows.append([name, *_speed_cells(setup, runs, base_wall), *output, *_memory_cells(runs)])
    header = ("contender", *_SPEED_HEADER, "output MiB", "size vs tarfile", *_MEMORY_HEADER)
    return _table(header, rows)


def extract_table(setup: Setup, results: dict[str, list[Result]]) -> list[str]:
    if not results:
        return ["Not measured (`--no-extract`)."]
    base_wall = _median(results["extract-tarfile"], "wall")
    rows = [
        [
            name.removeprefix("extract-"),
            *_speed_cells(setup, runs, base_wall),
            runs[0]["files"],
            *_memory_cells(runs),
        ]
        for name, runs in results.items()
    ]
    return _table(("extractor", *_SPEED_HEADER, "files written", *_MEMORY_HEADER), rows)


def lag_table(results: dict[str, Result]) -> list[str]:
    rows = [
        [
            LAG_LABELS[name],
            r["ticks"],
            f"{r['p50_ms']:.3f}",
            f"{r['p99_ms']:.3f}",
            f"{r['max_ms']:.1f}",
            f"{r['wall']:.2f}",
        ]
        for name, r in results.items()
    ]
    return _table(("while the loop runs", "ticks", "p50 ms", "p99 ms", "max ms", "wall s"), rows)


def consistency_notes(
    setup: Setup, create: dict[str, list[Result]], extract: dict[str, list[Result]]
) -> list[str]:
    notes = []
    reference = create["tarfile"][0]
    for name, runs in create.items():
        if name != "tarfile" and runs[0].get("members_sha") != reference.get("members_sha"):
            notes.append(
                f"**{name}'s member list differs from tarfile's** "
                f"({runs[0].get('members')} vs {reference.get('members')} entries)."
            )
    if reference.get("members") != setup.included_entries:
        notes.append(
            f"tarfile wrote {reference.get('members')} entries; the walk expected "
            f"{setup.included_entries}."
        )
    files = {name: runs[0]["files"] for name, runs in extract.items()}
    if len(set(files.values())) > 1:
        notes.append(f"**extractors wrote different file counts**: {files}.")
    return notes or [
        "All archives hold the same member names; both extractors wrote the same number of files."
    ]


def versions() -> str:
    parts = [f"Python {platform.python_version()}"]
    for package in ("habackup", "securetar"):
        with suppress(PackageNotFoundError):
            parts.append(f"{package} {version(package)}")
    if shutil.which("pigz"):
        pigz = subprocess.run(["pigz", "--version"], capture_output=True, text=True, check=False)
        parts.append((pigz.stdout or pigz.stderr).strip())
    return ", ".join(parts)


def report(
    args: argparse.Namespace,
    setup: Setup,
    create: dict[str, list[Result]],
    extract: dict[str, list[Result]],
    lag: dict[str, Result],
) -> str:
    lines = [
        "# habackup end-to-end benchmark",
        "",
        f"`{shlex.join([sys.executable, *sys.argv])}`",
        "",
        f"- {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} CPUs, {platform.machine()}, "
        f"{versions()}",
        f"- dataset `{setup.data}`: {setup.dataset_bytes / MiB:.1f} MiB in {setup.dataset_files} "
        f"files; after Home Assistant's excludes {setup.included_bytes / MiB:.1f} MiB in "
        f"{setup.included_entries} entries (MiB/s below is of the latter)",
        f"- {args.rounds} round(s), contenders interleaved, each in a fresh process; page cache "
        "warmed by one read of the dataset; every output fsynced inside the timing, `sync` "
        "between runs",
        "",
        "## Create a backup",
        "",
        *create_table(setup, create),
        "",
        "tarfile: Home Assistant's method re-implemented on the standard library (outer tar, "
        "inner `w:gz` level 6 streamed into it, atomic_contents_add-style walk). securetar: the "
        "same through securetar's `SecureTarArchive`. pigz: `tar | pigz -p2 -6` writing only the "
        "inner tar.gz (no outer tar, no backup.json); its RSS is tar's plus pigz's.",
        "",
        "## Extract the habackup backup",
        "",
        *extract_table(setup, extract),
        "",
        "tarfile: outer tar opened, inner streamed with `r|gz`, "
        '`extractall(filter="fully_trusted")` as Home Assistant\'s restore does.',
        "",
        f"## Event loop lag ({TICK * 1000:g} ms `asyncio.sleep` ticker, lateness per wake-up)",
        "",
        *lag_table(lag),
        "",
        "## Checks",
        "",
        *(f"- {note}" for note in [*setup.notes, *consistency_notes(setup, create, extract)]),
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1GiB", help="dataset size, e.g. 200MiB, 1GiB, 5GiB")
    parser.add_argument("--data", type=Path, help="dataset dir (default bench-data/<size>)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
    parser.add_argument("--no-extract", action="store_true", help="skip the extraction benchmark")
    # Internal: one measurement in this (fresh) process, printed as JSON.
    parser.add_argument("--run-one", choices=(*CREATE, *EXTRACT, *LAG), help=argparse.SUPPRESS)
    parser.add_argument("--target", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--backup", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--verify", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.size_text = re.sub(r"\s+", "", args.size)
    args.size = parse_size(args.size)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.run_one:
        print(json.dumps(run_one(args)))
        return 0
    print(f"$ {shlex.join([sys.executable, *sys.argv])}", flush=True)
    setup = prepare(args)
    create, source = bench_create(setup, args.rounds)
    extract = {} if args.no_extract else bench_extract(setup, source, args.rounds)
    lag = bench_lag(setup)
    check_idle(setup.notes, "after the run")
    text = report(args, setup, create, extract, lag)
    print(text)
    if args.out:
        args.out.write_text(text)
    shutil.rmtree(setup.work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
