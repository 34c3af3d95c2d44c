"""Throughput: docrouter's wall time vs a bare asyncio+httpx client making the same requests, vs N*L/C.

    .venv/bin/python bench/bench_throughput.py --docs 2000 --latency 0.2 --concurrency 32

Prints one table; appends nothing anywhere (copy figures into bench/RESULTS.md by hand, with the command).
The emulator runs as its own process, so neither client shares a GIL with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from docrouter import samples  # noqa: E402
from docrouter.inspection import extract_text  # noqa: E402
from docrouter.payloads import RequestOptions, encode, image_request, pdf_request, text_request  # noqa: E402

WORK = REPO / "bench" / "_work"
KEY = "sk-or-v1-emulator-bench"


def corpus(n: int) -> Path:
    """n distinct one-page documents, half text PDFs and half PNGs (made once, reused)."""
    folder = WORK / f"docs-{n}"
    if folder.exists() and len(list(folder.iterdir())) == n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        if i % 2:
            (folder / f"image_{i:06d}.png").write_bytes(samples.png(160 + i % 400, 90 + i // 400))
        else:
            (folder / f"text_{i:06d}.pdf").write_bytes(samples.text_pdf(1, text=f"Record {i}. " * 60))
    return folder


def start_emulator(latency: float) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "docrouter.emulator", "--port", "0", "--latency", str(latency), "--quiet"]
    command += ["--key", KEY]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("OPENROUTER_BASE_URL="):
            return process, line.split("=", 1)[1].strip()
    raise RuntimeError("the emulator did not start")


class PeakRss:
    """Peak resident memory of a process tree, sampled every 50 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                root = psutil.Process(self.pid)
                procs = [root, *root.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs if p.is_running()))
            except psutil.Error:
                pass

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def run_docrouter(docs: Path, base_url: str, concurrency: int) -> tuple[float, int, Path]:
    out = Path(tempfile.mkdtemp(prefix="bench-out-", dir=WORK))
    env = {**os.environ, "OPENROUTER_API_KEY": KEY, "PREFECT_LOGGING_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "docrouter.cli", "run", str(docs), "--out", str(out)]
    command += ["--base-url", base_url, "--concurrency", str(concurrency)]
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rss = PeakRss(process.pid)
    _, stderr = process.communicate()
    wall = time.monotonic() - started
    if process.returncode != 0:
        raise RuntimeError(f"docrouter failed: {stderr[-2000:]}")
    return wall, rss.stop(), out


def body_for(path: Path, engine: str, options: RequestOptions) -> bytes:
    """The same request docrouter made for this document, built the plainest way."""
    data = path.read_bytes()
    if engine == "image":
        return encode(image_request(options, data, "image/png"))
    if engine == "local-text":
        text = "\n\n".join(extract_text(str(path)))
        return encode(text_request(options, text, path.name))
    return encode(pdf_request(options, data, path.name, engine))


async def floor(jobs: list[tuple[Path, str]], base_url: str, concurrency: int) -> float:
    """A minimal client: one pooled AsyncClient, a semaphore, one POST per document, no retries."""
    options = RequestOptions(model="google/gemini-2.5-flash", prompt="Summarize.", max_tokens=1024)
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    started = time.monotonic()
    async with httpx.AsyncClient(limits=limits, timeout=300) as http:

        async def one(path: Path, engine: str) -> None:
            async with gate:
                body = await asyncio.to_thread(body_for, path, engine, options)
                headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
                response = await http.post(f"{base_url}/chat/completions", content=body, headers=headers)
                response.raise_for_status()

        await asyncio.gather(*(one(path, engine) for path, engine in jobs))
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    docs = corpus(args.docs)
    emulator, base_url = start_emulator(args.latency)
    try:
        wall, rss, out = run_docrouter(docs, base_url, args.concurrency)
        results = pd.read_parquet(out / "results", columns=["path", "engine", "status"])
        summary = json.loads(next((out / "_runs").glob("*.json")).read_text())
        jobs = [(docs / p, e) for p, e in zip(results.path, results.engine, strict=True)]
        floor_wall = asyncio.run(floor(jobs, base_url, args.concurrency))
    finally:
        emulator.terminate()
        emulator.wait(10)
    ideal = args.docs * args.latency / args.concurrency
    t = summary["timings"]
    rows = {
        "documents": args.docs,
        "latency_s": args.latency,
        "concurrency": args.concurrency,
        "ideal_N*L/C_s": round(ideal, 2),
        "floor_s": round(floor_wall, 2),
        "docrouter_s": round(wall, 2),
        "floor/docrouter": round(floor_wall / wall, 3),
        "startup_to_flow_s (imports + Prefect)": round(wall - (t["written"] - t["flow_started"]), 2),
        "discover_s": round(t["discovered"] - t["flow_started"], 2),
        "inspect+route+call+write_s": round(t["written"] - t["discovered"], 2),
        "peak_rss_mb (process tree)": round(rss / 2**20),
        "statuses": dict(results.status.value_counts()),
    }
    for key, value in rows.items():
        print(f"{key:40} {value}")


if __name__ == "__main__":
    main()
