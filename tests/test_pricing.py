"""The cost model: tokens and dollars per engine, and upper bounds the budget can reserve."""

from __future__ import annotations

import dataclasses
import math

import pytest

from docrouter.catalogue import ModelInfo
from docrouter.errors import ConfigError
from docrouter.inspect.inspection import Inspection
from docrouter.route.pricing import IMAGE_ENGINE, PDF_ENGINES, Estimate, PriceBook, estimate

PROMPT = "Summarize this document in 3-5 sentences."
BOOK = PriceBook()

FILES = frozenset({"text", "image", "file"})
GEMINI = ModelInfo("google/gemini-2.5-flash", FILES, 3e-7, 2.5e-6, tokenizer="Gemini")
CLAUDE = ModelInfo("anthropic/claude-sonnet-4.5", FILES, 3e-6, 1.5e-5, tokenizer="Claude")
GPT = ModelInfo("openai/gpt-4.1-mini", FILES, 4e-7, 1.6e-6, tokenizer="GPT")
OTHER = ModelInfo("mistralai/pixtral", FILES, 1e-7, 3e-7, tokenizer="Mistral")
PRICED = ModelInfo("x/priced", frozenset({"text", "image"}), 1e-6, 2e-6, image_price=0.001, request_price=0.0005)

TEXT = Inspection("t", "pdf", pages=4, page_labels=("text",) * 4, text_chars=8000, verdict="text")
SCAN = Inspection("s", "pdf", pages=3, page_labels=("image-only",) * 3, ocr_pages=(0, 1, 2), verdict="scan")
MIXED = Inspection("m", "pdf", pages=5, ocr_pages=(4,), text_chars=6000, verdict="mixed")
IMAGE = Inspection("i", "image", pages=1, width=1200, height=900, image_format="PNG", verdict="image")


def cost(
    engine: str,
    inspection: Inspection,
    model: ModelInfo = GEMINI,
    *,
    prices: PriceBook = BOOK,
    text_chars: int | None = None,
    reuse_annotations: bool = False,
) -> Estimate:
    return estimate(
        engine,
        inspection,
        model,
        prices,
        prompt_chars=len(PROMPT),
        max_tokens=500,
        text_chars=text_chars,
        reuse_annotations=reuse_annotations,
    )


def emulator_page_tokens(model: ModelInfo, scanned: bool) -> int:
    """What the emulator bills per native PDF page (its documented rule)."""
    family = model.tokenizer.lower()
    return {"gemini": 258, "claude": 1600 if scanned else 2200, "gpt": 1000}.get(family, 800)


@pytest.mark.parametrize("model", [GEMINI, CLAUDE, GPT, OTHER, PRICED], ids=lambda m: m.id)
@pytest.mark.parametrize(
    ("engine", "inspection"),
    [(e, d) for e in PDF_ENGINES for d in (TEXT, SCAN, MIXED)] + [(IMAGE_ENGINE, IMAGE)],
)
def test_upper_bound_is_never_below_the_expected_cost(engine: str, inspection: Inspection, model: ModelInfo) -> None:
    estimated = cost(engine, inspection, model)
    assert estimated.max_usd >= estimated.expected_usd > 0
    assert estimated.max_prompt_tokens >= estimated.prompt_tokens


@pytest.mark.parametrize("model", [GEMINI, CLAUDE, GPT, OTHER], ids=lambda m: m.id)
@pytest.mark.parametrize("inspection", [TEXT, SCAN, MIXED], ids=["text", "scan", "mixed"])
def test_native_bound_covers_the_emulators_per_page_bill(model: ModelInfo, inspection: Inspection) -> None:
    scanned = len(inspection.ocr_pages)
    billed = scanned * emulator_page_tokens(model, True) + (inspection.pages - scanned) * emulator_page_tokens(
        model, False
    )
    estimated = cost("native", inspection, model)
    assert estimated.max_prompt_tokens >= billed + math.ceil(len(PROMPT) / 4)


def test_native_expected_tokens_follow_the_model_family() -> None:
    prompt = BOOK.tokens(len(PROMPT)) + BOOK.framing_tokens
    assert cost("native", SCAN, GEMINI).prompt_tokens == prompt + 3 * 258
    assert cost("native", SCAN, CLAUDE).prompt_tokens == prompt + 3 * 1600
    assert cost("native", TEXT, CLAUDE).prompt_tokens == prompt + 4 * 2200
    assert cost("native", SCAN, GPT).prompt_tokens == prompt + 3 * 1000
    assert cost("native", SCAN, OTHER).prompt_tokens == prompt + 3 * 800


def test_family_comes_from_the_tokenizer_or_else_the_id() -> None:
    assert BOOK.family(ModelInfo("google/gemini-3-flash", frozenset(), 0, 0)) == "gemini"
    assert BOOK.family(ModelInfo("openai/o3", frozenset(), 0, 0, tokenizer="GPT")) == "gpt"
    assert BOOK.family(ModelInfo("meta-llama/llama-3.3-70b-instruct", frozenset(), 0, 0, tokenizer="Llama3")) == ""


def test_mistral_ocr_charges_the_page_fee_plus_ocr_text_tokens() -> None:
    estimated = cost("mistral-ocr", SCAN, CLAUDE)
    assert estimated.parse_fee_usd == pytest.approx(3 * 0.002)
    tokens = BOOK.tokens(len(PROMPT)) + BOOK.framing_tokens + 3 * 600
    assert estimated.expected_usd == pytest.approx(0.006 + tokens * 3e-6 + 500 * 1.5e-5)


def test_reusing_a_stored_parse_removes_the_ocr_fee_from_both_figures() -> None:
    paid, reused = cost("mistral-ocr", MIXED), cost("mistral-ocr", MIXED, reuse_annotations=True)
    assert paid.parse_fee_usd == pytest.approx(5 * 0.002) and reused.parse_fee_usd == 0
    assert paid.max_usd - reused.max_usd == pytest.approx(5 * 0.002)
    assert paid.expected_usd - reused.expected_usd == pytest.approx(5 * 0.002)


def test_ocr_fee_is_configurable() -> None:
    assert cost("mistral-ocr", SCAN, prices=PriceBook(ocr_fee_per_page=0.004)).parse_fee_usd == pytest.approx(0.012)


@pytest.mark.parametrize("engine", ["local-text", "pdf-text", "native"])
def test_engines_other_than_ocr_have_no_parse_fee(engine: str) -> None:
    assert cost(engine, TEXT).parse_fee_usd == 0


def test_counted_local_text_is_exact_with_no_safety_margin() -> None:
    estimated = cost("local-text", TEXT, CLAUDE, text_chars=10_001)
    instruction = math.ceil(len(PROMPT) / 4)
    assert estimated.prompt_tokens == instruction + BOOK.framing_tokens + 2501
    assert estimated.max_prompt_tokens == instruction + BOOK.framing_tokens_upper + 2501


def test_estimated_text_gets_the_safety_factor_in_its_bound() -> None:
    estimated = cost("pdf-text", TEXT)
    instruction = math.ceil(len(PROMPT) / 4)
    assert estimated.prompt_tokens == instruction + BOOK.framing_tokens + 2000
    assert estimated.max_prompt_tokens == instruction + BOOK.framing_tokens_upper + 2500


def test_answer_is_counted_at_max_tokens_with_request_and_image_prices() -> None:
    estimated = cost(IMAGE_ENGINE, IMAGE, PRICED)
    assert estimated.completion_tokens == 500
    tokens = estimated.prompt_tokens
    assert estimated.expected_usd == pytest.approx(tokens * 1e-6 + 500 * 2e-6 + 0.001 + 0.0005)


@pytest.mark.parametrize(
    ("width", "height", "model", "tokens"),
    [
        (1200, 900, GPT, 1440),
        (2000, 2000, GPT, 1568),
        (100, 75, CLAUDE, 10),
        (4000, 3000, GEMINI, 258),
        (0, 0, GPT, 1568),
    ],
)
def test_image_tokens_are_area_over_750_capped_or_gemini_flat(
    width: int, height: int, model: ModelInfo, tokens: int
) -> None:
    image = Inspection("i", "image", pages=1, width=width, height=height)
    estimated = cost(IMAGE_ENGINE, image, model)
    assert estimated.prompt_tokens == BOOK.tokens(len(PROMPT)) + BOOK.framing_tokens + tokens
    billed = min(1568, math.ceil(width * height / 750)) if width else 1568
    assert estimated.max_prompt_tokens >= billed + BOOK.tokens(len(PROMPT))


def test_unknown_engine_and_wrong_kind_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown engine"):
        cost("tesseract", TEXT)
    with pytest.raises(ConfigError, match="cannot read pdf documents"):
        cost(IMAGE_ENGINE, TEXT)
    with pytest.raises(ConfigError, match="cannot read image documents"):
        cost("native", IMAGE)


def test_pages_with_a_junk_text_layer_get_a_larger_bound_than_bare_scans() -> None:
    bare = Inspection("b", "pdf", pages=2, page_labels=("image-only", "vector"), ocr_pages=(0, 1), verdict="scan")
    junk = Inspection("j", "pdf", pages=2, page_labels=("ocr-poor", "garbled"), ocr_pages=(0, 1), verdict="scan")
    overhead = BOOK.tokens(len(PROMPT)) + BOOK.framing_tokens_upper
    assert cost("mistral-ocr", bare).max_prompt_tokens == overhead + 2 * BOOK.ocr_tokens_upper
    assert cost("mistral-ocr", junk).max_prompt_tokens == overhead + 2 * BOOK.layer_tokens_upper
    assert cost("mistral-ocr", bare).prompt_tokens == cost("mistral-ocr", junk).prompt_tokens


# --- the max price sent (provider.max_price) and models without a real price -------------------------

from docrouter.catalogue import parse_model  # noqa: E402
from docrouter.route.pricing import max_price_for, priced_model  # noqa: E402
from docrouter.run.config import RunConfig  # noqa: E402

ROUTER = {"id": "openrouter/auto", "pricing": {"prompt": "-1", "completion": "-1"}, "top_provider": {}}
LISTED = ModelInfo("a/b", frozenset({"text", "file"}), 3e-07, 2.5e-06, max_completion_tokens=8192)


def run_config(**fields: object) -> RunConfig:
    return RunConfig(sources=("x",), out="o", **fields)  # type: ignore[arg-type]


def test_a_placeholder_price_is_not_free_for_a_budgeted_run() -> None:
    model = parse_model(ROUTER)
    assert model is not None and model.placeholder_price and model.prompt_price == 0.0
    with pytest.raises(ConfigError, match="--max-price PROMPT,COMPLETION"):
        priced_model(model, run_config(budget_usd=5.0))
    priced, ceiling = priced_model(model, run_config(budget_usd=5.0, max_price=(1.0, 4.0)))
    assert priced.prompt_price == pytest.approx(1e-06) and priced.completion_price == pytest.approx(4e-06)
    assert ceiling.wire() == {"prompt": 1.0, "completion": 4.0}
    priced_model(model, run_config())  # no budget: nothing to bound


def test_the_max_price_is_the_list_price_plus_the_headroom_and_bounds_reservations() -> None:
    ceiling = max_price_for(LISTED, 0.25)
    assert ceiling.wire() == {"prompt": 0.375, "completion": 3.125}
    inspection = Inspection(doc_id="d", kind="pdf", pages=2, text_chars=4000, ocr_pages=(0, 1))
    listed = estimate("local-text", inspection, LISTED, PriceBook(), prompt_chars=100, max_tokens=1000)
    capped = estimate("local-text", inspection, LISTED, PriceBook(ceiling=ceiling), prompt_chars=100, max_tokens=1000)
    assert capped.max_usd == pytest.approx(listed.max_usd * 1.25)
    assert capped.expected_usd == listed.expected_usd  # the estimate stays at list price
    ocr = estimate("mistral-ocr", inspection, LISTED, PriceBook(ceiling=ceiling), prompt_chars=100, max_tokens=1000)
    assert ocr.bound.fee_kind == "ocr" and ocr.bound.fee_usd == pytest.approx(0.004)


def test_reasoning_billed_apart_prices_every_output_token_at_the_dearer_rate() -> None:
    from docrouter.catalogue import PriceOverride

    item = {"id": "r/thinker", "pricing": {"prompt": "0.000001", "completion": "0.000002",
                                           "internal_reasoning": "0.00001"}}  # fmt: skip
    model = parse_model(item)
    assert model is not None and model.reasoning_price == pytest.approx(1e-05)
    model = dataclasses.replace(model, overrides=(PriceOverride(200_000, 2e-06, 4e-06),))
    priced, ceiling = priced_model(model, run_config(budget_usd=1.0))
    assert priced.completion_price == pytest.approx(1e-05) and priced.overrides[0].completion_price == 1e-05
    assert ceiling.wire()["completion"] == pytest.approx(12.5)  # per million, with the 25% headroom
    inspection = Inspection(doc_id="d", kind="pdf", pages=1, text_chars=400)
    bound = estimate("local-text", inspection, priced, PriceBook(ceiling=ceiling), prompt_chars=10, max_tokens=1000)
    assert bound.max_usd >= 1000 * 1e-05  # a whole answer of reasoning tokens fits the reservation
    free = parse_model({"id": "r/plain", "pricing": {"prompt": "0.000001", "completion": "0.000002",
                                                     "internal_reasoning": "0"}})  # fmt: skip
    assert free is not None and priced_model(free, run_config())[0] == free  # "0": billed as completion


def test_max_tokens_over_the_models_limit_is_refused() -> None:
    with pytest.raises(ConfigError, match="8192"):
        priced_model(LISTED, run_config(max_tokens=10_000))


def test_a_long_prompt_override_prices_the_whole_request_once_its_prompt_can_reach_it() -> None:
    import dataclasses

    from docrouter.catalogue import PriceOverride

    model = dataclasses.replace(GPT, overrides=(PriceOverride(10_000, 8e-7, 3.2e-6),))
    short = Inspection(doc_id="s", kind="pdf", pages=1, text_chars=4_000)  # ~1,000 tokens: default prices
    long = Inspection(doc_id="l", kind="pdf", pages=30, text_chars=120_000)  # 30,000 tokens: the override
    for doc, factor in ((short, 1.0), (long, 2.0)):
        with_override = estimate("local-text", doc, model, PriceBook(), prompt_chars=40, max_tokens=1000)
        default = estimate("local-text", doc, GPT, PriceBook(), prompt_chars=40, max_tokens=1000)
        assert with_override.max_usd == pytest.approx(default.max_usd * factor)
