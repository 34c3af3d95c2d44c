"""The cost model: what one request for a document costs with each engine, expected and at most.

Every number lives in `PriceBook`, so a price change is configuration, not code. Token counts follow
reference/pdf-heuristics.md §3.5: text is chars/4; native PDF pages cost a per-family number of tokens;
mistral-ocr costs a page fee plus the OCR text as tokens; images cost min(1568, w*h/750) tokens.
`max_usd` is an upper bound the budget can reserve: the answer at max_tokens, prompt tokens at their
upper bound (estimated counts times a safety factor), all at the most the run tells the server it will
pay (`MaxPrice`, sent as provider.max_price), plus the parse fee unless a stored parse is reused.
Prompt-size price `overrides` apply to the whole request once its prompt reaches their threshold (the
bound uses the upper prompt count, so it reaches them first, and scales the max price by the override's
rise). Known gap, kept on purpose: images that mistral-ocr forwards to image-capable models are not in
the bound.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Protocol

from docrouter.budget import Bound
from docrouter.catalogue import ModelInfo
from docrouter.errors import ConfigError
from docrouter.inspect.inspection import Inspection
from docrouter.vocabulary import ENGINES, TEXT_ENGINES, Engine
from docrouter.vocabulary import IMAGE_ENGINE as IMAGE_ENGINE  # the vocabulary's, named here too
from docrouter.vocabulary import PDF_ENGINES as PDF_ENGINES  # also the tie-break order


class PriceSettings(Protocol):
    """The run settings that bound a model's price (docrouter.run.config.RunConfig has them)."""

    @property
    def max_tokens(self) -> int: ...
    @property
    def max_price(self) -> tuple[float, float] | None: ...
    @property
    def budget_usd(self) -> float | None: ...
    @property
    def price_headroom(self) -> float: ...


@dataclass(frozen=True)
class PageTokens:
    """Input tokens per PDF page when a model family reads the file natively."""

    scan: int  # typical, for a page that is an image
    text: int  # typical, for a page with a text layer
    upper: int  # at most, for a page of ordinary density
    with_text: bool = True  # the provider sends the page's extracted text beside its image (Claude, GPT)


NATIVE_PAGE_TOKENS = (
    ("gemini", PageTokens(scan=258, text=258, upper=560, with_text=False)),  # 560: Gemini 3 MEDIUM
    ("claude", PageTokens(scan=1600, text=2200, upper=2350)),
    ("gpt", PageTokens(scan=1000, text=1000, upper=1200)),
)


@dataclass(frozen=True)
class MaxPrice:
    """The most the run pays per unit (USD per token, image, request): sent as provider.max_price."""

    prompt: float
    completion: float
    image: float = 0.0
    request: float = 0.0

    def wire(self) -> dict[str, float]:
        """provider.max_price: per million tokens for prompt/completion; image and request only when priced."""
        wire = {"prompt": _per_million(self.prompt), "completion": _per_million(self.completion)}
        wire.update({name: value for name, value in (("image", self.image), ("request", self.request)) if value})
        return wire


def _per_million(per_token: float) -> float:
    return float(f"{per_token * 1_000_000:.12g}")  # 1.25e-07 * 1e6 is 0.12499999999999999 otherwise


def max_price_for(model: ModelInfo, headroom: float, explicit: tuple[float, float] | None = None) -> MaxPrice:
    """The catalogue price plus `headroom`, or PROMPT,COMPLETION per million tokens given by hand."""
    if explicit is not None:
        prompt, completion = (price / 1_000_000 for price in explicit)
    else:
        prompt, completion = model.prompt_price * (1 + headroom), model.completion_price * (1 + headroom)
    return MaxPrice(prompt, completion, model.image_price * (1 + headroom), model.request_price * (1 + headroom))


def priced_model(model: ModelInfo, config: PriceSettings) -> tuple[ModelInfo, MaxPrice]:
    """The model as the run prices it, and the max price it sends; ConfigError for what cannot be bounded.

    A placeholder (negative) price is unknown, not free: a budgeted run needs --max-price, which then
    also stands for the model's price in estimates.
    """
    if model.max_completion_tokens and config.max_tokens > model.max_completion_tokens:
        raise ConfigError(
            f"--max-tokens {config.max_tokens} is over {model.id}'s limit of {model.max_completion_tokens} "
            "completion tokens"
        )
    if model.placeholder_price and config.max_price is None and config.budget_usd is not None:
        raise ConfigError(
            f"{model.id} lists no real token price (a placeholder), so --budget cannot bound it; give "
            "--max-price PROMPT,COMPLETION in USD per million tokens"
        )
    if model.placeholder_price and config.max_price is not None:
        prompt, completion = (price / 1_000_000 for price in config.max_price)
        model = dataclasses.replace(model, prompt_price=prompt, completion_price=completion)
    return _reasoning_priced(model), max_price_for(_reasoning_priced(model), config.price_headroom, config.max_price)


def _reasoning_priced(model: ModelInfo) -> ModelInfo:
    """Reasoning tokens are output tokens, billed at `internal_reasoning` where a provider charges it apart; how an
    answer splits into reasoning and text is unknown until it arrives, so every output token is priced at the
    dearer of the two (estimates and reservations both: a bound must hold whatever the split)."""
    dearer = model.reasoning_price
    if dearer <= model.completion_price:
        return model
    overrides = tuple(dataclasses.replace(o, completion_price=max(o.completion_price, dearer)) for o in model.overrides)
    return dataclasses.replace(model, completion_price=dearer, overrides=overrides)


@dataclass(frozen=True)
class PriceBook:
    """Every number of the cost model that is not a model price from the catalogue."""

    ocr_fee_per_page: float = 0.002  # mistral-ocr, USD per page ($2 per 1,000)
    chars_per_token: float = 4.0
    native_page_tokens: tuple[tuple[str, PageTokens], ...] = NATIVE_PAGE_TOKENS
    default_page_tokens: PageTokens = PageTokens(scan=800, text=800, upper=1500)
    ocr_tokens_per_page: int = 600  # OCR Markdown of one scanned page, typical
    ocr_tokens_upper: int = 1000  # ... and at most, for a page without a text layer
    layer_tokens_upper: int = 4000  # a page whose unusable layer a parser may return verbatim (~16k chars)
    image_token_cap: int = 1568
    image_pixels_per_token: float = 750.0
    image_tokens_by_family: tuple[tuple[str, int], ...] = (("gemini", 258),)
    framing_tokens: int = 20  # roles, the <document> wrapper, a short file name
    framing_tokens_upper: int = 100  # ... with a 255-character file name and the reuse turn
    safety_factor: float = 1.25  # on token counts that are estimated rather than counted
    ceiling: MaxPrice | None = None  # the max price sent with every request; None: the list prices

    def family(self, model: ModelInfo) -> str:
        """The model family (gemini, claude, gpt, ...) from its tokenizer, else its id; "" when unknown."""
        hints = (model.tokenizer.lower(), model.id.rsplit("/", 1)[-1].lower())
        names = [name for name, _ in self.native_page_tokens] + [name for name, _ in self.image_tokens_by_family]
        return next((name for name in names if any(h.startswith(name) for h in hints)), "")

    def page_tokens(self, model: ModelInfo) -> PageTokens:
        return dict(self.native_page_tokens).get(self.family(model), self.default_page_tokens)

    def tokens(self, chars: float) -> int:
        """Tokens of `chars` characters of text."""
        return math.ceil(chars / self.chars_per_token)


@dataclass(frozen=True)
class Estimate:
    """The cost of one request: expected, and an upper bound of what the API can bill."""

    prompt_tokens: int  # expected input tokens (estimated: characters / 4, pages by family)
    completion_tokens: int  # the expected answer (history or the prior); max_usd counts max_tokens
    parse_fee_usd: float
    expected_usd: float
    max_usd: float
    max_prompt_tokens: int = 0
    bound: Bound = Bound(0.0)  # max_usd split into what max_price caps and the fee learned from bills


def estimate(
    engine: Engine,
    inspection: Inspection,
    model: ModelInfo,
    prices: PriceBook,
    *,
    prompt_chars: int,
    max_tokens: int,
    text_chars: int | None = None,
    reuse_annotations: bool = False,
    answer_tokens: int | None = None,
) -> Estimate:
    """The cost of sending `inspection`'s document with `engine`: expected with an answer of `answer_tokens`
    (default max_tokens), at most with max_tokens."""
    typical, upper = document_tokens(engine, inspection, model, prices, text_chars)
    instruction = prices.tokens(prompt_chars)
    prompt = instruction + prices.framing_tokens + typical
    prompt_max = instruction + prices.framing_tokens_upper + upper
    fee = 0.0 if reuse_annotations else parse_fee(engine, inspection, prices)
    fixed = fee + model.request_price + (model.image_price if engine == IMAGE_ENGINE else 0.0)
    bound = token_bound(engine, model, prices.ceiling, prompt_max, max_tokens, fee)
    answer = max_tokens if answer_tokens is None else min(answer_tokens, max_tokens)
    return Estimate(
        prompt_tokens=prompt,
        completion_tokens=answer,
        parse_fee_usd=fee,
        expected_usd=fixed + _tokens_usd(model, prompt, answer),
        max_usd=bound.tokens_usd + bound.fee_usd,
        max_prompt_tokens=prompt_max,
        bound=bound,
    )


def token_bound(
    engine: Engine, model: ModelInfo, ceiling: MaxPrice | None, prompt_tokens: int, max_tokens: int, fee: float
) -> Bound:
    """Tokens, images and the request at the max price (the server refuses more); the OCR fee at list price.

    A prompt long enough for a price override raises the max price as much as the override raises the list.
    """
    most = ceiling or MaxPrice(model.prompt_price, model.completion_price, model.image_price, model.request_price)
    prompt_rise, completion_rise = _override_rise(model, prompt_tokens)
    tokens = prompt_tokens * most.prompt * prompt_rise + max_tokens * most.completion * completion_rise + most.request
    if engine == IMAGE_ENGINE:
        tokens += most.image
    return Bound(tokens, fee, "ocr" if fee else None)


def _override_rise(model: ModelInfo, prompt_tokens: int) -> tuple[float, float]:
    """How many times the list prices a prompt of this size pays (1, 1 below every override)."""
    prompt, completion = model.prices_at(prompt_tokens)
    prompt_rise = prompt / model.prompt_price if model.prompt_price else 1.0
    return prompt_rise, completion / model.completion_price if model.completion_price else 1.0


def _tokens_usd(model: ModelInfo, prompt_tokens: int, completion_tokens: int) -> float:
    """Tokens at the prices a prompt of this size gets (a long-prompt override raises both)."""
    prompt_price, completion_price = model.prices_at(prompt_tokens)
    return prompt_tokens * prompt_price + completion_tokens * completion_price


def parse_fee(engine: Engine, inspection: Inspection, prices: PriceBook) -> float:
    """The server-side parse fee: mistral-ocr bills every page; the other engines parse free."""
    return inspection.pages * prices.ocr_fee_per_page if engine == "mistral-ocr" else 0.0


def document_tokens(
    engine: Engine, inspection: Inspection, model: ModelInfo, prices: PriceBook, text_chars: int | None = None
) -> tuple[int, int]:
    """(typical, upper) input tokens of the document itself with `engine`."""
    if (engine == IMAGE_ENGINE) != (inspection.kind == "image"):
        raise ConfigError(f"engine {engine!r} cannot read {inspection.kind} documents")
    if engine == "local-text" and text_chars is not None:
        exact = prices.tokens(text_chars)
        return exact, exact
    if engine in TEXT_ENGINES:
        return text_layer_tokens(inspection, prices)
    if engine == "mistral-ocr":
        return ocr_tokens(inspection, prices)
    if engine == "native":
        return native_tokens(inspection, model, prices)
    if engine == IMAGE_ENGINE:
        return image_tokens(inspection, model, prices)
    raise ConfigError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")


def text_layer_tokens(inspection: Inspection, prices: PriceBook) -> tuple[int, int]:
    """The usable text; the bound allows for whatever the unusable pages' layers hold."""
    upper = prices.tokens(inspection.text_chars * prices.safety_factor) + unusable_pages_upper(inspection, prices)
    return prices.tokens(inspection.text_chars), upper


def ocr_tokens(inspection: Inspection, prices: PriceBook) -> tuple[int, int]:
    """OCR Markdown: the text pages' text, plus a per-page allowance for the pages that need reading."""
    typical = prices.tokens(inspection.text_chars) + len(inspection.ocr_pages) * prices.ocr_tokens_per_page
    return typical, text_layer_tokens(inspection, prices)[1]


def unusable_pages_upper(inspection: Inspection, prices: PriceBook) -> int:
    """At most what parsing the pages that need reading yields: more where a junk text layer exists."""
    labels = inspection.page_labels
    without_layer = ("image-only", "vector")
    return sum(
        prices.ocr_tokens_upper
        if page < len(labels) and labels[page] in without_layer
        else prices.layer_tokens_upper  # a junk OCR layer, garbled text, or no label to tell
        for page in inspection.ocr_pages
    )


def native_tokens(inspection: Inspection, model: ModelInfo, prices: PriceBook) -> tuple[int, int]:
    """Per-page tokens of the model's family; Claude and GPT add each page's text to its image."""
    per_page = prices.page_tokens(model)
    scanned = len(inspection.ocr_pages)
    typical = scanned * per_page.scan + (inspection.pages - scanned) * per_page.text
    upper = inspection.pages * per_page.upper
    if per_page.with_text:
        # A dense page can exceed the measured figure: a full image plus all of its text.
        upper = max(upper, inspection.pages * prices.image_token_cap + text_layer_tokens(inspection, prices)[1])
    return typical, max(typical, upper)


def image_tokens(inspection: Inspection, model: ModelInfo, prices: PriceBook) -> tuple[int, int]:
    """min(cap, w*h/750), or the family's flat figure (Gemini); the full cap when the size is unknown."""
    area = inspection.width * inspection.height
    by_area = min(prices.image_token_cap, math.ceil(area / prices.image_pixels_per_token))
    if area <= 0:
        by_area = prices.image_token_cap
    flat = dict(prices.image_tokens_by_family).get(prices.family(model))
    typical = flat if flat is not None else by_area
    return typical, math.ceil(max(typical, by_area) * prices.safety_factor)
