"""A damaged output folder: junk or truncated parts are quarantined or skipped with a warning, damaged journal
lines are counted, the readable rows are kept, and neither `run` nor `report` crashes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import SAMPLES
from docrouter.store.journal import JOURNAL_DIR
from docrouter.store.store import Store, read_results
from docrouter_commands import cli
from test_store import PROMPT, make_annotation, make_result

MODEL = "openai/gpt-4o-mini"


def doc(n: int) -> str:
    return f"{n:064x}"


def stored_dir(tmp_path: Path, runs: int = 2) -> Path:
    """A DIR with one part per run (two ok rows each: documents 10n and 10n + 1)."""
    for n in range(runs):
        run_id = f"run-{n}"
        with Store(tmp_path, run_id) as store:
            annotation = make_annotation(10 * n, "hash", "2025-03-01T10:00:00.000+00:00", run_id)
            store.record(make_result(10 * n, run_id), [annotation])
            store.record(make_result(10 * n + 1, run_id))
    return tmp_path


def damage_first_part(out: Path, how: str) -> Path:
    part = sorted((out / "results").glob("part-*.parquet"))[0]
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2] if how == "truncated" else b"not parquet at all\n" * 20)
    return part


@pytest.mark.parametrize("how", ["junk", "truncated"])
def test_a_writer_quarantines_a_damaged_part_and_keeps_the_rest(
    tmp_path: Path, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = stored_dir(tmp_path)
    part = damage_first_part(out, how)
    with Store(out, "run-next") as store:
        assert store.done_keys() == {(doc(10), MODEL, PROMPT), (doc(11), MODEL, PROMPT)}  # the readable part's
        store.record(make_result(20, "run-next"))
    moved = out / "quarantine" / "results" / part.name
    assert moved.exists() and not part.exists()
    warning = capsys.readouterr().err
    assert f"moved unreadable part {part} to {moved}" in warning and warning.count("\n") == 1
    assert sorted(read_results(out).doc_id) == [doc(10), doc(11), doc(20)]


@pytest.mark.slow
def test_report_reads_what_it_can_and_names_the_damaged_part_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = stored_dir(tmp_path)
    part = damage_first_part(out, "junk")
    assert cli.main(["report", str(out)]) == 0
    captured = capsys.readouterr()
    assert "2 documents" in captured.out and "Traceback" not in captured.err
    assert captured.err.splitlines() == [
        f"docrouter: warning: skipped unreadable part {part} (Parquet magic bytes not found in footer. Either the "
        "file is corrupted or this is not a parquet file.); its rows are not counted until it is repaired"
    ]
    assert part.exists()  # reading never moves anything


def test_a_part_of_another_schema_is_quarantined(tmp_path: Path) -> None:
    out = stored_dir(tmp_path, runs=1)
    table = pq.read_table(next((out / "results").glob("*.parquet")))
    odd = table.set_column(table.schema.get_field_index("cost_usd"), "cost_usd", table["cost_usd"].cast("string"))
    pq.write_table(odd, out / "results" / "part-zzz-00000000.parquet")
    Store(out, "run-next").close()
    assert (out / "quarantine" / "results" / "part-zzz-00000000.parquet").exists()
    assert len(read_results(out)) == 2


def killed_run_journal(out: Path, lines: list[bytes]) -> Path:
    """A journal segment a killed run left, made of `lines` (whole or damaged)."""
    (out / JOURNAL_DIR).mkdir(parents=True, exist_ok=True)
    segment = out / JOURNAL_DIR / "run-dead-00000000.jsonl"
    segment.write_bytes(b"".join(lines))
    return segment


def line(n: int) -> bytes:
    return json.dumps({"result": asdict(make_result(n, "run-dead")), "annotations": []}).encode() + b"\n"


def test_damaged_journal_lines_are_counted_and_the_readable_rows_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbled_row = json.loads(line(9))
    garbled_row["result"]["cost_usd"] = "lots"  # whole JSON, but not a row
    lines = [line(1), b'{"result": {"doc_id": "do\xff\n', line(2), json.dumps(garbled_row).encode() + b"\n"]
    segment = killed_run_journal(tmp_path, [*lines, line(3)[:40]])  # and a torn last line
    assert sorted(read_results(tmp_path).doc_id) == [doc(1), doc(2)]  # a reader keeps what it can
    assert "1 damaged journal lines skipped" in capsys.readouterr().err
    with Store(tmp_path, "run-next") as store:
        assert {key[0] for key in store.done_keys()} == {doc(1), doc(2)}
    warning = capsys.readouterr().err
    assert f"{segment}: 3 journal lines could not be read" in warning
    assert (tmp_path / "quarantine" / JOURNAL_DIR / segment.name).read_bytes().startswith(line(1))
    assert sorted(read_results(tmp_path).doc_id) == [doc(1), doc(2)]
    assert not segment.exists()


@pytest.mark.slow
def test_a_run_over_a_dir_with_a_junk_part_and_a_damaged_journal_goes_on(tmp_path: Path, prefect_api_url: str) -> None:
    out = stored_dir(tmp_path / "out")
    part = damage_first_part(out, "junk")
    killed_run_journal(out, [line(1), b"\x00\x00garbage\n", line(2)])
    env = {**os.environ, "PREFECT_API_URL": prefect_api_url}
    command = [sys.executable, "-m", "docrouter_commands.cli", "run", str(SAMPLES), "--out", str(out), "--offline"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-3000:]
    assert f"docrouter: warning: moved unreadable part {part} to " in run.stderr
    assert "1 journal lines could not be read" in run.stderr
    rows = read_results(out)
    assert {doc(1), doc(2), doc(10), doc(11)} <= set(rows.doc_id)  # the readable rows are all kept
    assert (rows.run_id == "run-0").sum() == 0  # the junk part's rows are in quarantine, not counted
