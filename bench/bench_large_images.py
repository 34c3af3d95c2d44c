"""Peak memory of `docrouter run` on three 169-megapixel PNGs (657 KB on disk, 676 MB decoded each).

Runs the real CLI (--offline: the built-in emulator) in a subprocess and samples the RSS of its process
tree every 50 ms from /proc, leaving out Prefect's temporary API server (not docrouter's). Prints the
peak of the summed RSS and each process's own peak.

    .venv/bin/python bench/bench_large_images.py [--count 3] [--side 13000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import samples  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
PREFECT_SERVER = ("uvicorn", "prefect.server", "server start")


def tree(root: int) -> list[int]:
    """root and all its descendants (from /proc/*/stat parent ids)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children[int(fields[1])].append(int(entry))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def rss_and_name(pid: int) -> tuple[int, str] | None:
    try:
        resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError, ValueError):
        return None
    return resident, cmdline.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--side", type=int, default=13_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-large-images-") as tmp:
        docs = Path(tmp, "posters")
        docs.mkdir()
        for i in range(args.count):
            data = samples.giant_png(args.side, args.side, shade=0x40 * (i + 1))
            (docs / f"poster_{i}.png").write_bytes(data)
        megapixels = args.side**2 / 1e6
        print(f"{args.count} PNGs of {args.side}x{args.side} ({megapixels:.0f} MP), {len(data) / 1e3:.0f} KB each")
        command = [
            sys.executable,
            "-m",
            "docrouter_commands.cli",
            "run",
            str(docs),
            "--out",
            str(Path(tmp, "out")),
            "--offline",
        ]
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak_total, peaks = 0, {}
        while process.poll() is None:
            total = 0
            for pid in tree(process.pid):
                sample = rss_and_name(pid)
                if sample is None or any(mark in sample[1] for mark in PREFECT_SERVER):
                    continue
                total += sample[0]
                peaks[pid] = max(peaks.get(pid, (0, ""))[0], sample[0]), sample[1][:70]
            peak_total = max(peak_total, total)
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        print(f"exit {process.returncode} in {elapsed:.1f} s")
        statuses = pd.read_parquet(Path(tmp, "out", "results")).status.value_counts().to_dict()
        print(f"rows: {statuses}")
        print(f"peak RSS of docrouter's processes (summed): {peak_total / 2**20:.0f} MB")
        for pid, (peak, name) in sorted(peaks.items(), key=lambda item: -item[1][0]):
            print(f"  {peak / 2**20:6.0f} MB  pid {pid}  {name}")


if __name__ == "__main__":
    main()
