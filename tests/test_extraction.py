"""--schema: typed extraction columns, structured outputs or instructions, one repair, split documents merged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import samples
from docrouter.call.columns import arrow_schema
from docrouter.call.extraction import first_json_object, load_schema, parse_schema
from docrouter.emulator import Emulator, Faults
from docrouter.errors import ConfigError
from docrouter.results import Extraction, Result
from docrouter.route.splitting import ENV_MAX_PART_PAGES
from docrouter.run import session as runs
from docrouter.run.config import INLINE_SCHEMA_CHARS, RunConfig, config_from_parameters, flow_parameters
from docrouter.run.environment import Environment
from docrouter.store.extractions import partition
from docrouter.store.store import Store, read_extractions
from pipeline import write_corpus

STRUCTURED = "google/gemini-2.5-flash"  # lists structured_outputs in the offline catalogue
UNSTRUCTURED = "meta-llama/llama-3.3-70b-instruct"  # does not: the schema goes in the instructions
INVOICE = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "document_date": {"type": ["string", "null"], "format": "date"},
        "total": {"type": ["number", "null"]},
        "line_items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"description": {"type": "string"}, "amount": {"type": ["number", "null"]}},
                "required": ["description", "amount"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["title", "document_date", "total", "line_items"],
    "additionalProperties": False,
}
EVERY_TYPE = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "pages": {"type": "integer"},
        "total": {"type": "number"},
        "paid": {"type": ["boolean", "null"]},
        "issued_at": {"type": "string", "format": "date-time"},
        "due": {"type": "string", "format": "date"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "vendor": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "vat_id": {"type": ["string", "null"]}},
            "required": ["name"],
        },
        "status": {"enum": ["draft", "sent", "paid"]},
        "reference": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        "discount": {"anyOf": [{"type": "number"}, {"type": "null"}]},
        "party": {"$ref": "#/$defs/party"},
        "path": {"type": "string"},
    },
    "required": ["title", "pages", "issued_at", "tags", "vendor", "status", "path"],
    "$defs": {"party": {"type": "object", "properties": {"role": {"type": "string"}}}},
}
EVERY_TYPE_VALUES = {
    "title": "Invoice 7",
    "pages": 3,
    "total": 1234.5,
    "paid": None,
    "issued_at": "2026-03-01T09:30:00Z",
    "due": "2026-03-31",
    "tags": ["urgent", "q1"],
    "vendor": {"name": "Acme", "vat_id": None},
    "status": "sent",
    "reference": 42,
    "discount": 0.1,
    "party": {"role": "buyer"},
    "path": "inbox/7.pdf",
}


def fixed(nullable: bool = False) -> list[pa.Field]:
    names = ("run_id", "doc_id", "path", "model", "prompt_sha256", "schema_sha256")
    return [pa.field(name, pa.string(), nullable=nullable) for name in names]


def test_every_json_type_gets_its_arrow_type_and_reads_back_typed(tmp_path: Path) -> None:
    schema = parse_schema(json.dumps(EVERY_TYPE))
    expected = pa.schema(
        [
            *fixed(),
            pa.field("title", pa.string(), nullable=False),
            pa.field("pages", pa.int64(), nullable=False),
            pa.field("total", pa.float64()),  # not required: nullable
            pa.field("paid", pa.bool_()),
            pa.field("issued_at", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("due", pa.date32()),
            pa.field("tags", pa.list_(pa.field("item", pa.string(), nullable=False)), nullable=False),
            pa.field(
                "vendor",
                pa.struct([pa.field("name", pa.string(), nullable=False), pa.field("vat_id", pa.string())]),
                nullable=False,
            ),
            pa.field("status", pa.string(), nullable=False),  # an enum without null, required
            pa.field("reference", pa.string()),  # anyOf of two types: JSON text
            pa.field("discount", pa.float64()),  # number-or-null maps to its number
            pa.field("party", pa.string()),  # $ref: JSON text
            pa.field("field_path", pa.string(), nullable=False),  # collides with the fixed `path`
        ]
    )
    assert arrow_schema(schema) == expected
    assert not schema.strict and parse_schema(json.dumps(INVOICE)).strict  # strict only when every object is closed

    with Store(tmp_path, "run-a", extraction=schema) as store:
        store.record(ok_row("d1", schema.sha256), (), extraction_of("d1", schema.sha256, EVERY_TYPE_VALUES))
    folder = partition(tmp_path, schema.sha256)
    stored = pq.read_table(folder)
    assert stored.schema.remove_metadata() == expected
    row = pd.read_parquet(folder).iloc[0]
    assert row.issued_at == pd.Timestamp(datetime(2026, 3, 1, 9, 30, tzinfo=UTC))
    assert row.due == date(2026, 3, 31)
    assert list(row.tags) == ["urgent", "q1"] and row.vendor == {"name": "Acme", "vat_id": None}
    assert json.loads(row.reference) == 42 and json.loads(row.party) == {"role": "buyer"}
    assert row.field_path == "inbox/7.pdf" and row.path == "d1.pdf" and row.pages == 3
    hive = duckdb.sql(
        f"select schema_sha256, title from read_parquet('{tmp_path}/extractions/*/*.parquet', hive_partitioning=true)"
    ).fetchall()
    assert hive == [(schema.sha256, "Invoice 7")]


def test_a_value_the_column_cannot_hold_is_a_validation_problem_not_a_lost_row() -> None:
    from docrouter.call.columns import check_extraction

    schema = parse_schema(json.dumps(EVERY_TYPE))
    bad = {**EVERY_TYPE_VALUES, "issued_at": "the first of March"}
    checked = check_extraction(schema, json.dumps(bad))
    assert checked.value is None and any("issued_at" in p for p in checked.problems)
    assert check_extraction(schema, json.dumps(EVERY_TYPE_VALUES)).value == EVERY_TYPE_VALUES


def test_the_first_json_object_is_found_fenced_bare_or_in_prose() -> None:
    assert first_json_object('Sure!\n```json\n{"a": 1}\n```\nAnything else?') == {"a": 1}
    assert first_json_object('{"a": {"b": [1, 2]}}') == {"a": {"b": [1, 2]}}
    assert first_json_object('The answer is {"a": 2} and {"a": 3}.') == {"a": 2}
    assert first_json_object('[1, 2] then {not json} then {"a": 4}') == {"a": 4}
    with pytest.raises(ValueError):
        first_json_object('{"a": 1')


@pytest.mark.slow
def test_a_bad_schema_is_one_line_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "array.json").write_text('{"type": "array", "items": {}}')
    (tmp_path / "broken.json").write_text('{"type": "object", "properties": {"a": {"type": "strin"}}}')
    (tmp_path / "text.json").write_text("title: string")
    for name, words in [("array.json", "top level"), ("text.json", "not JSON"), ("nope", "cannot read")]:
        with pytest.raises(ConfigError, match=words):
            load_schema(str(tmp_path / name))
    (tmp_path / "docs").mkdir()
    done = subprocess.run(
        [Path(sys.executable).parent / "docrouter", "run", str(tmp_path / "docs"), "--out", str(tmp_path / "o")]
        + ["--offline", "--schema", str(tmp_path / "broken.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "is not a valid JSON Schema" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_a_large_schema_is_a_flow_parameter_by_reference_and_a_small_one_inline(tmp_path: Path) -> None:
    small = write_schema(tmp_path / "small.json", INVOICE)
    large_schema = {**INVOICE, "description": "x" * INLINE_SCHEMA_CHARS}
    large = write_schema(tmp_path / "large.json", large_schema)
    for path, passed in [(small, dict), (large, str)]:
        config = RunConfig(sources=("a",), out="o", schema=load_schema(str(path)).text, schema_file=str(path))
        parameters = flow_parameters(config)
        assert isinstance(parameters["extraction_schema"], passed)
        again = config_from_parameters(parameters)
        assert again.extraction is not None and config.extraction is not None
        assert again.extraction.sha256 == config.extraction.sha256
        assert again.prompt_sha256 == config.prompt_sha256 and again.prompt == config.prompt
    with pytest.raises(ConfigError, match="cannot read --schema"):
        config_from_parameters({"sources": ["a"], "out": "o", "extraction_schema": str(tmp_path / "gone.json")})


@pytest.mark.slow
def test_a_structured_output_model_gets_response_format_and_valid_typed_rows(
    tmp_path: Path, emulator: Emulator, key: None
) -> None:
    write_corpus(tmp_path / "docs", text=2, pngs=1)
    rows = extract(tmp_path, emulator, INVOICE, model=STRUCTURED)
    assert {r.status for r in rows} == {"ok"} and {r.extraction for r in rows} == {"valid"}
    assert {r.schema for r in chat(emulator)} == {"response_format"}
    frame = read_extractions(tmp_path / "out", rows[0].schema_sha256 or "")
    assert sorted(frame.path) == ["image_000.png", "text_000.pdf", "text_001.pdf"]
    text = frame[frame.path == "text_000.pdf"].iloc[0]
    assert "Document" in text.title  # built from the text: "Document 0. Document 0. ..."
    assert list(text.line_items) == [{"description": text.title, "amount": text.total}]
    results = pd.read_parquet(tmp_path / "out" / "results")
    assert json.loads(results[results.path == "text_000.pdf"].iloc[0].content)["title"] == text.title


@pytest.mark.slow
def test_a_model_without_structured_outputs_gets_the_schema_in_its_instructions(
    tmp_path: Path, emulator: Emulator, key: None
) -> None:
    write_corpus(tmp_path / "docs", text=2)
    rows = extract(tmp_path, emulator, INVOICE, model=UNSTRUCTURED)
    assert {r.status for r in rows} == {"ok"} and {r.extraction for r in rows} == {"valid"}
    assert {r.schema for r in chat(emulator)} == {"instructions"}
    frame = read_extractions(tmp_path / "out", rows[0].schema_sha256 or "")
    assert len(frame) == 2 and frame.title.str.contains("Document").all()


@pytest.mark.slow
def test_an_invalid_answer_is_repaired_once_and_the_repair_is_in_the_rows_cost(
    tmp_path: Path, emulator: Emulator, key: None
) -> None:
    write_corpus(tmp_path / "docs", text=1)
    emulator.set_faults(Faults(invalid_json_answers=1))
    (row,) = extract(tmp_path, emulator, INVOICE, model=UNSTRUCTURED)
    records = chat(emulator)
    assert [r.invalid_json for r in records] == [True, False]
    assert row.status == "ok" and row.extraction == "repaired" and row.attempts == 2
    assert row.cost_usd == pytest.approx(sum(r.billed_usd for r in records)) and records[1].billed_usd > 0
    assert row.prompt_tokens == sum(r.prompt_tokens for r in records)
    assert len(read_extractions(tmp_path / "out", row.schema_sha256 or "")) == 1


@pytest.mark.slow
def test_an_answer_still_invalid_after_the_repair_is_invalid_output_with_the_reply_kept(
    tmp_path: Path, emulator: Emulator, key: None
) -> None:
    write_corpus(tmp_path / "docs", text=1)
    emulator.set_faults(Faults(invalid_json_answers=2))
    (row,) = extract(tmp_path, emulator, INVOICE, model=STRUCTURED)
    records = chat(emulator)
    assert len(records) == 2 and all(r.invalid_json for r in records)
    assert row.status == "failed" and row.error_type == "invalid_output" and row.extraction == "invalid"
    assert row.content is not None and row.content.startswith('{"title"')
    with pytest.raises(ValueError):
        first_json_object(row.content)
    assert row.cost_usd == pytest.approx(sum(r.billed_usd for r in records))
    assert read_extractions(tmp_path / "out", row.schema_sha256 or "").empty
    from docrouter_commands.report import build_report, render_report

    report = build_report(tmp_path / "out")
    assert report.extractions == {"invalid": 1}
    assert "invalid" in render_report(report) and "invalid_output" in render_report(report)


@pytest.mark.slow
def test_a_long_document_is_extracted_per_part_and_merged_by_the_schema(
    tmp_path: Path, emulator: Emulator, key: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_MAX_PART_PAGES, "2")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "ledger.pdf").write_bytes(samples.text_pdf(5))
    (row,) = extract(tmp_path, emulator, INVOICE, model=STRUCTURED)
    records = chat(emulator)
    assert len(records) == 4  # three page ranges, then one combine request for the scalar properties
    assert row.status == "ok" and row.parts == 3 and row.extraction == "valid"
    assert row.cost_usd == pytest.approx(sum(r.billed_usd for r in records))
    value = json.loads(row.content or "")
    assert len(value["line_items"]) == 3  # one item per range, concatenated in page order
    assert set(value) == set(INVOICE["properties"])
    (extracted,) = read_extractions(tmp_path / "out", row.schema_sha256 or "").itertuples()
    assert len(extracted.line_items) == 3


@pytest.mark.slow
def test_a_rerun_skips_extracted_documents_and_a_schema_change_extracts_again(
    tmp_path: Path, emulator: Emulator, key: None
) -> None:
    write_corpus(tmp_path / "docs", text=2)
    first = extract(tmp_path, emulator, INVOICE, model=STRUCTURED)
    assert len(chat(emulator)) == 2
    reformatted = json.loads(json.dumps(INVOICE, sort_keys=True))  # same schema, another key order
    assert extract(tmp_path, emulator, reformatted, model=STRUCTURED) == []
    assert len(chat(emulator)) == 2
    changed = {**INVOICE, "properties": {**INVOICE["properties"], "currency": {"type": "string"}}}
    again = extract(tmp_path, emulator, changed, model=STRUCTURED)
    assert len(again) == 2 and len(chat(emulator)) == 4
    assert again[0].schema_sha256 != first[0].schema_sha256
    assert again[0].prompt_sha256 != first[0].prompt_sha256
    folders = sorted(p.name for p in (tmp_path / "out" / "extractions").iterdir())
    assert folders == sorted(f"schema_sha256={r.schema_sha256}" for r in (first[0], again[0]))
    assert "currency" in read_extractions(tmp_path / "out", again[0].schema_sha256 or "").columns


# helpers


@pytest.fixture
def emulator() -> Any:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def key(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", emulator.api_key)


def write_schema(path: Path, schema: dict[str, Any]) -> Path:
    path.write_text(json.dumps(schema, indent=2))
    return path


def extract(tmp_path: Path, emulator: Emulator, schema: dict[str, Any], *, model: str) -> list[Result]:
    """One run through the real stages (no Prefect) with --schema; its rows."""
    path = write_schema(tmp_path / "schema.json", schema)
    config = RunConfig(
        sources=(str(tmp_path / "docs"),),
        out=str(tmp_path / "out"),
        model=model,
        base_url=emulator.base_url,
        concurrency=4,
        schema=load_schema(str(path)).text,
        schema_file=str(path),
        environment=Environment.read(os.environ),  # as a flow run reads it when it starts (DOCROUTER_MAX_PART_PAGES)
    )
    import asyncio

    return asyncio.run(_stages(config))


async def _stages(config: RunConfig) -> list[Result]:
    documents = runs.discover(config)
    async with runs.open_session(config, api_key=os.environ["OPENROUTER_API_KEY"]) as session:
        selection = runs.select(documents, session.store.done_keys(), config)
        pairs = runs.inspect(selection.fresh, session.inspector, session.jobs.named_files)
        return await runs.call(session, runs.route(session, pairs), set())


def chat(emulator: Emulator) -> list[Any]:
    return [r for r in emulator.records if r.path.endswith("/chat/completions")]


def ok_row(doc_id: str, schema_sha256: str) -> Result:
    stamp = "2026-03-01T10:00:00.000+00:00"
    return Result(
        *("run-a", doc_id, f"{doc_id}.pdf", "/src", 10, "application/pdf", "pdf", 1, "local-text", "r", "m", "p"),
        *("ok", None, None, 1, 0.0, 0.0, 1, 1, None, json.dumps(EVERY_TYPE_VALUES), "stop", stamp, stamp),
        schema_sha256=schema_sha256,
        extraction="valid",
    )


def extraction_of(doc_id: str, schema_sha256: str, values: dict[str, Any]) -> Extraction:
    return Extraction("run-a", doc_id, f"{doc_id}.pdf", "m", "p", schema_sha256, values)


@pytest.mark.slow
def test_the_emulator_refuses_response_format_to_a_model_without_structured_outputs(emulator: Emulator) -> None:
    import httpx

    form = {"type": "json_schema", "json_schema": {"name": "x", "schema": INVOICE, "strict": True}}
    body = {"model": UNSTRUCTURED, "messages": [{"role": "user", "content": "hi"}], "response_format": form}
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    with httpx.Client(base_url=emulator.base_url, headers=headers, timeout=30) as client:
        refused = client.post("/chat/completions", json=body)
        answered = client.post("/chat/completions", json={**body, "model": STRUCTURED})
    assert refused.status_code == 404 and "can handle the requested parameters" in refused.text
    content = answered.json()["choices"][0]["message"]["content"]
    assert parse_schema(json.dumps(INVOICE)).errors(json.loads(content)) == []
