"""Start-up: a cold first `docrouter run --offline` on the samples (fresh PREFECT_HOME) and a warm second one.

    .venv/bin/python bench/bench_startup.py --repeat 3

Per repeat, in a fresh temporary folder: a cold run (new PREFECT_HOME and cache: Prefect creates and migrates
its database before its temporary server answers), then a warm run with the same PREFECT_HOME and cache, each
into a new --out (so both do the same work: 19 sample files). Prints, per run, the command's wall time and
its parts: until the flow started (imports, early checks, Prefect's temporary server), the flow's work, and
the exit (the server stopping). Appends nothing anywhere (copy figures into README/bench/RESULTS.md by hand).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCROUTER = Path(sys.executable).with_name("docrouter")
TIMEOUT_S = 900


@dataclass(frozen=True)
class Timing:
    """One `docrouter run`: seconds from the command's start to the flow's start, its work, and its exit."""

    wall_s: float
    startup_s: float
    work_s: float
    exit_s: float
    cpu_s: float  # user + system CPU of the command and its children (the server): what load cannot inflate


def timed_run(home: Path, out: Path) -> Timing:
    """Run the console script once with PREFECT_HOME/cache under `home`; its summary gives the flow's timings."""
    env = {**os.environ, "PREFECT_HOME": str(home / "prefect"), "XDG_CACHE_HOME": str(home / "cache")}
    env.pop("PREFECT_API_URL", None)  # the temporary server, as a newcomer gets it
    command = [str(DOCROUTER), "run", str(REPO / "data" / "samples"), "--out", str(out), "--offline"]
    cpu_before = _children_cpu_s()
    started = time.time()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    ended = time.time()
    if done.returncode != 0:
        raise SystemExit(f"docrouter run failed ({done.returncode}): {done.stderr[-2000:]}")
    [summary] = [json.loads(p.read_text()) for p in (out / "_runs").glob("*.json")]
    timings = summary["timings"]
    return Timing(
        wall_s=ended - started,
        startup_s=timings["flow_started"] - started,
        work_s=timings["written"] - timings["flow_started"],
        exit_s=ended - timings["written"],
        cpu_s=_children_cpu_s() - cpu_before,
    )


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cold_and_warm() -> tuple[Timing, Timing]:
    with tempfile.TemporaryDirectory(prefix="docrouter-startup-") as folder:
        home = Path(folder)
        return timed_run(home, home / "out-cold"), timed_run(home, home / "out-warm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=1, help="cold + warm pairs to measure (default 1)")
    args = parser.parse_args()
    pairs = [cold_and_warm() for _ in range(args.repeat)]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall times grow with it; CPU does not)")
    print(f"{'run':<6} {'wall s':>7} {'start-up s':>10} {'flow work s':>11} {'exit s':>7} {'CPU s':>6}")
    for n, (cold, warm) in enumerate(pairs, 1):
        for name, t in (("cold", cold), ("warm", warm)):
            figures = f"{t.wall_s:7.1f} {t.startup_s:10.1f} {t.work_s:11.1f} {t.exit_s:7.1f} {t.cpu_s:6.1f}"
            print(f"{name:<6} {figures}  (repeat {n})")
    for index, name in enumerate(("cold", "warm")):
        walls = [pair[index].wall_s for pair in pairs]
        starts = [pair[index].startup_s for pair in pairs]
        cpus = [pair[index].cpu_s for pair in pairs]
        print(
            f"{name}: median wall {statistics.median(walls):.1f} s, start-up {statistics.median(starts):.1f} s, "
            f"CPU {statistics.median(cpus):.1f} s"
        )


if __name__ == "__main__":
    main()
