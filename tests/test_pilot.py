"""`plan --pilot N` against the emulator over loopback: the pilot answers a stratified sample for real (recorded
in DIR, never sent again by the run), and its forecast of the whole bill holds on a 200-document mixed folder.
"""

from __future__ import annotations

import io
import json
import os
import random
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pypdf import PdfWriter

import samples
from docrouter.emulator import Emulator
from docrouter.store import lease
from pipeline import chat_records, results, run_flow, scan_pdf

pytestmark = pytest.mark.slow  # every test runs `docrouter plan --pilot` in a subprocess

SEED = 7
PROMPT = "Summarise this document in a few sentences."  # not a whole-text prompt: the short prior applies


def _prose(rng: random.Random, doc: int, page: int) -> str:
    """A page of 1..9 sentences, so the emulator's extractive answers differ in length from file to file."""
    picked = rng.choices(samples.SENTENCES, k=rng.randint(1, 9))
    return f"File {doc} page {page + 1}. " + " ".join(picked)


def _text_pdf(rng: random.Random, doc: int) -> bytes:
    pages = rng.choice((1, 1, 1, 2, 3, 5, 8, 12, 20))
    parts = [samples.text_pdf(1, text=_prose(rng, doc, p)) for p in range(pages)]
    return _joined(parts)


def _joined(parts: list[bytes]) -> bytes:
    writer = PdfWriter()
    for part in parts:
        writer.append(io.BytesIO(part))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _scan(rng: random.Random, doc: int) -> bytes:
    return _joined([scan_pdf(f"Scanned letter {doc}, sheet {p + 1}.") for p in range(rng.choice((1, 1, 2, 3)))])


def _mixed(rng: random.Random, doc: int) -> bytes:
    return _joined([_text_pdf(rng, doc), scan_pdf(f"Signed annex of file {doc}.")])


def _image(rng: random.Random, doc: int) -> bytes:
    width, height = rng.randint(200, 1600), rng.randint(150, 1200)
    return samples.png(width, height) if doc % 2 else samples.jpeg(width, height)


def write_mixed_folder(folder: Path, seed: int = SEED) -> None:
    """200 distinct files: 100 text PDFs (1-20 pages), 40 scans (1-3 pages), 20 mixed PDFs, 40 images."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    kinds = [("text", _text_pdf, "pdf")] * 100 + [("scan", _scan, "pdf")] * 40
    kinds += [("mixed", _mixed, "pdf")] * 20 + [("image", _image, "img")] * 40
    for doc, (name, make, ext) in enumerate(kinds):
        data = make(rng, doc)
        suffix = ext if ext == "pdf" else ("png" if doc % 2 else "jpg")
        (folder / f"{name}_{doc:03d}.{suffix}").write_bytes(data)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("pilot") / "src"
    write_mixed_folder(source)
    return source


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Emulator]:
    # Each test its own cache: no answer lengths learned by another test's pilot move this test's estimates.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with Emulator() as emulator:
        monkeypatch.setenv("OPENROUTER_API_KEY", emulator.api_key)
        yield emulator


def plan_pilot(source: Path, out: Path, emu: Emulator, *extra: str) -> subprocess.CompletedProcess[str]:
    """A real `docrouter plan --pilot` process against the emulator."""
    command = [
        sys.executable,
        "-m",
        "docrouter_commands.cli",
        "plan",
        str(source),
        "--out",
        str(out),
        "--prompt",
        PROMPT,
    ]
    command += ["--base-url", emu.base_url, *extra]
    environ = {**os.environ, "OPENROUTER_API_KEY": emu.api_key}
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=600, check=False)


def test_pilot_forecast_lands_within_20_percent_of_the_whole_bill(
    folder: Path, emu: Emulator, tmp_path: Path, prefect_api_url: str
) -> None:
    out = tmp_path / "out"
    done = plan_pilot(folder, out, emu, "--pilot", "20", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    pilot_requests = chat_records(emu)
    piloted = results(out)
    assert plan["pilot_documents"] == len(piloted) == 20 and set(piloted.status) == {"ok"}
    assert plan["pilot_spent_usd"] == pytest.approx(sum(r.billed_usd for r in pilot_requests))
    assert len(pilot_requests) == piloted.attempts.sum()  # split documents: one request per part, and a combine

    summary = run_flow(sources=[str(folder)], out=str(out), prompt=PROMPT, base_url=emu.base_url)
    requests = chat_records(emu)
    bill = sum(r.billed_usd for r in requests)
    frame = results(out)
    ran = frame[frame.run_id == summary["run_id"]]
    assert len(frame) == 200 and set(frame.status) == {"ok"}
    assert summary["already_done"] == 20 and not set(ran.doc_id) & set(piloted.doc_id)
    pilot_files = {h for r in pilot_requests for h in r.file_hashes}
    assert pilot_files and not pilot_files & {h for r in requests[len(pilot_requests) :] for h in r.file_hashes}
    assert len(requests) - len(pilot_requests) == ran.attempts.sum()  # the run sent only its own 180

    # Not trivially passing: answer lengths spread widely, and the plan's own estimate misses by more than 20%.
    answers = frame[frame.status == "ok"].completion_tokens
    assert statistics.pstdev(answers) / statistics.mean(answers) > 0.4
    assert abs(plan["expected_usd"] - bill) / bill > 0.2

    low, high = plan["forecast_low_usd"], plan["forecast_high_usd"]
    forecast, expected = plan["forecast_usd"], plan["expected_usd"]
    print(f"\npilot forecast ${forecast:.4f} [{low:.4f}, {high:.4f}] vs bill ${bill:.4f}; plan said ${expected:.4f}")
    assert abs(plan["forecast_usd"] - bill) / bill <= 0.20
    assert low <= bill <= high
    assert high / low <= 1.5


def test_plan_json_with_a_pilot_keeps_the_plan_keys_and_adds_the_forecast(emu: Emulator, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for i in range(4):
        (source / f"text_{i}.pdf").write_bytes(samples.text_pdf(1, text=f"Short report number {i}. " * (i + 1)))
    (source / "scan.pdf").write_bytes(scan_pdf("A scanned letter."))
    done = plan_pilot(source, tmp_path / "out", emu, "--pilot", "2", "--json")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    for key in ("expected_usd", "max_usd", "documents", "model", "sent"):
        assert key in got
    floats = ("forecast_usd", "forecast_low_usd", "forecast_high_usd", "pilot_spent_usd")
    floats += ("forecast_seconds", "forecast_low_seconds", "forecast_high_seconds")
    assert all(isinstance(got[k], float) for k in floats)
    assert got["pilot_documents"] == 2 and isinstance(got["pilot_documents"], int)
    assert got["forecast_low_usd"] <= got["forecast_usd"] <= got["forecast_high_usd"]
    assert got["pilot_spent_usd"] > 0 and len(chat_records(emu)) == 2
    kept = json.loads((tmp_path / "out" / "_forecast.json").read_text())  # the run's progress compares with it
    assert kept["rest_usd"] == pytest.approx(got["forecast_usd"] - got["pilot_spent_usd"])


def test_pilot_stays_within_the_budget(emu: Emulator, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for i in range(6):
        (source / f"scan_{i}.pdf").write_bytes(scan_pdf(f"Scanned letter {i}."))
    done = plan_pilot(source, tmp_path / "out", emu, "--pilot", "6", "--budget", "0")
    assert done.returncode == 2
    assert chat_records(emu) == []  # a zero budget sends nothing
    assert done.stderr.startswith("docrouter: error: the pilot answered none of its 6 documents (")
    assert len(done.stderr.splitlines()) == 1


def test_pilot_without_out_is_a_one_line_error(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "docrouter_commands.cli", "plan", str(tmp_path), "--pilot", "3", "--offline"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "docrouter: error: --pilot N needs N >= 0 and --out DIR (where the pilot's answers are recorded)"
    )


def test_pilot_stopped_by_a_402_says_so_in_one_line_and_forecasts_nothing(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "scan.pdf").write_bytes(scan_pdf("A scanned letter."))
    with Emulator(credits_usd=0.0) as emu:
        done = plan_pilot(source, tmp_path / "out", emu, "--pilot", "1")
    assert done.returncode == 2 and "forecast" not in done.stdout
    assert done.stderr.startswith("docrouter: error: ") and "402" in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_pilot_respects_the_lease_of_a_run_writing_dir(emu: Emulator, tmp_path: Path) -> None:
    source, out = tmp_path / "src", tmp_path / "out"
    source.mkdir()
    (source / "scan.pdf").write_bytes(scan_pdf("A scanned letter."))
    with lease.acquire(out, run_id="run-busy"):  # this test process is the live writer
        done = plan_pilot(source, out, emu, "--pilot", "1")
    assert done.returncode == 2 and chat_records(emu) == []
    assert done.stderr.startswith("docrouter: error: ") and "run-busy" in done.stderr
    assert len(done.stderr.splitlines()) == 1
