"""Protected backups: habackup with a password against securetar with a password (Home
Assistant's way since 2025.1) and against habackup without one, on the same data, interleaved.

    python benches/protected.py --data bench-data/1GiB [--rounds 2]

Uses e2e.py's dataset and Home Assistant's exclude filter; each run is a fresh process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e import BUF_SIZE, HA_EXCLUDES, _add_backup_json, _fsync, make_exclude_filter

PASSWORD = "benchmark password"
CONTENDERS = ("habackup-protected", "habackup-plain", "securetar-protected")


def run(name: str, data: Path, out: Path) -> float:
    started = time.perf_counter()
    if name.startswith("habackup"):
        import habackup

        password = PASSWORD if name == "habackup-protected" else None
        habackup.create_archive(data, out, name="bench", password=password)
    else:
        from securetar import SecureTarArchive, atomic_contents_add

        is_excluded = make_exclude_filter(HA_EXCLUDES)
        with SecureTarArchive(out, "w", bufsize=BUF_SIZE, password=PASSWORD) as archive:
            _add_backup_json(archive.tar, "bench")
            with archive.create_tar("homeassistant.tar.gz", gzip=True) as inner:
                atomic_contents_add(inner, data, is_excluded, arcname="data")
        _fsync(out)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out-dir", type=Path, default=Path("bench-data/out"))
    parser.add_argument("--run-one", choices=CONTENDERS)
    args = parser.parse_args()
    out = args.out_dir / "protected.tar"
    if args.run_one:
        print(json.dumps({"wall": run(args.run_one, args.data, out), "size": out.stat().st_size}))
        return
    args.out_dir.mkdir(parents=True, exist_ok=True)
    print(f"`python benches/protected.py --data {args.data} --rounds {args.rounds}`\n")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in CONTENDERS}
    for round_no in range(args.rounds):
        order = CONTENDERS[round_no % 3 :] + CONTENDERS[: round_no % 3]
        for name in order:
            cmd = [
                sys.executable,
                __file__,
                "--data",
                str(args.data),
                "--out-dir",
                str(args.out_dir),
            ]
            proc = subprocess.run(
                [*cmd, "--run-one", name], capture_output=True, text=True, check=True
            )
            results[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            out.unlink()
            subprocess.run(["sync"], check=False)
    wall = {name: statistics.median(r["wall"] for r in runs) for name, runs in results.items()}
    print("| contender | wall s (median) | each round | output MiB | vs securetar | vs plain |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, runs in results.items():
        rounds = " / ".join(f"{r['wall']:.2f}" for r in runs)
        print(
            f"| {name} | {wall[name]:.2f} | {rounds} | {runs[0]['size'] / 2**20:.1f} | "
            f"{wall['securetar-protected'] / wall[name]:.2f}x | "
            f"{wall[name] / wall['habackup-plain']:.2f} |"
        )


if __name__ == "__main__":
    main()
