"""Helpers for tests that run the whole pipeline: generated document folders and one flow run."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

import samples


def write_corpus(folder: Path, *, text: int = 0, scans: int = 0, pngs: int = 0) -> list[Path]:
    """Distinct documents (different bytes each) in `folder`: text PDFs, scanned PDFs and PNGs."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(text):
        paths.append(_write(folder / f"text_{i:03d}.pdf", samples.text_pdf(1, text=f"Document {i}. " * 40)))
    for i in range(scans):
        paths.append(_write(folder / f"scan_{i:03d}.pdf", scan_pdf(f"Scanned letter number {i}.")))
    for i in range(pngs):
        paths.append(_write(folder / f"image_{i:03d}.png", samples.png(200 + i, 120)))
    return paths


def scan_pdf(line: str) -> bytes:
    """A one-page image-only PDF (a scan without a text layer) whose picture says `line`."""
    image = samples.render_lines([line] * 12, 850, 1100, top=80, left=60)
    out = io.BytesIO()
    image.save(out, "PDF", resolution=100.0)
    return out.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def run_flow(**params: Any) -> dict[str, Any]:
    """One docrouter flow run, in this process (the tests' Prefect server records it)."""
    from docrouter_flows.run import docrouter_run

    return asyncio.run(docrouter_run(**params))


def results(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "results")


def start_run(source: Path, out: Path, emu: Any, api_url: str | None, **env: str) -> subprocess.Popen:
    """A real `docrouter run` against the emulator `emu`, in its own process group (as a terminal starts it);
    without `api_url` it starts Prefect's temporary server."""
    environ = {**os.environ, "OPENROUTER_API_KEY": emu.api_key, **env}
    if api_url:
        environ["PREFECT_API_URL"] = api_url
    command = [sys.executable, "-m", "docrouter_commands.cli", "run", str(source), "--out", str(out)]
    command += ["--base-url", emu.base_url, "--concurrency", "4", "--batch-size", "10"]
    return subprocess.Popen(
        command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, text=True
    )


def chat_records(emu: Any) -> list:
    """The emulator's chat completion requests, oldest first."""
    return [r for r in emu.records if r.path.endswith("/chat/completions")]
