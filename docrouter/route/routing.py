"""Engine routing: per document, the cheapest engine that can read it and that the model supports.

A pure function of (inspection, model, prices): `plan` and `run` call the same code.
Adequacy: a PDF with a usable text layer everywhere is read by local-text, pdf-text or native (never
mistral-ocr unless forced); a PDF with pages that need reading goes to mistral-ocr or, when the model
takes files, native; an image goes as an image to a model that takes images.
A forced text engine on a document with no usable text at all is refused (error_type "unreadable"):
the answer would be empty but still paid. On a mixed document it is sent, and the reason says which
pages the answer will miss.
"""

from __future__ import annotations

from dataclasses import dataclass

from docrouter.catalogue import ModelInfo
from docrouter.discover.documents import Document
from docrouter.errors import ConfigError
from docrouter.inspect.inspection import Inspection
from docrouter.route.pricing import Estimate, PriceBook, estimate
from docrouter.vocabulary import (
    IMAGE_ENGINE,
    PARSING_ENGINES,  # engines that return a reusable parse (annotations)
    PDF_ENGINES,
    TEXT_ENGINES,
    Engine,
    EngineChoice,
    ErrorType,
    PdfEngine,
)


@dataclass(frozen=True)
class Route:
    """The engine chosen for one document, its estimate and why."""

    engine: Engine
    reason: str
    estimate: Estimate


@dataclass(frozen=True)
class NotSent:
    """Why a document goes without a request: refused (error_type says why) or settled another way."""

    reason: str
    error_type: ErrorType | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class Costing:
    """What choose_engine needs besides the document and the model."""

    prices: PriceBook
    prompt_chars: int
    max_tokens: int
    has_annotations: bool = False
    answer_tokens: int | None = None

    def of(self, engine: Engine, inspection: Inspection, model: ModelInfo) -> Estimate:
        reuse = self.has_annotations and engine in PARSING_ENGINES
        return estimate(
            engine,
            inspection,
            model,
            self.prices,
            prompt_chars=self.prompt_chars,
            max_tokens=self.max_tokens,
            reuse_annotations=reuse,
            answer_tokens=self.answer_tokens,
        )


def forced_engine(name: str | None) -> PdfEngine | None:
    """The PDF engine `--engine name` forces (None for auto); ConfigError for a name that is no engine."""
    if name in (None, "auto"):
        return None
    for engine in PDF_ENGINES:
        if engine == name:
            return engine
    raise ConfigError(f"--engine must be auto or one of {', '.join(PDF_ENGINES)}, not {name!r}")


def check_forced_engine(forced: str | None, model: ModelInfo) -> None:
    """Raise ConfigError, before any call, when `--engine forced` cannot work with `model`."""
    if forced_engine(forced) == "native" and not model.takes_files:
        raise ConfigError(
            f"model {model.id} does not accept file input; use --engine mistral-ocr or local-text, "
            "or choose a model with file input"
        )


def choose_engine(
    inspection: Inspection,
    model: ModelInfo,
    prices: PriceBook,
    *,
    forced: EngineChoice | None = None,
    prompt_chars: int,
    max_tokens: int,
    has_annotations: bool = False,
    answer_tokens: int | None = None,
) -> Route | NotSent:
    """The engine for one document, its estimate and a one-line reason; why not, when none fits."""
    costing = Costing(prices, prompt_chars, max_tokens, has_annotations, answer_tokens)
    if not inspection.ok:
        reason = f"not sent: inspection failed ({inspection.error_type})"
        return NotSent(reason, inspection.error_type, inspection.error_message)
    if inspection.kind == "image":
        return route_image(inspection, model, costing)
    if inspection.pages <= 0 or inspection.verdict == "blank":
        message = "every page is blank: there is nothing to read"
        return NotSent(f"{describe(inspection)}; not sent", "empty", message)
    if forced is not None and forced != "auto":
        return route_forced(inspection, model, costing, forced)
    return route_auto(inspection, model, costing)


def describe(inspection: Inspection) -> str:
    """'text layer, 12 pp' / 'scan, 3 pp' / 'mixed, 10 pp (1 needs OCR)', and which reader read it if not pypdf."""
    pages, needing = inspection.pages, len(inspection.ocr_pages)
    if inspection.verdict == "blank":
        described = f"blank, {pages} pp"
    elif not needing:
        described = f"text layer, {pages} pp"
    elif needing >= pages:
        described = f"scan, {pages} pp"
    else:
        described = f"mixed, {pages} pp ({needing} need{'s' if needing == 1 else ''} OCR)"
    if inspection.reader != "pypdf":
        described += f" (read by PDFium: {inspection.reader_note[:120] or 'pypdf could not read it'})"
    return described


def adequate_engines(inspection: Inspection, model: ModelInfo) -> tuple[PdfEngine, ...]:
    """The PDF engines that can read this document with this model, in tie-break order."""
    native: tuple[PdfEngine, ...] = ("native",) if model.takes_files else ()
    if inspection.needs_ocr:
        return (*native, "mistral-ocr")
    return ("local-text", "pdf-text", *native)


def route_auto(inspection: Inspection, model: ModelInfo, costing: Costing) -> Route:
    """The cheapest adequate engine; ties go to the earlier engine (local-text first)."""
    priced = [(engine, costing.of(engine, inspection, model)) for engine in adequate_engines(inspection, model)]
    priced.sort(key=lambda p: (p[1].expected_usd, PDF_ENGINES.index(p[0])))
    reason = f"{describe(inspection)}; {compare(priced)}"
    if inspection.needs_ocr and not model.takes_files:
        reason += f" (model {model.id} takes no files, so no native)"
    if costing.has_annotations and inspection.needs_ocr:
        reason += "; stored parse reused, no OCR fee"
    engine, chosen = priced[0]
    return Route(engine, reason, chosen)


def compare(priced: list[tuple[PdfEngine, Estimate]]) -> str:
    """'native $0.0004 < mistral-ocr $0.0060' for engines sorted cheapest first."""
    text = label(*priced[0])
    for (_, before), (engine, after) in zip(priced, priced[1:], strict=False):
        text += f" {'<' if before.expected_usd < after.expected_usd else '<='} {label(engine, after)}"
    return text


def label(engine: Engine, cost: Estimate) -> str:
    return f"{engine} {usd(cost.expected_usd)}"


def usd(amount: float) -> str:
    """Dollars with enough digits to tell small amounts apart."""
    return f"${amount:.4f}" if amount >= 0.001 or amount == 0 else f"${amount:.6f}"


def route_forced(inspection: Inspection, model: ModelInfo, costing: Costing, forced: PdfEngine) -> Route | NotSent:
    """The forced engine, unless it cannot read the document at all."""
    check_forced_engine(forced, model)
    described = describe(inspection)
    if forced in TEXT_ENGINES and inspection.needs_ocr:
        missing = len(inspection.ocr_pages)
        if missing >= inspection.pages or inspection.text_chars <= 0:
            message = (
                f"--engine {forced} cannot read this document: none of its {inspection.pages} pages has a "
                "usable text layer; use --engine auto, mistral-ocr or native"
            )
            return NotSent(f"{described}; forced {forced} cannot read it: not sent", "unreadable", message)
        described += f"; the {missing} pp without usable text will be missing from the answer"
    chosen = costing.of(forced, inspection, model)
    auto = route_auto(inspection, model, costing)
    reason = f"{described}; forced {label(forced, chosen)}"
    if auto.engine != forced:
        reason += f" (auto: {label(auto.engine, auto.estimate)})"
    return Route(forced, reason, chosen)


def route_image(inspection: Inspection, model: ModelInfo, costing: Costing) -> Route | NotSent:
    """An image goes as an image_url, to a model that takes images."""
    size = f"image {inspection.image_format or ''} {inspection.width}x{inspection.height}".replace("  ", " ")
    if not model.takes_images:
        message = f"model {model.id} does not take images; choose a model with image input"
        return NotSent(f"{size}; not sent", "unsupported", message)
    chosen = costing.of(IMAGE_ENGINE, inspection, model)
    return Route(
        IMAGE_ENGINE, f"{size}; ~{chosen.prompt_tokens} tokens (estimated), {usd(chosen.expected_usd)}", chosen
    )


@dataclass(frozen=True)
class Router:
    """Everything a routing decision needs besides the document, fixed for a whole plan or run."""

    model: ModelInfo
    prices: PriceBook
    forced: PdfEngine | None  # --engine, None for auto
    prompt_chars: int
    max_tokens: int
    answer_tokens: int  # the expected answer length (history, else the prior)
    annotated: frozenset[str] = frozenset()  # doc_ids with a stored parse: no OCR fee

    def route(self, doc: Document, inspection: Inspection | None) -> Route | NotSent | None:
        """The document's route; None when it was not inspected (unsupported or unreadable file)."""
        if inspection is None:
            return None
        return choose_engine(
            inspection,
            self.model,
            self.prices,
            forced=self.forced if doc.kind == "pdf" else None,
            prompt_chars=self.prompt_chars,
            max_tokens=self.max_tokens,
            has_annotations=doc.doc_id in self.annotated,
            answer_tokens=self.answer_tokens,
        )

    def cost(self, engine: Engine, inspection: Inspection, annotated: bool) -> Estimate:
        """What `engine` would cost for this document (the baselines beside the routed cost)."""
        costing = Costing(self.prices, self.prompt_chars, self.max_tokens, annotated, self.answer_tokens)
        return costing.of(engine, inspection, self.model)
