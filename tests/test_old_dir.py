"""An output DIR written by an earlier version (tests/fixtures/dir-9c69dad) keeps working: read, reported,
planned and resumed, whatever columns later versions add (missing ones read as nulls or defaults)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SAMPLES
from docrouter.run.ledger import answers_of
from docrouter.store.datasets import RESULTS_SCHEMA
from docrouter.store.store import Store, read_results
from docrouter_commands import cli

FIXTURE = Path(__file__).parent / "fixtures" / "dir-9c69dad"
SOURCES = ("born_digital_text.pdf", "receipt.png", "scanned_no_text_layer.pdf", "needs_user_password.pdf")
SOURCES += ("unsupported_notes.txt", "receipt.jpg")  # receipt.jpg: answered by the killed run, in its journal
MODEL = "google/gemini-2.5-flash"


def old_dir(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(FIXTURE, out)
    return out


def sha(name: str) -> str:
    return hashlib.sha256((SAMPLES / name).read_bytes()).hexdigest()


def test_every_column_of_today_reads_from_an_old_dir(tmp_path: Path) -> None:
    rows = read_results(old_dir(tmp_path))
    assert list(rows.columns) == RESULTS_SCHEMA.names  # columns added since read as nulls
    assert len(rows) == 6 and (rows.status == "ok").sum() == 4


def test_a_store_opened_on_an_old_dir_resumes_it(tmp_path: Path) -> None:
    out = old_dir(tmp_path)
    with Store(out, "run-new") as store:
        done = {doc_id for doc_id, _, _ in store.done_keys()}
        assert {sha("born_digital_text.pdf"), sha("receipt.png"), sha("receipt.jpg")} <= done
        prompt = next(iter(store.done_keys()))[2]
        old = answers_of(out, [sha("receipt.png")], MODEL, prompt)[sha("receipt.png")]
        assert old.status == "ok" and old.parts == 1
    assert not list((out / "_journal").glob("*.jsonl"))  # the killed run's journal is compacted
    assert len(read_results(out)) == 6


@pytest.mark.slow
def test_report_and_plan_over_an_old_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = old_dir(tmp_path)
    assert cli.main(["report", str(out)]) == 0
    assert "6 documents" in capsys.readouterr().out
    source = tmp_path / "src"
    source.mkdir()
    for name in SOURCES:
        shutil.copy(SAMPLES / name, source / name)
    assert cli.main(["plan", str(source), "--out", str(out), "--offline"]) == 0


@pytest.mark.slow
def test_a_run_resumes_an_old_dir_and_answers_only_what_is_new(tmp_path: Path, prefect_api_url: str) -> None:
    out = old_dir(tmp_path)
    source = tmp_path / "src"
    source.mkdir()
    for name in (*SOURCES, "receipt.webp"):
        shutil.copy(SAMPLES / name, source / name)
    env = {**os.environ, "PREFECT_API_URL": prefect_api_url}
    command = [sys.executable, "-m", "docrouter_commands.cli", "run", str(source), "--out", str(out), "--offline"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-3000:]
    assert "4 already done" in run.stdout
    rows = read_results(out)
    ok = rows[rows.status == "ok"]
    assert ok.doc_id.is_unique and len(ok) == 5
    new_run = rows.run_id.max()
    assert set(ok[ok.run_id == new_run].doc_id) == {sha("receipt.webp")}  # nothing old was paid again


def test_columns_added_later_read_as_defaults_or_nulls_from_old_parts_and_journals(tmp_path: Path) -> None:
    """What the next version sees: its schema has columns this fixture never wrote (even non-nullable ones)."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from docrouter.store.datasets import part_paths, read_table, tolerant_table

    out = old_dir(tmp_path)
    newer = RESULTS_SCHEMA.append(pa.field("future_count", pa.int64(), nullable=False))
    newer = newer.append(pa.field("future_label", pa.string()))
    stored = read_table(part_paths(out / "results"), newer)
    assert stored.num_rows == 5 and stored["future_count"].null_count == 5
    assert stored["truncated"].null_count == stored["reasoning_tokens"].null_count == 5  # issue 16's columns
    journal = next((out / "_journal").glob("*.jsonl"))
    rows = [json.loads(line)["result"] for line in journal.read_text().splitlines()]
    table = tolerant_table(rows, newer, {"future_count": 0})
    assert table["future_count"].to_pylist() == [0] and table["future_label"].to_pylist() == [None]
    pq.write_table(table, tmp_path / "compacted.parquet")  # a null in a column declared non-nullable is written
    assert tolerant_table(rows, newer, {}).schema.field("future_count").nullable
