"""Routing as tables: documents x models x prices -> engine, plus forced engines and the reasons given."""

from __future__ import annotations

import itertools

import pytest

from docrouter.catalogue import ModelInfo
from docrouter.errors import ConfigError
from docrouter.inspect.inspection import Inspection
from docrouter.route.pricing import PriceBook, estimate
from docrouter.route.routing import NotSent, Route, check_forced_engine, choose_engine

PROMPT_CHARS = 96
MAX_TOKENS = 512
DEFAULT = PriceBook()
HIGH_OCR_FEE = PriceBook(ocr_fee_per_page=0.02)

ALL = frozenset({"text", "image", "file"})
TEXT_ONLY = ModelInfo("meta-llama/llama-3.3-70b-instruct", frozenset({"text"}), 1.3e-7, 4e-7, tokenizer="Llama3")
VISION_NO_FILE = ModelInfo("mistralai/mistral-small-3.2", frozenset({"text", "image"}), 6e-8, 1.8e-7)
GEMINI = ModelInfo("google/gemini-2.5-flash", ALL, 3e-7, 2.5e-6, tokenizer="Gemini")
HAIKU = ModelInfo("anthropic/claude-haiku-4.5", ALL, 1e-6, 5e-6, tokenizer="Claude")
SONNET = ModelInfo("anthropic/claude-sonnet-4.5", ALL, 3e-6, 1.5e-5, tokenizer="Claude")
MODELS = {"text-only": TEXT_ONLY, "vision": VISION_NO_FILE, "gemini": GEMINI, "haiku": HAIKU, "sonnet": SONNET}


def pdf(pages: int, ocr: tuple[int, ...] = (), chars: int = 0, verdict: str = "") -> Inspection:
    verdict = verdict or ("text" if not ocr else "scan" if len(ocr) == pages else "mixed")
    return Inspection("d", "pdf", pages=pages, ocr_pages=ocr, text_chars=chars, verdict=verdict)


DOCS = {
    "sparse-text": pdf(4, chars=2_000),  # 125 tokens a page: text beats every native page
    "dense-text": pdf(4, chars=12_000),  # 750 tokens a page: Gemini's 258-token pages beat it
    "scan": pdf(3, ocr=(0, 1, 2)),
    "mixed": pdf(5, ocr=(4,), chars=6_000),
    "image": Inspection("i", "image", pages=1, width=1000, height=800, image_format="PNG", verdict="image"),
}


def route(
    doc: str, model: str, prices: PriceBook = DEFAULT, *, forced: str | None = None, has_annotations: bool = False
) -> Route | NotSent:
    return choose_engine(
        DOCS[doc],
        MODELS[model],
        prices,
        prompt_chars=PROMPT_CHARS,
        max_tokens=MAX_TOKENS,
        forced=forced,
        has_annotations=has_annotations,
    )


@pytest.mark.parametrize(
    ("doc", "model", "prices", "engine"),
    [
        ("sparse-text", "text-only", DEFAULT, "local-text"),
        ("sparse-text", "gemini", DEFAULT, "local-text"),
        ("sparse-text", "sonnet", DEFAULT, "local-text"),
        ("dense-text", "text-only", DEFAULT, "local-text"),
        ("dense-text", "gemini", DEFAULT, "native"),  # pdf-heuristics §3.5: Gemini 2.x pages beat text
        ("dense-text", "sonnet", DEFAULT, "local-text"),
        ("dense-text", "haiku", HIGH_OCR_FEE, "local-text"),
        ("scan", "text-only", DEFAULT, "mistral-ocr"),
        ("scan", "vision", DEFAULT, "mistral-ocr"),
        ("scan", "gemini", DEFAULT, "native"),
        ("scan", "haiku", DEFAULT, "native"),  # $1/M is under the ~$2/M break-even
        ("scan", "sonnet", DEFAULT, "mistral-ocr"),  # $3/M is over it
        ("scan", "sonnet", HIGH_OCR_FEE, "native"),  # at $20 per 1,000 pages native wins even on Sonnet
        ("scan", "text-only", HIGH_OCR_FEE, "mistral-ocr"),  # still the only engine that can read it
        ("mixed", "text-only", DEFAULT, "mistral-ocr"),
        ("mixed", "gemini", DEFAULT, "native"),
        ("mixed", "sonnet", DEFAULT, "mistral-ocr"),
        ("image", "gemini", DEFAULT, "image"),
        ("image", "vision", DEFAULT, "image"),
    ],
)
def test_cheapest_adequate_engine(doc: str, model: str, prices: PriceBook, engine: str) -> None:
    chosen = route(doc, model, prices)
    assert chosen.engine == engine, chosen.reason
    assert isinstance(chosen, Route)  # an engine and its estimate, no error


@pytest.mark.parametrize(
    ("doc", "model", "prices"), list(itertools.product(DOCS, MODELS, [DEFAULT, HIGH_OCR_FEE, PriceBook(0.0)]))
)
def test_scans_never_go_to_text_engines_and_text_never_pays_ocr(doc: str, model: str, prices: PriceBook) -> None:
    chosen = route(doc, model, prices)
    if DOCS[doc].needs_ocr:
        assert chosen.engine in ("native", "mistral-ocr")
    elif DOCS[doc].kind == "pdf":
        assert chosen.engine in ("local-text", "pdf-text", "native")
    if isinstance(chosen, Route) and chosen.engine == "native":
        assert MODELS[model].takes_files


def test_route_carries_the_same_estimate_the_cost_model_gives() -> None:
    chosen = route("scan", "gemini")
    assert chosen.estimate == estimate(
        "native", DOCS["scan"], GEMINI, DEFAULT, prompt_chars=PROMPT_CHARS, max_tokens=MAX_TOKENS
    )


def test_reason_compares_the_winner_with_the_alternatives() -> None:
    reason = route("scan", "gemini").reason
    assert reason.startswith("scan, 3 pp; native $") and " < mistral-ocr $" in reason


def test_tie_between_text_engines_goes_to_local_text_and_says_why() -> None:
    chosen = route("sparse-text", "text-only")
    assert chosen.engine == "local-text"
    assert chosen.reason.startswith("text layer, 4 pp; local-text $")
    assert " <= pdf-text $" in chosen.reason and "exact" not in chosen.reason  # chars / 4 is an estimate


def test_scan_on_a_model_without_file_input_says_why_native_is_out() -> None:
    assert "takes no files, so no native" in route("scan", "text-only").reason


def test_stored_parse_removes_the_ocr_fee_from_the_comparison() -> None:
    fresh, reused = route("scan", "sonnet"), route("scan", "sonnet", has_annotations=True)
    assert fresh.estimate is not None and reused.estimate is not None
    assert reused.engine == "mistral-ocr" and reused.estimate.parse_fee_usd == 0
    assert fresh.estimate.expected_usd - reused.estimate.expected_usd == pytest.approx(3 * 0.002)
    assert "stored parse reused" in reused.reason


def test_failed_inspection_is_an_error_route_with_its_type() -> None:
    failed = Inspection("x", "pdf", error_type="encrypted", error_message="needs a user password")
    chosen = choose_engine(failed, GEMINI, DEFAULT, prompt_chars=10, max_tokens=10)
    assert isinstance(chosen, NotSent)  # no engine, no estimate
    assert (chosen.error_type, chosen.error_message) == ("encrypted", "needs a user password")


def test_blank_pdf_is_not_sent() -> None:
    blank = pdf(2, verdict="blank")
    chosen = choose_engine(blank, GEMINI, DEFAULT, prompt_chars=10, max_tokens=10)
    assert isinstance(chosen, NotSent) and chosen.error_type == "empty"


def test_image_on_a_model_without_image_input_is_an_error_route() -> None:
    chosen = route("image", "text-only")
    assert isinstance(chosen, NotSent) and chosen.error_type == "unsupported"
    assert chosen.error_message == f"model {TEXT_ONLY.id} does not take images; choose a model with image input"


def test_forced_native_on_a_model_without_files_fails_before_any_call() -> None:
    with pytest.raises(ConfigError) as caught:
        check_forced_engine("native", TEXT_ONLY)
    assert caught.value.message == (
        "model meta-llama/llama-3.3-70b-instruct does not accept file input; use --engine mistral-ocr or "
        "local-text, or choose a model with file input"
    )
    with pytest.raises(ConfigError):
        route("scan", "text-only", forced="native")


@pytest.mark.parametrize("forced", [None, "auto", "pdf-text", "mistral-ocr", "local-text"])
def test_engines_every_model_can_use_pass_the_check(forced: str | None) -> None:
    check_forced_engine(forced, TEXT_ONLY)


def test_unknown_forced_engine_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--engine must be"):
        check_forced_engine("tesseract", GEMINI)


@pytest.mark.parametrize("forced", ["local-text", "pdf-text"])
def test_forced_text_engine_on_a_scan_is_refused_not_paid(forced: str) -> None:
    chosen = route("scan", "gemini", forced=forced)
    assert isinstance(chosen, NotSent) and chosen.error_type == "unreadable"
    assert chosen.error_message is not None and "--engine auto, mistral-ocr or native" in chosen.error_message


def test_forced_text_engine_on_a_mixed_pdf_is_sent_and_warns_of_missing_pages() -> None:
    chosen = route("mixed", "gemini", forced="local-text")
    assert chosen.engine == "local-text"
    assert "1 pp without usable text will be missing" in chosen.reason


def test_forced_ocr_on_a_text_pdf_pays_ocr_and_shows_what_auto_would_pick() -> None:
    chosen = route("sparse-text", "sonnet", forced="mistral-ocr")
    assert chosen.engine == "mistral-ocr" and chosen.estimate is not None
    assert chosen.estimate.parse_fee_usd == pytest.approx(4 * 0.002)
    assert "forced mistral-ocr $" in chosen.reason and "(auto: local-text $" in chosen.reason


def test_forced_engine_does_not_apply_to_images() -> None:
    assert route("image", "gemini", forced="mistral-ocr").engine == "image"
