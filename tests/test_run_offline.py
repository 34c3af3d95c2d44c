"""The offline run over data/samples through the real Prefect flow, read back row by row (issue 2)."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import SAMPLES
from docrouter.emulator import Emulator, RequestRecord
from pipeline import results, run_flow

pytestmark = pytest.mark.slow  # starts servers, subprocesses or Prefect flows

PDF = "application/pdf"

# path -> (status, engine, mime_type, error_type), from what scripts/make_samples.py makes each file.
EXPECTED: dict[str, tuple[str, str | None, str, str | None]] = {
    "born_digital_text.pdf": ("ok", "local-text", PDF, None),
    "copies/born_digital_text_copy.pdf": ("ok", "local-text", PDF, None),
    "owner_password_only.pdf": ("ok", "local-text", PDF, None),
    "scan_with_good_ocr_layer.pdf": ("ok", "local-text", PDF, None),
    "scanned_no_text_layer.pdf": ("ok", "native", PDF, None),
    "mixed_text_and_scan.pdf": ("ok", "native", PDF, None),
    "scan_with_junk_ocr_layer.pdf": ("ok", "native", PDF, None),
    "scan_text_only_page_numbers.pdf": ("ok", "native", PDF, None),
    "text_drawn_as_vector_outlines.pdf": ("ok", "native", PDF, None),
    "receipt.png": ("ok", "image", "image/png", None),
    "receipt.jpg": ("ok", "image", "image/jpeg", None),
    "receipt.webp": ("ok", "image", "image/webp", None),
    "receipt_animated.gif": ("ok", "image", "image/gif", None),
    "png_named_as.pdf": ("ok", "image", "image/png", None),
    "blank_pages.pdf": ("failed", None, PDF, "empty"),
    "needs_user_password.pdf": ("failed", None, PDF, "encrypted"),
    "truncated_download.pdf": ("failed", None, PDF, "corrupt"),
    "unsupported_notes.txt": ("skipped", None, "application/octet-stream", "unsupported"),
    "unsupported_receipt.tiff": ("skipped", None, "image/tiff", "unsupported"),
}
COPY, ORIGINAL = "copies/born_digital_text_copy.pdf", "born_digital_text.pdf"

TS = pa.timestamp("us", tz="UTC")
# SPEC.md section 4: every results column and its Arrow type.
RESULTS_COLUMNS: dict[str, pa.DataType] = {
    "run_id": pa.string(),
    "doc_id": pa.string(),
    "path": pa.string(),
    "source_root": pa.string(),
    "size_bytes": pa.int64(),
    "mime_type": pa.string(),
    "kind": pa.string(),
    "pages": pa.int64(),
    "engine": pa.string(),
    "engine_reason": pa.string(),
    "model": pa.string(),
    "prompt_sha256": pa.string(),
    "status": pa.string(),
    "error_type": pa.string(),
    "error_message": pa.string(),
    "attempts": pa.int64(),
    "est_cost_usd": pa.float64(),
    "cost_usd": pa.float64(),
    "prompt_tokens": pa.int64(),
    "completion_tokens": pa.int64(),
    "generation_id": pa.string(),
    "content": pa.string(),
    "finish_reason": pa.string(),
    "started_at": TS,
    "finished_at": TS,
}


@dataclass(frozen=True)
class OfflineRun:
    """One offline flow run over a copy of data/samples, and its results as read right after it."""

    source: Path
    out: Path
    summary: dict[str, Any]
    frame: pd.DataFrame

    def row(self, path: str) -> pd.Series:
        rows = self.frame[self.frame.path == path]
        assert len(rows) == 1, f"{path}: {len(rows)} rows"
        return rows.iloc[0]


@pytest.fixture(scope="module")
def offline(prefect_api_url: str, tmp_path_factory: pytest.TempPathFactory) -> OfflineRun:
    base = tmp_path_factory.mktemp("offline")
    source = base / "samples"
    shutil.copytree(SAMPLES, source)
    out = base / "out"
    summary = run_flow(sources=[str(source)], out=str(out), offline=True)
    return OfflineRun(source, out, summary, results(out))


@dataclass(frozen=True)
class Rerun:
    """The same folder run again, online against an emulator whose request log the test reads."""

    records: list[RequestRecord]
    summary: dict[str, Any]
    frame: pd.DataFrame


@pytest.fixture(scope="module")
def rerun(offline: OfflineRun) -> Rerun:
    with Emulator() as emu, pytest.MonkeyPatch.context() as env:
        env.setenv("OPENROUTER_API_KEY", emu.api_key)
        summary = run_flow(sources=[str(offline.source)], out=str(offline.out), base_url=emu.base_url)
        records = emu.records
    return Rerun(records, summary, results(offline.out))


def test_every_sample_file_gets_exactly_one_row(offline: OfflineRun) -> None:
    assert sorted(offline.frame.path) == sorted(EXPECTED)
    assert offline.frame.run_id.nunique() == 1
    assert offline.frame.run_id.iloc[0] == offline.summary["run_id"]


def _na(value: Any) -> Any:
    return None if pd.isna(value) else value


def test_each_sample_has_its_expected_status_engine_mime_type_and_error(offline: OfflineRun) -> None:
    actual = {r.path: (r.status, _na(r.engine), r.mime_type, _na(r.error_type)) for r in offline.frame.itertuples()}
    assert actual == EXPECTED


def test_cost_is_positive_for_paid_rows_and_zero_for_failed_skipped_and_copy_rows(offline: OfflineRun) -> None:
    frame = offline.frame
    paid = frame[(frame.status == "ok") & (frame.path != COPY)]
    free = frame[(frame.status != "ok") | (frame.path == COPY)]
    assert sorted(paid.path) == sorted(p for p, e in EXPECTED.items() if e[0] == "ok" and p != COPY)
    assert paid.cost_usd.gt(0).all(), paid[["path", "cost_usd"]]
    assert paid.prompt_tokens.gt(0).all() and paid.completion_tokens.gt(0).all()
    assert paid.generation_id.notna().all() and paid.finish_reason.notna().all()
    assert dict(zip(free.path, free.cost_usd, strict=True)) == dict.fromkeys(free.path, 0.0)


def test_paid_rows_add_up_to_what_the_run_says_it_spent(offline: OfflineRun) -> None:
    assert offline.frame.cost_usd.sum() == pytest.approx(offline.summary["spent_usd"], abs=1e-6)
    assert offline.summary["spent_usd"] > 0


def test_each_row_identifies_its_file_by_content_and_relative_posix_path(offline: OfflineRun) -> None:
    for row in offline.frame.itertuples():
        data = (offline.source / row.path).read_bytes()
        assert (row.doc_id, row.size_bytes) == (hashlib.sha256(data).hexdigest(), len(data)), row.path
        assert Path(row.source_root) == offline.source
        assert "\\" not in row.path and not row.path.startswith("/")


def test_answered_rows_carry_an_answer_a_reason_and_their_kind(offline: OfflineRun) -> None:
    ok = offline.frame[offline.frame.status == "ok"]
    assert len(ok) == 14
    for row in ok.itertuples():
        assert row.content.strip() and row.engine_reason.strip(), row.path
        assert row.kind == ("image" if row.mime_type.startswith("image/") else "pdf"), row.path
        assert row.pages >= 1, row.path
        assert (row.attempts >= 1 and row.est_cost_usd > 0) == (row.path != COPY), row.path
        assert row.started_at <= row.finished_at


def test_unanswered_rows_say_why_in_a_message(offline: OfflineRun) -> None:
    unanswered = offline.frame[offline.frame.status != "ok"]
    assert len(unanswered) == 5
    assert unanswered.error_message.str.strip().str.len().gt(0).all()
    assert unanswered.content.isna().all() and unanswered.generation_id.isna().all()


def test_the_copy_gets_the_originals_answer_for_free(offline: OfflineRun) -> None:
    copy, original = offline.row(COPY), offline.row(ORIGINAL)
    assert copy.doc_id == original.doc_id
    assert (copy.content, copy.generation_id) == (original.content, original.generation_id)
    assert (copy.cost_usd, original.cost_usd > 0) == (0, True)


def test_every_spec_column_is_in_each_parts_arrow_schema_with_its_type(offline: OfflineRun) -> None:
    parts = sorted((offline.out / "results").glob("*.parquet"))
    assert parts
    for part in parts:
        schema = pq.read_schema(part)
        assert {name: schema.field(name).type for name in RESULTS_COLUMNS} == RESULTS_COLUMNS, part


def test_pandas_reads_every_spec_column(offline: OfflineRun) -> None:
    assert set(RESULTS_COLUMNS) <= set(offline.frame.columns)
    assert pd.api.types.is_float_dtype(offline.frame.cost_usd)
    assert pd.api.types.is_datetime64_any_dtype(offline.frame.finished_at)


def test_duckdb_reads_the_results_glob(offline: OfflineRun) -> None:
    glob = str(offline.out / "results" / "*.parquet")
    rows = duckdb.execute(
        f"SELECT status, count(*), sum(cost_usd) FROM read_parquet('{glob}') WHERE run_id = ? "
        "GROUP BY status ORDER BY status",
        [offline.summary["run_id"]],
    ).fetchall()
    statuses = pd.Series([e[0] for e in EXPECTED.values()]).value_counts()
    assert [(s, n) for s, n, _ in rows] == sorted(statuses.items())
    assert dict((s, c) for s, _, c in rows)["ok"] == pytest.approx(offline.summary["spent_usd"], abs=1e-6)


def test_a_second_run_over_the_same_folder_sends_no_chat_request(rerun: Rerun) -> None:
    chats = [r for r in rerun.records if r.path.endswith("/chat/completions")]
    assert chats == []
    assert rerun.summary["spent_usd"] == 0


def test_a_second_run_adds_no_ok_row(offline: OfflineRun, rerun: Rerun) -> None:
    ok_before = offline.frame[offline.frame.status == "ok"]
    ok_after = rerun.frame[rerun.frame.status == "ok"]
    assert len(ok_after) == len(ok_before)
    assert set(ok_after.run_id) == {offline.summary["run_id"]}
    assert rerun.summary["already_done"] == len(ok_before)  # the copy's path counts too
