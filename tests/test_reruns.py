"""Reruns leave terminal failures alone (issue 13): no request, no row, until --retry-failed or new bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import samples
from docrouter.call.rows import RunColumns, Unsent, row
from docrouter.discover.documents import Document
from docrouter.emulator import Emulator, RequestRecord
from docrouter.errors import TERMINAL_ERROR_TYPES, is_terminal
from docrouter.run.ledger import read_ledger
from docrouter.store.store import Store
from pipeline import results, run_flow

# path -> (status, error_type) of the five files that fail whatever the moment: four locally, one at the API
# (the emulator below refuses images over 10,000 pixels with a 400).
FAILING = {
    "locked.pdf": ("failed", "encrypted"),
    "truncated.pdf": ("failed", "corrupt"),
    "notes.txt": ("skipped", "unsupported"),
    "pipe.pdf": ("skipped", "unsupported"),
    "too_many_pixels.png": ("failed", "bad_request"),
}
GOOD = {"letter.pdf": ("ok", None), "small.png": ("ok", None)}


def test_terminal_types_are_the_spec_table_and_everything_else_is_transient() -> None:
    spec = {"encrypted", "corrupt", "empty", "unsupported", "unreadable", "too_large", "too_complex"}
    spec |= {"bad_request", "invalid_output", "not_found"}
    assert spec == TERMINAL_ERROR_TYPES
    transient = ["rate_limited", "timeout", "server_error", "connection", "budget", "price", "credits", "auth"]
    transient += ["changed", "truncated", "unreadable_reply", "fetch", "moderation", "a_type_added_later", None]
    assert not any(is_terminal(t) for t in transient)


def test_a_key_is_a_known_failure_only_when_its_latest_row_is_a_terminal_failure(tmp_path: Path) -> None:
    history = {  # doc_id -> its rows, oldest first: (status, error_type)
        "a" * 64: [("failed", "corrupt"), ("failed", "timeout")],
        "b" * 64: [("failed", "timeout"), ("failed", "corrupt")],
        "c" * 64: [("failed", "corrupt"), ("ok", None)],
        "d" * 64: [("skipped", "unsupported")],
        "e" * 64: [("over_budget", "budget")],
    }
    run = RunColumns(run_id="r1", model="m", prompt_sha256="p")
    with Store(tmp_path, "r1") as store:
        for doc_id, rows in history.items():
            doc = Document(f"/src/{doc_id[0]}.pdf", f"{doc_id[0]}.pdf", "/src", 3, doc_id, "application/pdf", "pdf")
            for second, (status, error_type) in enumerate(rows):
                when = f"2026-01-01T00:00:0{second}.000+00:00"
                store.record(row(Unsent(doc, None, None), run, status, when, error_type=error_type, finished_at=when))
        live = read_ledger(tmp_path, "m", "p").failed  # rows still in the journal
    assert live == read_ledger(tmp_path, "m", "p").failed == {("b" * 64, "m", "p"), ("d" * 64, "m", "p")}


def _folder(source: Path) -> Path:
    source.mkdir()
    (source / "locked.pdf").write_bytes(samples.encrypted_pdf(user_password="secret"))
    (source / "truncated.pdf").write_bytes(samples.truncated_pdf())
    (source / "notes.txt").write_text("minutes of the meeting")
    os.mkfifo(source / "pipe.pdf")
    (source / "too_many_pixels.png").write_bytes(samples.png(200, 120))
    (source / "letter.pdf").write_bytes(samples.text_pdf(1, text="A letter about the roof repairs. " * 20))
    (source / "small.png").write_bytes(samples.png(60, 40))
    return source


@dataclass(frozen=True)
class Runs:
    """The same folder run four times against one emulator: what each run sent and the rows after it."""

    source: Path
    summaries: list[dict[str, Any]]
    chats: list[int]  # chat requests sent by each run
    frames: list[pd.DataFrame]  # results after each run


@pytest.fixture(scope="module")
def runs(prefect_api_url: str, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    base = tmp_path_factory.mktemp("reruns")
    source, out = _folder(base / "source"), base / "out"
    summaries, chats, frames = [], [], []
    with Emulator(max_image_pixels=10_000) as emu, pytest.MonkeyPatch.context() as env:
        env.setenv("OPENROUTER_API_KEY", emu.api_key)
        for extra in ({}, {}, {"retry_failed": True}, {"touch": True}):
            if extra.pop("touch", False):
                (source / "notes.txt").write_text("minutes of the meeting, corrected")
            before = _chats(emu.records)
            summaries.append(run_flow(sources=[str(source)], out=str(out), base_url=emu.base_url, **extra))
            chats.append(_chats(emu.records) - before)
            frames.append(results(out))
    return Runs(source, summaries, chats, frames)


def _chats(records: list[RequestRecord]) -> int:
    return sum(1 for r in records if r.path.endswith("/chat/completions"))


def _outcomes(frame: pd.DataFrame) -> dict[str, tuple[str, str | None]]:
    assert frame.path.is_unique, frame.path.value_counts()
    return {r.path: (r.status, None if pd.isna(r.error_type) else r.error_type) for r in frame.itertuples()}


@pytest.mark.slow
def test_first_run_writes_one_row_per_file_with_its_failure(runs: Runs) -> None:
    assert _outcomes(runs.frames[0]) == FAILING | GOOD
    assert runs.chats[0] == 3  # the two good files and the image the API refuses (a 400 is not retried)


@pytest.mark.slow
def test_a_rerun_sends_nothing_and_writes_nothing_for_five_terminal_failures(runs: Runs) -> None:
    assert runs.chats[1] == 0
    assert len(runs.frames[1]) == len(runs.frames[0]) == 7
    assert runs.summaries[1]["known_failures"] == 5
    assert runs.summaries[1]["already_done"] == 2
    assert runs.summaries[1]["by_status"] == {}


@pytest.mark.slow
def test_retry_failed_tries_each_known_failure_again(runs: Runs) -> None:
    third = runs.frames[2][runs.frames[2].run_id == runs.summaries[2]["run_id"]]
    assert _outcomes(third) == FAILING
    assert runs.chats[2] == 1  # only the refused image is sent again; the good files stay done
    assert runs.summaries[2]["known_failures"] == 0
    assert runs.summaries[2]["already_done"] == 2


@pytest.mark.slow
def test_a_failing_file_with_new_bytes_is_tried_again_without_the_flag(runs: Runs) -> None:
    fourth = runs.frames[3][runs.frames[3].run_id == runs.summaries[3]["run_id"]]
    assert _outcomes(fourth) == {"notes.txt": ("skipped", "unsupported")}
    assert runs.chats[3] == 0
    assert runs.summaries[3]["known_failures"] == 4


def _cli(*args: str | Path, api_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_LOGGING_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "docrouter_commands.cli", *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, check=False)


@pytest.mark.slow
def test_the_command_says_how_many_known_failures_it_left_and_retry_failed_takes_them(
    prefect_api_url: str, tmp_path: Path
) -> None:
    source, out = tmp_path / "source", tmp_path / "out"
    source.mkdir()
    (source / "truncated.pdf").write_bytes(samples.truncated_pdf())
    (source / "notes.txt").write_text("not a document")
    (source / "letter.pdf").write_bytes(samples.text_pdf(1))
    done = [
        _cli("run", source, "--out", out, "--offline", *extra, api_url=prefect_api_url)
        for extra in ([], [], ["--retry-failed"])
    ]
    assert [d.returncode for d in done] == [0, 0, 0], done[-1].stderr[-2000:]
    headlines = [d.stdout.splitlines()[0] for d in done]
    assert "0 known failures unchanged" in headlines[0]
    assert "nothing new; 1 already done; 2 known failures unchanged" in headlines[1]
    assert "failed 1, skipped 1; 1 already done; 0 known failures unchanged" in headlines[2]
    summaries = [json.loads(p.read_text()) for p in sorted((out / "_runs").glob("*.json"))]
    assert [s["known_failures"] for s in summaries] == [0, 2, 0]
    assert len(results(out)) == 3 + 0 + 2
