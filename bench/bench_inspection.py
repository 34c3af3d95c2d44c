"""Inspection over a real corpus: files/s, pages/s, the slowest files, peak memory of the parent and workers.

    .venv/bin/python bench/bench_inspection.py --corpus ../shared/corpus --workers 1 2

Runs the pipeline's inspection (inspect_document in reusable, limited worker processes via run_isolated,
with inspect_isolated's settings) once per worker count, timing each file inside its worker. Prints
tables; asserts nothing (copy the figures into bench/RESULTS.md by hand, with the command).
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from docrouter.documents import Document, discover_documents  # noqa: E402
from docrouter.inspection import Inspection, inspect_document  # noqa: E402
from docrouter.isolation import Failure, run_isolated  # noqa: E402

DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"
NOT_DOCUMENTS = ("MANIFEST.csv", "README.md")


@dataclass(frozen=True)
class Timed:
    """One file's inspection as its worker saw it."""

    inspection: Inspection
    seconds: float
    worker_pid: int
    worker_peak_kb: int  # the worker's peak RSS so far (ru_maxrss, KiB on Linux)


@dataclass(frozen=True)
class Row:
    path: str
    seconds: float
    pages: int
    outcome: str
    worker_pid: int = 0
    worker_peak_kb: int = 0


def timed_inspect(doc: Document, *, sample_pages: int, time_budget_s: float) -> Timed:
    """inspect_document, timed, with the worker's identity and peak memory (runs inside the worker)."""
    start = time.perf_counter()
    inspection = inspect_document(doc, sample_pages=sample_pages, time_budget_s=time_budget_s)
    seconds = time.perf_counter() - start
    return Timed(inspection, seconds, os.getpid(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def outcome(inspection: Inspection) -> str:
    return inspection.verdict if inspection.ok else f"error: {inspection.error_type}"


def inspect_all(docs: list[Document], workers: int, timeout_s: float, memory_mb: int) -> tuple[list[Row], float]:
    """One row per document and the wall time, through run_isolated exactly as inspect_isolated calls it."""
    func = functools.partial(timed_inspect, sample_pages=10, time_budget_s=timeout_s * 0.6)
    rows = []
    start = time.perf_counter()
    for doc, result in run_isolated(func, docs, workers=workers, timeout_s=timeout_s, memory_mb=memory_mb):
        if isinstance(result, Failure):
            rows.append(Row(doc.rel_path, timeout_s if result.kind == "timeout" else 0.0, 0, f"killed: {result.kind}"))
        else:
            ins = result.inspection
            rows.append(
                Row(doc.rel_path, result.seconds, ins.pages, outcome(ins), result.worker_pid, result.worker_peak_kb)
            )
    return rows, time.perf_counter() - start


def report(rows: list[Row], wall_s: float, workers: int) -> None:
    pages = sum(r.pages for r in rows)
    times = sorted(r.seconds for r in rows)
    pids = {r.worker_pid for r in rows if r.worker_pid}
    print(f"\n== {workers} worker(s): {len(rows)} files, {pages} pages in {wall_s:.1f} s wall")
    print(f"   {len(rows) / wall_s:.1f} files/s   {pages / wall_s:.0f} pages/s")
    print(
        f"   per file (in the worker): median {statistics.median(times) * 1000:.0f} ms, "
        f"p90 {times[int(len(times) * 0.9)] * 1000:.0f} ms, max {times[-1]:.2f} s, sum {sum(times):.1f} s"
    )
    print(f"   worker processes used: {len(pids)} (reused across files: {len(pids) <= workers})")
    peak = max((r.worker_peak_kb for r in rows), default=0)
    print(f"   peak RSS: parent {_parent_peak_kb() / 1024:.0f} MiB, largest worker {peak / 1024:.0f} MiB")
    print("   slowest 10:")
    for row in sorted(rows, key=lambda r: r.seconds, reverse=True)[:10]:
        print(f"   {row.seconds:7.2f} s  {row.pages:5d} p  {row.outcome:18s} {row.path}")


def _parent_peak_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of documents to inspect")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to try")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-file limit in seconds (as the run)")
    parser.add_argument("--memory-mb", type=int, default=1024, help="per-worker memory limit (as the run)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    docs = [d for d in discover_documents([args.corpus], exclude=NOT_DOCUMENTS) if d.kind is not None]
    found = time.perf_counter() - start
    print(f"corpus {args.corpus}: {len(docs)} supported files, discovered and hashed in {found:.2f} s")
    print(f"cpus {os.cpu_count()}, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for workers in args.workers:
        rows, wall = inspect_all(docs, workers, args.timeout, args.memory_mb)
        report(rows, wall, workers)


if __name__ == "__main__":  # workers import this module: nothing may run on import
    main()
