"""The plan: per-document routes and costs, totals beside OpenRouter's default and always-OCR, Parquet."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from docrouter.catalogue import SNAPSHOT_CANDIDATES, ModelInfo
from docrouter.discover.documents import Document, DocumentKind
from docrouter.errors import ConfigError
from docrouter.inspect.inspection import Inspection
from docrouter.route.pricing import PriceBook
from docrouter.run.config import RunConfig
from docrouter.run.planning import (
    PLAN_SCHEMA,
    Plan,
    PlanRow,
    build_plan,
    plan_json,
    render_plan,
    write_plan,
)
from docrouter.run.session import models
from samples import page_text

PROMPT_CHARS = 96
ALL = frozenset({"text", "image", "file"})
GEMINI = ModelInfo("google/gemini-2.5-flash", ALL, 3e-7, 2.5e-6, tokenizer="Gemini")
SONNET = ModelInfo("anthropic/claude-sonnet-4.5", ALL, 3e-6, 1.5e-5, tokenizer="Claude")
TEXT_ONLY = ModelInfo("meta-llama/llama-3.3-70b-instruct", frozenset({"text"}), 1.3e-7, 4e-7)


def doc(rel_path: str, doc_id: str, kind: DocumentKind | None = "pdf", size: int = 5000) -> Document:
    mime = {"pdf": "application/pdf", "image": "image/png"}.get(kind or "", "text/plain")
    return Document(f"/src/{rel_path}", rel_path, "/src", size, doc_id, mime, kind)


def text_chars(pages: range) -> int:
    return sum(len(page_text(p)) for p in pages)


# The sample set (docrouter.samples), as inspection describes it: page_text() is the text the PDFs carry.
SAMPLES: list[tuple[Document, Inspection | None]] = [
    (doc("text_3pp.pdf", "a"), Inspection("a", "pdf", pages=3, text_chars=text_chars(range(3)), verdict="text")),
    (doc("scanned_2pp.pdf", "b"), Inspection("b", "pdf", pages=2, ocr_pages=(0, 1), verdict="scan")),
    (doc("ocr_layer_good.pdf", "c"), Inspection("c", "pdf", pages=1, text_chars=text_chars(range(1)), verdict="text")),
    (doc("ocr_layer_junk.pdf", "d"), Inspection("d", "pdf", pages=1, ocr_pages=(0,), verdict="scan")),
    (
        doc("mixed_3pp.pdf", "e"),
        Inspection("e", "pdf", pages=3, ocr_pages=(1,), text_chars=text_chars(range(2)), verdict="mixed"),
    ),
    (doc("photo.png", "f", "image"), Inspection("f", "image", pages=1, width=800, height=600, image_format="PNG")),
    (doc("copy/text_3pp.pdf", "a"), Inspection("a", "pdf", pages=3, text_chars=text_chars(range(3)), verdict="text")),
    (doc("locked.pdf", "g"), Inspection("g", "pdf", error_type="encrypted", error_message="needs a user password")),
    (doc("notes.txt", "h", None), None),
]


def plan_for(
    model: ModelInfo,
    pairs: Sequence[tuple[Document, Inspection | None]] = SAMPLES,
    *,
    forced: str | None = None,
    annotated_doc_ids: frozenset[str] = frozenset(),
) -> Plan:
    return build_plan(
        pairs,
        model,
        PriceBook(),
        forced=forced,
        prompt_chars=PROMPT_CHARS,
        max_tokens=512,
        annotated_doc_ids=annotated_doc_ids,
    )


def row(plan: Plan, path: str) -> PlanRow:
    return next(r for r in plan.rows if r.path == path)


def test_savings_on_the_sample_set_against_both_naive_rules() -> None:
    plan = plan_for(GEMINI)
    assert plan.default_engine == "native"
    assert 0 < plan.routed_usd < plan.default_usd < plan.always_ocr_usd
    assert plan.savings_vs_default_usd == pytest.approx(plan.default_usd - plan.routed_usd)
    # Six files are sent; OCR would pay $0.002 a page on 10 pages that Gemini reads for ~258 tokens each.
    assert plan.savings_vs_ocr_usd > 10 * 0.002 * 0.9
    assert plan.routed_max_usd >= plan.routed_usd


def test_text_pdfs_are_routed_to_local_text_and_scans_to_native_on_gemini() -> None:
    plan = plan_for(GEMINI)
    engines = {r.path: r.engine for r in plan.rows}
    assert engines["text_3pp.pdf"] == "local-text" and engines["ocr_layer_good.pdf"] == "local-text"
    assert engines["scanned_2pp.pdf"] == "native" and engines["mixed_3pp.pdf"] == "native"
    assert engines["photo.png"] == "image"


def test_on_sonnet_scans_go_to_ocr_and_routing_still_beats_the_default_rule() -> None:
    plan = plan_for(SONNET)
    assert row(plan, "scanned_2pp.pdf").engine == "mistral-ocr"
    assert plan.routed_usd < plan.default_usd and plan.routed_usd < plan.always_ocr_usd


def test_text_only_model_defaults_to_ocr_for_every_pdf() -> None:
    plan = plan_for(TEXT_ONLY)
    assert plan.default_engine == "mistral-ocr"
    assert plan.default_usd == pytest.approx(plan.always_ocr_usd)
    assert row(plan, "photo.png").error_type == "unsupported"


def test_same_bytes_twice_are_priced_once() -> None:
    plan = plan_for(GEMINI)
    first, copy = row(plan, "text_3pp.pdf"), row(plan, "copy/text_3pp.pdf")
    assert copy.duplicate_of == "text_3pp.pdf" and copy.engine == first.engine
    assert (copy.est_cost_usd, copy.default_cost_usd, copy.ocr_cost_usd) == (0, 0, 0)
    assert first.est_cost_usd > 0 and plan.count("copies") == 1


def test_images_cost_the_same_under_all_three_rules() -> None:
    photo = row(plan_for(GEMINI), "photo.png")
    assert photo.est_cost_usd == photo.default_cost_usd == photo.ocr_cost_usd > 0


def test_unsent_documents_are_rows_with_an_error_and_no_cost() -> None:
    plan = plan_for(GEMINI)
    locked, notes = row(plan, "locked.pdf"), row(plan, "notes.txt")
    assert (locked.engine, locked.error_type, locked.pages) == (None, "encrypted", None)
    assert (notes.engine, notes.error_type) == (None, "unsupported")
    assert all(r.est_cost_usd == r.default_cost_usd == r.ocr_cost_usd == 0 for r in (locked, notes))
    assert (plan.count("sent"), plan.count("unsent")) == (6, 2)


def test_forced_engine_applies_to_pdfs_and_refuses_scans_for_text_engines() -> None:
    plan = plan_for(GEMINI, forced="local-text")
    assert row(plan, "scanned_2pp.pdf").error_type == "unreadable"
    assert row(plan, "text_3pp.pdf").engine == "local-text" and row(plan, "photo.png").engine == "image"


def test_stored_parses_remove_the_ocr_fee() -> None:
    fresh, reused = plan_for(SONNET), plan_for(SONNET, annotated_doc_ids=frozenset({"b"}))
    saved = row(fresh, "scanned_2pp.pdf").est_cost_usd - row(reused, "scanned_2pp.pdf").est_cost_usd
    assert saved == pytest.approx(2 * 0.002)


def test_rendered_table_lists_every_file_and_the_totals() -> None:
    text = render_plan(plan_for(GEMINI))
    lines = text.splitlines()
    assert lines[0].split() == ["PATH", "PAGES", "ENGINE", "EXPECTED", "AT", "MOST", "REASON"]
    assert all(any(line.startswith(p) for line in lines) for p in ("text_3pp.pdf", "locked.pdf", "notes.txt"))
    assert "needs a user password" in text
    assert "9 files: 6 to send (image 1, local-text 2, native 3), 1 same-bytes copies, 0 settled" in text
    assert "2 not sent" in text and "token counts are estimated" in text
    assert "OpenRouter default (native):" in text and "always mistral-ocr:" in text
    assert text.count("docrouter saves") == 2


def test_wide_paths_are_cut_from_the_left_keeping_the_file_name() -> None:
    long = "archive/" + "very-long-folder-name/" * 5 + "invoice-2024.pdf"
    pairs = [(doc(long, "z"), Inspection("z", "pdf", pages=1, text_chars=900, verdict="text"))]
    first_line = render_plan(plan_for(GEMINI, pairs)).splitlines()[1]
    assert first_line.startswith("…") and "invoice-2024.pdf" in first_line and long not in first_line


def test_plan_parquet_has_the_explicit_schema_rows_and_totals(tmp_path: Path) -> None:
    plan = plan_for(GEMINI)
    written = write_plan(plan, tmp_path / "out")
    table = pq.read_table(written)
    assert table.schema.remove_metadata() == PLAN_SCHEMA
    assert table.num_rows == 9 and set(table.column("model").to_pylist()) == {GEMINI.id}
    totals = json.loads(table.schema.metadata[b"docrouter.plan"])
    assert totals["routed_usd"] == pytest.approx(plan.routed_usd) and totals["sent"] == 6
    assert [p.name for p in written.parent.iterdir()] == ["plan.parquet"]


def test_unwritable_plan_folder_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot write the plan"):
        write_plan(plan_for(GEMINI), blocker / "out")


class ModelsHandler(BaseHTTPRequestHandler):
    """GET /api/v1/models from the bundled snapshot; anything else is a 404 (and recorded)."""

    paths: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.paths.append(self.path)
        body = SNAPSHOT_CANDIDATES[0].read_bytes() if self.path.startswith("/api/v1/models") else b"{}"
        self.send_response(200 if self.path.startswith("/api/v1/models") else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def models_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ModelsHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.slow
def test_plan_reads_models_from_the_base_url_without_a_key(
    models_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    ModelsHandler.paths.clear()
    catalogue = models(RunConfig(sources=("x",), out="", base_url=models_server))
    assert catalogue.source == "api" and "google/gemini-2.5-flash" in catalogue.models
    assert ModelsHandler.paths and all(p.startswith("/api/v1/models?") for p in ModelsHandler.paths)
    assert any(p.name.startswith("models-127-0-0-1") for p in (tmp_path / "docrouter").iterdir())


def test_offline_plan_uses_the_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    catalogue = models(RunConfig(sources=("x",), out="", offline=True))
    assert catalogue.source == "snapshot" and len(catalogue.models) == 9


def test_json_has_both_totals_and_every_document_with_its_two_figures() -> None:
    plan = plan_for(GEMINI)
    data = json.loads(json.dumps(plan_json(plan)))
    assert data["expected_usd"] == pytest.approx(plan.routed_usd) and data["max_usd"] == pytest.approx(
        plan.routed_max_usd
    )
    keys = {"path", "doc_id", "engine", "engine_reason", "pages", "est_usd", "max_usd"}
    assert [set(d) for d in data["documents"]] == [keys] * 9
    first = data["documents"][0]
    assert (first["path"], first["engine"], first["pages"]) == ("text_3pp.pdf", "local-text", 3)
    assert 0 < first["est_usd"] <= first["max_usd"]


def test_the_expected_answer_is_what_the_estimate_counts_and_max_tokens_what_the_bound_counts() -> None:
    short = build_plan(SAMPLES, GEMINI, PriceBook(), prompt_chars=PROMPT_CHARS, max_tokens=512, answer_tokens=100)
    full = plan_for(GEMINI)  # no history given: every answer at max_tokens, as before
    assert short.routed_max_usd == pytest.approx(full.routed_max_usd)
    saved = (512 - 100) * GEMINI.completion_price * full.count("sent")
    assert full.routed_usd - short.routed_usd == pytest.approx(saved)
    assert all(r.completion_tokens == 100 for r in short.rows if r.engine and not r.duplicate_of)
