"""`docrouter report DIR`: totals over the latest row per document, money over every row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docrouter.errors import ConfigError
from docrouter.store.store import Store
from docrouter_commands.report import build_report, render_report, report_json
from test_store import failed, make_result


def write_two_runs(out: Path) -> None:
    """run-a: doc 1 times out (paid $0.001), doc 2 ok, doc 3 encrypted; run-b answers doc 1 with OCR."""
    with Store(out, "run-a") as store:
        store.record(
            make_result(1, status="failed", error_type="timeout", error_message="no answer in 300 s", cost_usd=0.001)
        )
        store.record(make_result(2))
        store.record(failed(3))
    with Store(out, "run-b") as store:
        late = "2025-03-02T09:00:00.000+00:00"
        store.record(
            make_result(1, "run-b", engine="mistral-ocr", cost_usd=0.004, est_cost_usd=0.005, finished_at=late)
        )


def test_latest_row_per_document_counts_and_older_rows_are_reported_as_superseded(tmp_path: Path) -> None:
    write_two_runs(tmp_path)
    report = build_report(tmp_path)
    assert (report.rows, report.documents, report.superseded) == (4, 3, 1)
    assert {t.name: t.documents for t in report.by_status} == {"ok": 2, "failed": 1}
    assert {t.name: t.by_status for t in report.by_engine} == {
        "mistral-ocr": {"ok": 1},
        "pdf-text": {"ok": 1},
        "-": {"failed": 1},
    }
    assert [(t.name, t.documents) for t in report.by_model] == [("openai/gpt-4o-mini", 3)]


def test_money_counts_every_paid_row_and_compares_estimate_with_actual(tmp_path: Path) -> None:
    write_two_runs(tmp_path)
    report = build_report(tmp_path)
    assert report.spent_usd == pytest.approx(0.001 + 0.0015 + 0.004)
    assert report.superseded_spent_usd == pytest.approx(0.001)
    assert (report.sent_est_usd, report.sent_cost_usd) == (pytest.approx(0.002 + 0.005 + 0.002), pytest.approx(0.0055))
    assert (report.prompt_tokens, report.completion_tokens) == (900 * 3, 120 * 3)
    assert [(r.run_id, r.rows) for r in report.runs] == [("run-a", 3), ("run-b", 1)]


def test_failures_are_grouped_by_error_type_with_one_example_each(tmp_path: Path) -> None:
    with Store(tmp_path, "run-a") as store:
        for n in range(3):
            store.record(failed(n))
        store.record(make_result(9, status="over_budget", error_type="budget", error_message="would cross $1.00"))
    failures = build_report(tmp_path).failures
    assert [(f.error_type, f.status, f.count) for f in failures] == [
        ("encrypted", "failed", 3),
        ("budget", "over_budget", 1),
    ]
    assert failures[0].example == "inbox/doc-0.pdf: needs a user password"


def test_render_prints_fixed_width_tables(tmp_path: Path) -> None:
    write_two_runs(tmp_path)
    text = render_report(build_report(tmp_path))
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("engine "))
    row = next(line for line in lines if line.startswith("mistral-ocr "))
    assert header.index("spent $") + len("spent $") == row.index("0.0040") + len("0.0040")
    assert "3 documents (latest row per doc_id, path, model, prompt) in 4 rows\n1 older rows superseded" in text
    assert "money spent: $0.0065 in all rows ($0.0010 of it on superseded rows)" in text
    assert "encrypted   failed     1  inbox/doc-3.pdf: needs a user password" in text
    assert "2 runs found" in text
    assert "over_budget" not in header  # a status column only when some document has it
    assert max(len(line) for line in lines) <= 100


def test_report_of_a_dir_still_being_written_includes_the_journal_tail(tmp_path: Path) -> None:
    store = Store(tmp_path, "run-a", flush_every=1000)
    store.record(make_result(1))
    assert build_report(tmp_path).documents == 1
    store.close()


def test_missing_or_empty_dir_is_a_one_line_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        build_report(tmp_path / "nowhere")
    Store(tmp_path / "empty", "run-a").close()
    with pytest.raises(ConfigError, match="no results in .*empty: nothing to report yet"):
        build_report(tmp_path / "empty")


def test_failed_lists_every_failed_file_with_its_error(tmp_path: Path) -> None:
    with Store(tmp_path, "run-a") as store:
        for n in range(3):
            store.record(failed(n))
        store.record(make_result(9, status="over_budget", error_type="budget", error_message="would cross $1.00"))
        store.record(make_result(5))
    report = build_report(tmp_path)
    assert [(f.path, f.error_type) for f in report.failed_files] == [
        ("inbox/doc-0.pdf", "encrypted"),
        ("inbox/doc-1.pdf", "encrypted"),
        ("inbox/doc-2.pdf", "encrypted"),
        ("inbox/doc-9.pdf", "budget"),
    ]
    text = render_report(report, failed=True)
    assert all(f"inbox/doc-{n}.pdf" in text for n in (0, 1, 2, 9)) and "would cross $1.00" in text
    assert "inbox/doc-1.pdf" not in render_report(report)  # without --failed: one example per error type


def test_json_has_the_issue_keys_and_billed_over_expected_per_engine(tmp_path: Path) -> None:
    write_two_runs(tmp_path)
    data = json.loads(json.dumps(report_json(build_report(tmp_path), failed=True)))
    keys = {"documents", "rows", "cost_usd", "by_status", "by_engine", "by_error_type", "estimate_accuracy"}
    assert keys <= set(data)
    assert (data["documents"], data["rows"]) == (3, 4)
    assert data["by_status"] == {"ok": 2, "failed": 1}
    assert data["by_error_type"] == {"encrypted": 1}
    assert data["estimate_accuracy"] == {"mistral-ocr": pytest.approx(0.004 / 0.005), "pdf-text": pytest.approx(0.75)}
    assert data["by_engine"]["mistral-ocr"]["documents"] == 1
    assert [f["path"] for f in data["failed"]] == ["inbox/doc-3.pdf"]
