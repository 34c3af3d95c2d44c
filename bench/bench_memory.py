"""Peak memory of a whole `docrouter run --offline` (parent and children, sampled) on many small or a few large files.

    .venv/bin/python bench/bench_memory.py small --docs 10000
    .venv/bin/python bench/bench_memory.py large --pdfs 20 --pages 300 --page-kb 170 --images 3
    .venv/bin/python bench/bench_memory.py large --external-emulator --concurrency 4

Prints the command, peak RSS of the process tree, wall time and the time per stage; asserts nothing.
The offline emulator runs inside the measured process, so its memory (it decodes every body) counts too;
--external-emulator runs it as its own process instead, to measure docrouter alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psutil
from bench_throughput import KEY, PeakRss, corpus, start_emulator
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from pdfassembly import PAGE_H, PAGE_W, new_pdf  # noqa: E402

WORK = Path(tempfile.gettempdir()) / "docrouter-bench-memory"


def large_corpus(pdfs: int, pages: int, page_kb: int, images: int, megapixels: int) -> Path:
    """Scanned PDFs of `pages` incompressible page images each, and huge PNG posters (made once, reused)."""
    folder = WORK / f"large-{pdfs}x{pages}x{page_kb}k-{images}x{megapixels}mp"
    if folder.exists():
        return folder
    temp = folder.with_suffix(".tmp")
    temp.mkdir(parents=True, exist_ok=True)
    for i in range(pdfs):
        (temp / f"scan_{i:03d}.pdf").write_bytes(noise_scan_pdf(pages, page_kb))
    for i in range(images):
        poster(megapixels, i).save(temp / f"poster_{i:02d}.png", "PNG", compress_level=1)
    temp.rename(folder)
    return folder


def noise_scan_pdf(pages: int, page_kb: int) -> bytes:
    """A scan-like PDF whose page images are random grey (stored uncompressed, so the file is really large)."""
    pdf = new_pdf()
    side = int((page_kb * 1024) ** 0.5)
    for _ in range(pages):
        entries = b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8"
        image = pdf.stream(entries % (side, side), os.urandom(side * side), compress=False)
        content = pdf.stream(b"", b"q %d 0 0 %d 0 0 cm /Im1 Do Q" % (PAGE_W, PAGE_H))
        resources = b"/XObject << /Im1 %d 0 R >>" % image
        pdf.pages.append(
            pdf.add(
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << %s >> /Contents %d 0 R >>"
                % (PAGE_W, PAGE_H, resources, content)
            )
        )
    return pdf.build(producer="bench_memory (noise scan)")


def poster(megapixels: int, seed: int) -> Image.Image:
    """A smooth RGB picture of about `megapixels` (a gradient: large in pixels, moderate on disk)."""
    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = int(megapixels * 1e6 / width)
    small = Image.linear_gradient("L").resize((width // 8, height // 8))
    channels = [small, small.rotate(90 + seed, expand=False), small.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return Image.merge("RGB", channels).resize((width, height))


def run_docrouter(docs: Path, concurrency: int, base_url: str | None) -> dict:
    """One `docrouter run` (--offline, or against `base_url`) in a child process, its tree sampled for peak RSS."""
    out = Path(tempfile.mkdtemp(prefix="out-", dir=WORK))
    command = [sys.executable, "-m", "docrouter_commands.cli", "run", str(docs), "--out", str(out)]
    command += ["--concurrency", str(concurrency)] + (["--base-url", base_url] if base_url else ["--offline"])
    env = {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120", **os.environ, "OPENROUTER_API_KEY": KEY}
    env["PREFECT_LOGGING_LEVEL"] = "WARNING"
    print("command:", " ".join(command), flush=True)
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peaks = PeakRss(process.pid)
    _, stderr = process.communicate()
    wall = time.monotonic() - started
    peaks.stop()
    if process.returncode != 0:
        raise RuntimeError(f"docrouter failed: {stderr[-2000:]}")
    return {"out": out, "wall": wall, "peaks": peaks}


def report(docs: Path, measured: dict) -> None:
    out: Path = measured["out"]
    results = pd.read_parquet(out / "results", columns=["status", "engine", "parts", "size_bytes", "started_at"])
    summary = json.loads(next((out / "_runs").glob("*.json")).read_text())
    t = summary["timings"]
    files = list(docs.iterdir())
    rows = {
        "files": len(files),
        "corpus_mb": round(sum(f.stat().st_size for f in files) / 2**20),
        "largest_file_mb": round(max(f.stat().st_size for f in files) / 2**20, 1),
        "peak_rss_mb (process tree, sampled 50 ms)": round(measured["peaks"].peak / 2**20),
        "peak_rss_mb (docrouter process alone)": round(measured["peaks"].peak_main / 2**20),
        "wall_s": round(measured["wall"], 1),
        "startup_s (imports, Prefect, emulator)": round(measured["wall"] - (t["written"] - t["flow_started"]), 1),
        "discover_s (walk + hash)": round(t["discovered"] - t["flow_started"], 1),
        "inspect+route+call+write_s (pipelined)": round(t["written"] - t["discovered"], 1),
        "statuses": dict(results.status.value_counts()),
        "engines": dict(results.engine.value_counts()),
        "requests (parts > 1: split docs)": f"{summary['requests_sent']} ({int((results.parts > 1).sum())})",
        "machine": f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GB",
    }
    for key, value in rows.items():
        print(f"{key:45} {value}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", choices=["small", "large"])
    parser.add_argument("--docs", type=int, default=10_000, help="small: one-page documents")
    parser.add_argument("--pdfs", type=int, default=20, help="large: scanned PDFs")
    parser.add_argument("--pages", type=int, default=300, help="large: pages per PDF")
    parser.add_argument("--page-kb", type=int, default=170, help="large: bytes of image per page")
    parser.add_argument("--images", type=int, default=3, help="large: posters")
    parser.add_argument("--megapixels", type=int, default=60, help="large: pixels per poster")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--external-emulator", action="store_true", help="the emulator in its own process, outside the measured tree"
    )
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if args.corpus == "small":
        docs = corpus(args.docs)
    else:
        docs = large_corpus(args.pdfs, args.pages, args.page_kb, args.images, args.megapixels)
    print(f"corpus: {docs} ({time.monotonic() - started:.0f} s to make or find)", flush=True)
    if not args.external_emulator:
        report(docs, run_docrouter(docs, args.concurrency, None))
        return
    emulator, base_url = start_emulator(0.0)
    try:
        report(docs, run_docrouter(docs, args.concurrency, base_url))
    finally:
        emulator.terminate()
        emulator.wait(10)


if __name__ == "__main__":
    main()
