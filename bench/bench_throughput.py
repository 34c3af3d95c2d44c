"""Throughput: docrouter's wall time vs a bare asyncio+httpx client making the same requests, vs N*L/C.

    .venv/bin/python bench/bench_throughput.py --docs 2000 --latency 0.2 --concurrency 32 --repeat 2

Per repeat, in one emulator's lifetime: docrouter (the `docrouter run` command, Prefect and all), the same
pipeline without Prefect (the plain docrouter.runs stages in a subprocess: what Prefect's tasks cost), and
the floor (one pooled AsyncClient POSTing the very requests docrouter made). Prints one table per repeat;
appends nothing anywhere (copy figures into bench/RESULTS.md by hand, with the command).
The emulator runs as its own process, so no client shares a GIL with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import samples  # noqa: E402
from docrouter.call.payloads import RequestOptions, encode, image_request, pdf_request, text_request  # noqa: E402
from docrouter.inspect.inspection import extract_text  # noqa: E402
from docrouter.results import Result  # noqa: E402
from docrouter.run import session as runs  # noqa: E402
from docrouter.run.config import RunConfig  # noqa: E402
from docrouter.store.store import GroupCommit, Store  # noqa: E402

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
        self.pid, self.peak, self.peak_main, self._stop = pid, 0, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                root = psutil.Process(self.pid)
                procs = [root, *root.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs if p.is_running()))
                self.peak_main = max(self.peak_main, root.memory_info().rss)
            except psutil.Error:
                pass

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


@dataclass(frozen=True)
class Measured:
    """One `docrouter run`: epoch start, wall to exit, CPU of its process tree, peak RSS, output folder."""

    started: float
    wall_s: float
    cpu_s: float
    rss_tree: int
    rss_main: int
    out: Path


def run_docrouter(docs: Path, base_url: str, concurrency: int, batch_size: int) -> Measured:
    out = Path(tempfile.mkdtemp(prefix="bench-out-", dir=WORK))
    env = {**os.environ, "OPENROUTER_API_KEY": KEY, "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")  # 20 s is too short on a busy box
    command = [sys.executable, "-m", "docrouter_commands.cli", "run", str(docs), "--out", str(out)]
    command += ["--base-url", base_url, "--concurrency", str(concurrency), "--batch-size", str(batch_size)]
    started, clock, cpu = time.time(), time.monotonic(), children_cpu()
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rss = PeakRss(process.pid)
    _, stderr = process.communicate()
    wall = time.monotonic() - clock
    if process.returncode != 0:
        raise RuntimeError(f"docrouter failed: {stderr[-2000:]}")
    rss.stop()
    return Measured(started, wall, children_cpu() - cpu, rss.peak, rss.peak_main, out)


def children_cpu() -> float:
    """User + system seconds of every waited-for descendant (the load on 2 shared cores makes wall noisy)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_core(docs: Path, base_url: str, concurrency: int, batch_size: int) -> tuple[float, float]:
    """Seconds from select to last row for the same pipeline without Prefect (in a subprocess), and its CPU."""
    out = tempfile.mkdtemp(prefix="bench-core-", dir=WORK)
    # -c, not this file: inspection's forkserver workers re-import the main module, and this one imports pandas
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_throughput as b; "
    code += "b.core(*sys.argv[1:])"
    command = [sys.executable, "-c", code, str(docs), base_url, str(concurrency), str(batch_size), out]
    cpu = children_cpu()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=3600, check=True)
    shutil.rmtree(out, ignore_errors=True)
    return float(done.stdout.strip().splitlines()[-1]), children_cpu() - cpu


def core(docs: str, base_url: str, concurrency_arg: str, batch_size_arg: str, out: str) -> None:
    """The flow's path (discover, select, then inspect -> route -> call per batch) with no Prefect at all."""
    concurrency, batch_size = int(concurrency_arg), int(batch_size_arg)
    config = RunConfig(sources=(docs,), out=out, base_url=base_url, concurrency=concurrency, batch_size=batch_size)

    async def go() -> float:
        documents = runs.discover(config)
        async with runs.open_session(config, api_key=KEY) as session:
            started = time.monotonic()
            fresh = runs.select(documents, session.store.done_keys(), config).fresh
            window = asyncio.Semaphore(2 + -(-concurrency // batch_size))
            inspecting = asyncio.Semaphore(2)

            async def one(batch: list) -> None:
                async with window:
                    async with inspecting:
                        pairs = await asyncio.to_thread(runs.inspect, batch)
                    await runs.call(session, runs.route(session, pairs), set())

            batches = [fresh[i : i + batch_size] for i in range(0, len(fresh), batch_size)]
            await asyncio.gather(*(one(batch) for batch in batches))
            return time.monotonic() - started

    print(asyncio.run(go()))


def body_for(path: Path, engine: str, options: RequestOptions) -> bytes:
    """The same request docrouter made for this document, built the plainest way."""
    data = path.read_bytes()
    if engine == "image":
        return encode(image_request(options, data, "image/png"))
    if engine == "local-text":
        text = "\n\n".join(extract_text(str(path)))
        return encode(text_request(options, text, path.name))
    return encode(pdf_request(options, data, path.name, engine))


async def floor(jobs: list[tuple[Path, str]], base_url: str, concurrency: int) -> tuple[float, float]:
    """A minimal client: one pooled AsyncClient, a semaphore, one POST per document, no retries."""
    options = RequestOptions(model="google/gemini-2.5-flash", prompt="Summarize.", max_tokens=1024)
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    started, cpu = time.monotonic(), time.process_time()
    async with httpx.AsyncClient(limits=limits, timeout=300) as http:

        async def one(path: Path, engine: str) -> None:
            async with gate:
                body = await asyncio.to_thread(body_for, path, engine, options)
                headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
                response = await http.post(f"{base_url}/chat/completions", content=body, headers=headers)
                response.raise_for_status()

        await asyncio.gather(*(one(path, engine) for path, engine in jobs))
    return time.monotonic() - started, time.process_time() - cpu


def measure(docs: Path, args: argparse.Namespace) -> dict[str, object]:
    """One repeat: docrouter, the same pipeline without Prefect, and the floor, against one emulator."""
    emulator, base_url = start_emulator(args.latency)
    try:
        run = run_docrouter(docs, base_url, args.concurrency, args.batch_size)
        results = pd.read_parquet(run.out / "results", columns=["path", "engine", "status"])
        summary = json.loads(next((run.out / "_runs").glob("*.json")).read_text())
        nan = (float("nan"), float("nan"))
        core_s, core_cpu = run_core(docs, base_url, args.concurrency, args.batch_size) if not args.no_core else nan
        jobs = [(docs / p, e) for p, e in zip(results.path, results.engine, strict=True)]
        floor_wall, floor_cpu = asyncio.run(floor(jobs, base_url, args.concurrency))
    finally:
        emulator.terminate()
        emulator.wait(10)
    shutil.rmtree(run.out, ignore_errors=True)
    t = summary["timings"]
    to_written = t["written"] - run.started
    processing = t["written"] - t["discovered"]
    return {
        "documents": args.docs,
        "latency_s / concurrency / batch": f"{args.latency} / {args.concurrency} / {args.batch_size}",
        "ideal_N*L/C_s": round(args.docs * args.latency / args.concurrency, 2),
        "floor_s": round(floor_wall, 2),
        "docrouter_to_last_row_s": round(to_written, 2),
        "floor/docrouter": round(floor_wall / to_written, 3),
        "docrouter_process_exit_s": round(run.wall_s, 2),
        "startup_s (imports, Prefect server, flow run)": round(t["flow_started"] - run.started, 2),
        "discover_s": round(t["discovered"] - t["flow_started"], 2),
        "processing_s (select..last row, in flow)": round(processing, 2),
        "processing_s without Prefect (core)": round(core_s, 2),
        "floor/processing": round(floor_wall / processing, 3),
        "after_last_row_s (artifacts, shutdown)": round(run.wall_s - to_written, 2),
        "per_doc_ms (to last row)": round(1000 * to_written / args.docs, 2),
        "cpu_ms_per_doc docrouter / core / floor": " / ".join(
            f"{1000 * c / args.docs:.1f}" for c in (run.cpu_s, core_cpu, floor_cpu)
        ),
        "peak_rss_mb process tree / main": f"{run.rss_tree / 2**20:.0f} / {run.rss_main / 2**20:.0f}",
        "statuses": dict(results.status.value_counts()),
    }


def store_lag(rows: int, concurrency: int) -> None:
    """Event-loop stall while `rows` answers are recorded by `concurrency` coroutines: each row fsynced by
    Store.record on the loop (before) vs GroupCommit (one fsync per burst, off the loop; after)."""
    template = Result(
        "run", "0" * 64, "a.pdf", "/src", 1, "application/pdf", "pdf", 1, "local-text", "why", "m", "p" * 64,
        "ok", None, None, 1, 0.001, 0.001, 10, 10, "gen", "An answer. " * 50, "stop",
        "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:01+00:00",
    )  # fmt: skip

    async def go(grouped: bool) -> tuple[float, float]:
        with tempfile.TemporaryDirectory(dir=WORK) as out, Store(Path(out), "bench", flush_seconds=30.0) as store:
            recorder, gate, worst = GroupCommit(store), asyncio.Semaphore(concurrency), 0.0
            started = time.monotonic()

            async def one(i: int) -> None:
                nonlocal worst
                async with gate:
                    await asyncio.sleep(0)
                    row = dataclasses.replace(template, doc_id=f"{i:064d}")
                    before = time.monotonic()
                    await recorder.record(row) if grouped else store.record(row)
                    if not grouped:
                        worst = max(worst, time.monotonic() - before)

            await asyncio.gather(*(one(i) for i in range(rows)))
            return time.monotonic() - started, worst

    for name, grouped in (("Store.record on the loop", False), ("GroupCommit", True)):
        wall, worst = asyncio.run(go(grouped))
        stall = f"; longest stall {1000 * worst:.1f} ms" if not grouped else "; the loop never waits on fsync"
        print(f"{name:26} {rows} rows in {wall:.2f} s ({1000 * wall / rows:.2f} ms/row){stall}")


def main() -> None:
    if sys.argv[1:2] == ["--store"]:
        store_lag(int(sys.argv[2]) if len(sys.argv) > 2 else 2000, 32)
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-core", action="store_true", help="skip the run without Prefect")
    args = parser.parse_args()
    docs = corpus(args.docs)
    for index in range(args.repeat):
        print(f"-- repeat {index + 1} of {args.repeat} (load average {os.getloadavg()[0]:.2f})", flush=True)
        for key, value in measure(docs, args).items():
            print(f"{key:46} {value}", flush=True)


if __name__ == "__main__":
    main()
