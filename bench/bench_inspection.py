"""Inspection over a real corpus: files/s, pages/s, the slowest files, peak memory of the parent and workers.

    .venv/bin/python bench/bench_inspection.py --corpus ../shared/corpus --workers 1 2
    .venv/bin/python bench/bench_inspection.py --corpus ../shared/corpus --workers 2 --readers pypdf pdfium
    .venv/bin/python bench/bench_inspection.py --generated 1000 --workers 2 --readers pypdf pdfium
    .venv/bin/python bench/bench_inspection.py --corpus ../shared/corpus --extraction 20

Runs the pipeline's inspection (inspect_document in reusable, limited worker processes via run_isolated,
with inspect_isolated's settings) once per worker count and reader, timing each file inside its worker:
`pypdf` is the pipeline (pypdf, PDFium as its fallback), `pdfium` inspects with PDFium alone. --generated N
inspects N generated 1-10 page PDFs (text, scans, mixed) instead of the corpus. --extraction P compares
full-text extraction by the two readers on the files of at least P pages: time and how alike the texts are.
Prints tables; asserts nothing (copy the figures into bench/RESULTS.md by hand, with the command).
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import samples  # noqa: E402
from docrouter.discover.documents import Document, discover_documents  # noqa: E402
from docrouter.errors import DocumentError  # noqa: E402
from docrouter.inspect.inspection import Inspection, inspect_document, inspect_opened  # noqa: E402
from docrouter.inspect.isolation import Failure, run_isolated  # noqa: E402
from docrouter.pdf.pdfium import opened_pdfium, pdfium_text  # noqa: E402
from docrouter.pdf.pdfreading import extract_text  # noqa: E402

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


def timed_inspect(doc: Document, *, sample_pages: int, time_budget_s: float, reader: str = "pypdf") -> Timed:
    """inspect_document (or PDFium's inspection), timed, with the worker's identity and peak memory (runs inside
    the worker)."""
    start = time.perf_counter()
    if reader == "pdfium" and doc.kind == "pdf":
        inspection = pdfium_inspect(doc, sample_pages, time.monotonic() + time_budget_s)
    else:
        inspection = inspect_document(doc, sample_pages=sample_pages, time_budget_s=time_budget_s)
    seconds = time.perf_counter() - start
    return Timed(inspection, seconds, os.getpid(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def pdfium_inspect(doc: Document, sample_pages: int, deadline: float) -> Inspection:
    """The same inspection with PDFium as the only reader."""
    try:
        with opened_pdfium(doc.path) as opened:
            return inspect_opened(doc, opened, sample_pages, deadline)
    except DocumentError as exc:
        return Inspection(doc_id=doc.doc_id, kind="pdf", error_type=exc.error_type, error_message=exc.message)


def outcome(inspection: Inspection) -> str:
    return inspection.verdict if inspection.ok else f"error: {inspection.error_type}"


def inspect_all(
    docs: list[Document], workers: int, timeout_s: float, memory_mb: int, reader: str = "pypdf"
) -> tuple[list[Row], float]:
    """One row per document and the wall time, through run_isolated exactly as inspect_isolated calls it."""
    func = functools.partial(timed_inspect, sample_pages=10, time_budget_s=timeout_s * 0.6, reader=reader)
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


def report(rows: list[Row], wall_s: float, workers: int, reader: str = "pypdf") -> None:
    pages = sum(r.pages for r in rows)
    times = sorted(r.seconds for r in rows)
    pids = {r.worker_pid for r in rows if r.worker_pid}
    print(f"\n== {reader}, {workers} worker(s): {len(rows)} files, {pages} pages in {wall_s:.1f} s wall")
    print(f"   {len(rows) / wall_s:.1f} files/s   {pages / wall_s:.0f} pages/s")
    print(
        f"   per file (in the worker): median {statistics.median(times) * 1000:.0f} ms, "
        f"p90 {times[int(len(times) * 0.9)] * 1000:.0f} ms, max {times[-1]:.2f} s, sum {sum(times):.1f} s"
    )
    print(f"   worker processes used: {len(pids)} (reused across files: {len(pids) <= workers})")
    peak = max((r.worker_peak_kb for r in rows), default=0)
    print(f"   peak RSS: parent {_parent_peak_kb() / 1024:.0f} MiB, largest worker {peak / 1024:.0f} MiB")
    outcomes = Counter(r.outcome for r in rows)
    print(f"   outcomes: {', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))}")
    print("   slowest 10:")
    for row in sorted(rows, key=lambda r: r.seconds, reverse=True)[:10]:
        print(f"   {row.seconds:7.2f} s  {row.pages:5d} p  {row.outcome:18s} {row.path}")


def _parent_peak_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def generated(folder: Path, count: int) -> list[Document]:
    """`count` generated PDFs of 1-10 pages, different bytes each: half text, a quarter scans, a quarter mixed."""
    for i in range(count):
        pages = 1 + i % 10
        if i % 4 == 2:
            data = samples.scanned_pdf(pages)
        elif i % 4 == 3 and pages > 1:
            data = samples.mixed_pdf(pages - pages // 2, pages // 2)
        else:
            data = samples.text_pdf(pages, text=f"Generated document {i}. " * 40)
        (folder / f"gen_{i:05d}.pdf").write_bytes(data)
    return [d for d in discover_documents([folder]) if d.kind is not None]


def compare_extraction(docs: list[Document], min_pages: int) -> None:
    """Full-text extraction of the long PDFs by each reader: seconds, characters and how alike the texts are."""
    print(f"\n== full-text extraction, PDFs of at least {min_pages} pages (pypdf with fontTools vs PDFium)")
    print("   pypdf s  pdfium s  pages  pypdf chars  pdfium chars  alike  file")
    for doc in docs:
        try:
            with opened_pdfium(doc.path) as opened:
                if opened.pages < min_pages:
                    continue
                pages = opened.pages
            start = time.perf_counter()
            ours = "".join(extract_text(doc.path))
            middle = time.perf_counter()
            theirs = "".join(pdfium_text(doc.path))
            end = time.perf_counter()
        except DocumentError:
            continue
        alike = _alike(ours, theirs)
        print(
            f"   {middle - start:7.2f}  {end - middle:8.2f}  {pages:5d}  {len(ours):11d}  {len(theirs):12d}  "
            f"{alike:5.2f}  {doc.rel_path}"
        )


def _alike(a: str, b: str) -> float:
    """Shared words over all words (multiset Jaccard, whitespace-insensitive): 1.0 when both read the same words."""
    left, right = Counter(a.split()), Counter(b.split())
    union = sum((left | right).values())
    return sum((left & right).values()) / union if union else 1.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of documents to inspect")
    parser.add_argument("--generated", type=int, default=0, help="inspect this many generated PDFs instead")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to try")
    parser.add_argument("--readers", nargs="+", default=["pypdf"], choices=["pypdf", "pdfium"], help="readers")
    parser.add_argument("--extraction", type=int, default=0, help="compare full-text extraction on PDFs >= N pages")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-file limit in seconds (as the run)")
    parser.add_argument("--memory-mb", type=int, default=1024, help="per-worker memory limit (as the run)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-inspection-") as scratch:
        start = time.perf_counter()
        if args.generated:
            docs = generated(Path(scratch), args.generated)
        else:
            docs = [d for d in discover_documents([args.corpus], exclude=NOT_DOCUMENTS) if d.kind is not None]
        found = time.perf_counter() - start
        where = f"{args.generated} generated PDFs" if args.generated else f"corpus {args.corpus}"
        print(f"{where}: {len(docs)} supported files, made/discovered and hashed in {found:.2f} s")
        print(f"cpus {os.cpu_count()}, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        if args.extraction:
            compare_extraction([d for d in docs if d.kind == "pdf"], args.extraction)
            return
        for reader in args.readers:
            for workers in args.workers:
                rows, wall = inspect_all(docs, workers, args.timeout, args.memory_mb, reader)
                report(rows, wall, workers, reader)


if __name__ == "__main__":  # workers import this module: nothing may run on import
    main()
