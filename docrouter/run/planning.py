"""The plan: per document the engine, the reason and the estimated cost, before any paid call.

Beside the routed total, a plan prices two naive rules for the same documents: OpenRouter's default
(native when the model takes files, else mistral-ocr, for every PDF) and always-OCR (mistral-ocr for
every PDF). Images cost the same under all three. Documents that are not sent count $0 everywhere.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from docrouter.catalogue import ModelInfo
from docrouter.discover.documents import SKIPPED_ERRORS, Document, skip_reason
from docrouter.errors import ConfigError
from docrouter.inspect.inspection import Inspection, inspection_pool
from docrouter.route.pricing import PriceBook
from docrouter.route.routing import NotSent, Route, Router, usd
from docrouter.run.config import RunConfig
from docrouter.run.ledger import Reader, read_ledger
from docrouter.store.compaction import read_dataset
from docrouter.vocabulary import Engine, EngineChoice, ErrorType, PdfEngine

PLAN_FILE = "plan.parquet"


@dataclass(frozen=True)
class PlanRow:
    """One document of the plan."""

    path: str
    source_root: str
    doc_id: str
    size_bytes: int
    kind: str | None
    pages: int | None
    verdict: str | None
    engine: Engine | None
    engine_reason: str
    error_type: ErrorType | None
    error_message: str | None
    est_cost_usd: float  # expected, routed
    max_cost_usd: float  # upper bound, routed (what the budget would reserve)
    default_cost_usd: float  # under OpenRouter's default rule
    ocr_cost_usd: float  # under always-OCR
    prompt_tokens: int
    completion_tokens: int
    parse_fee_usd: float
    duplicate_of: str | None = None  # the path of the same bytes, priced there
    settled: str | None = None  # "already_done" / "known_failures": an earlier run settled it, not sent


@dataclass(frozen=True)
class Plan:
    """Rows and totals for one model."""

    model: str
    default_engine: PdfEngine  # what OpenRouter picks for PDFs when none is given
    rows: tuple[PlanRow, ...]
    answer_tokens: int = 0  # the expected answer length every estimate assumes

    @property
    def routed_usd(self) -> float:
        return sum(r.est_cost_usd for r in self.rows)

    @property
    def routed_max_usd(self) -> float:
        return sum(r.max_cost_usd for r in self.rows)

    @property
    def default_usd(self) -> float:
        return sum(r.default_cost_usd for r in self.rows)

    @property
    def always_ocr_usd(self) -> float:
        return sum(r.ocr_cost_usd for r in self.rows)

    @property
    def savings_vs_default_usd(self) -> float:
        return self.default_usd - self.routed_usd

    @property
    def savings_vs_ocr_usd(self) -> float:
        return self.always_ocr_usd - self.routed_usd

    def count(self, what: str) -> int:
        """Rows that are 'sent', 'copies', 'settled' (by an earlier run) or 'unsent'."""
        tests = {
            "sent": lambda r: r.engine is not None and r.duplicate_of is None,
            "copies": lambda r: r.duplicate_of is not None,
            "settled": lambda r: r.settled is not None,
            "unsent": lambda r: r.engine is None and r.duplicate_of is None and r.settled is None,
        }
        return sum(1 for r in self.rows if tests[what](r))


def default_engine(model: ModelInfo) -> PdfEngine:
    """OpenRouter's rule when no engine is given: the model's native file input, else mistral-ocr."""
    return "native" if model.takes_files else "mistral-ocr"


def build_plan(
    pairs: Iterable[tuple[Document, Inspection | None]],
    model: ModelInfo,
    prices: PriceBook,
    *,
    forced: EngineChoice | None = None,
    prompt_chars: int,
    max_tokens: int,
    annotated_doc_ids: frozenset[str] = frozenset(),
    answer_tokens: int | None = None,
) -> Plan:
    """Route and price every document (no request, no DIR); the same bytes twice are priced once."""
    from docrouter.run.session import split_copies

    router = Router(
        model,
        prices,
        None if forced == "auto" else forced,
        prompt_chars,
        max_tokens,
        max_tokens if answer_tokens is None else answer_tokens,
        annotated_doc_ids,
    )
    inspected = {id(doc): (doc, inspection) for doc, inspection in pairs}
    first, copies = split_copies(doc for doc, _ in inspected.values())
    return plan_from([inspected[id(doc)] for doc in first], router, copies=copies)


def plan_from(
    pairs: Iterable[tuple[Document, Inspection | None]],
    router: Router,
    *,
    copies: Sequence[Document] = (),
    settled: Sequence[tuple[Document, str]] = (),
    earlier: Mapping[str, tuple[str, Engine | None]] | None = None,
) -> Plan:
    """The plan with the run's own Router and selection: `pairs` are routed and priced; `copies` (another path
    of content sent here, or answered by an earlier run: `earlier`, doc_id -> (path, engine)) cost $0, and
    `settled` ones are left alone."""
    rows: list[PlanRow] = []
    first: dict[str, PlanRow] = {}
    for doc, inspection in pairs:
        row = plan_row(doc, inspection, router)
        if doc.kind is not None:
            first.setdefault(doc.doc_id, row)
        rows.append(row)
    for doc in copies:
        original = first.get(doc.doc_id)
        rows.append(_copy(original, doc) if original else _earlier_copy(doc, *(earlier or {})[doc.doc_id]))
    rows += [_settled_row(doc, why) for doc, why in settled]
    model = router.model
    return Plan(
        model=model.id, default_engine=default_engine(model), rows=tuple(rows), answer_tokens=router.answer_tokens
    )


def plan_row(doc: Document, inspection: Inspection | None, router: Router) -> PlanRow:
    """One document's row: its route and what the three rules would cost."""
    route = router.route(doc, inspection)
    if doc.kind is None or inspection is None or route is None:
        error, why = skip_reason(doc)
        outcome = "skipped" if error in SKIPPED_ERRORS else "failed"
        return _row(doc, None, NotSent(f"{outcome} ({error})", error, why))
    if isinstance(route, NotSent):
        return _row(doc, inspection, route)
    default, ocr = baselines(doc, inspection, route, router)
    return _row(doc, inspection, route, default=default, ocr=ocr)


def baselines(doc: Document, inspection: Inspection, route: Route, router: Router) -> tuple[float, float]:
    """What OpenRouter's default rule and always-OCR would be expected to cost for a routed document (`plan`'s
    columns and a run's summary); an image costs what it is routed at under all three."""
    if route.estimate is None:
        return 0.0, 0.0
    if inspection.kind == "image":
        return route.estimate.expected_usd, route.estimate.expected_usd
    annotated = doc.doc_id in router.annotated
    default = router.cost(default_engine(router.model), inspection, annotated).expected_usd
    return default, router.cost("mistral-ocr", inspection, annotated).expected_usd


def _row(
    doc: Document, inspection: Inspection | None, route: Route | NotSent, *, default: float = 0.0, ocr: float = 0.0
) -> PlanRow:
    cost = route.estimate if isinstance(route, Route) else None
    refused = route if isinstance(route, NotSent) else None
    return PlanRow(
        path=doc.rel_path,
        source_root=doc.source_root,
        doc_id=doc.doc_id,
        size_bytes=doc.size_bytes,
        kind=doc.kind,
        pages=inspection.pages if inspection is not None and inspection.ok else None,
        verdict=(inspection.verdict or None) if inspection is not None else None,
        engine=route.engine if isinstance(route, Route) else None,
        engine_reason=route.reason,
        error_type=refused.error_type if refused else None,
        error_message=refused.error_message if refused else None,
        est_cost_usd=cost.expected_usd if cost else 0.0,
        max_cost_usd=cost.max_usd if cost else 0.0,
        default_cost_usd=default,
        ocr_cost_usd=ocr,
        prompt_tokens=cost.prompt_tokens if cost else 0,
        completion_tokens=cost.completion_tokens if cost else 0,
        parse_fee_usd=cost.parse_fee_usd if cost else 0.0,
    )


def _earlier_copy(doc: Document, path: str, engine: Engine | None) -> PlanRow:
    """A new path of content an earlier run answered: its own row, the stored answer, $0."""
    reason = f"same bytes as {path}, answered by an earlier run: copied at $0"
    row = _row(doc, None, NotSent(reason))
    return replace(row, engine=engine, duplicate_of=path)


def _settled_row(doc: Document, why: str) -> PlanRow:
    """A document an earlier run settled: answered already, or a terminal failure left alone."""
    reason = {
        "already_done": "already answered in DIR: not sent",
        "known_failures": "known failure, unchanged: not sent (--retry-failed tries it again)",
    }[why]
    return replace(_row(doc, None, NotSent(reason)), settled=why)


def _copy(original: PlanRow, doc: Document) -> PlanRow:
    """Another path with the same bytes: answered once, so this one costs nothing."""
    return replace(
        original,
        path=doc.rel_path,
        source_root=doc.source_root,
        engine_reason=f"same bytes as {original.path}: answered once",
        est_cost_usd=0.0,
        max_cost_usd=0.0,
        default_cost_usd=0.0,
        ocr_cost_usd=0.0,
        prompt_tokens=0,
        completion_tokens=0,
        parse_fee_usd=0.0,
        duplicate_of=original.path,
    )


PATH_WIDTH = 48

PLAN_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("source_root", pa.string()),
        ("doc_id", pa.string()),
        ("size_bytes", pa.int64()),
        ("kind", pa.string()),
        ("pages", pa.int32()),
        ("verdict", pa.string()),
        ("engine", pa.string()),
        ("engine_reason", pa.string()),
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        ("est_cost_usd", pa.float64()),
        ("max_cost_usd", pa.float64()),
        ("default_cost_usd", pa.float64()),
        ("ocr_cost_usd", pa.float64()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("parse_fee_usd", pa.float64()),
        ("duplicate_of", pa.string()),
        ("settled", pa.string()),
        ("model", pa.string()),
    ]
)


def render_plan(plan: Plan) -> str:
    """A fixed-width table, one line per document, then the totals beside the two naive rules."""
    width = min(PATH_WIDTH, max([4, *(len(r.path) for r in plan.rows)]))
    lines = [f"{'PATH':<{width}}  {'PAGES':>5}  {'ENGINE':<11}  {'EXPECTED':>9}  {'AT MOST':>9}  REASON"]
    for r in plan.rows:
        pages = "-" if r.pages is None else str(r.pages)
        cost, most = (usd(r.est_cost_usd), usd(r.max_cost_usd)) if r.engine else ("-", "-")
        reason = f"{r.engine_reason}: {r.error_message}" if r.error_message else r.engine_reason
        path = shorten(r.path, width)
        lines.append(f"{path:<{width}}  {pages:>5}  {r.engine or '-':<11}  {cost:>9}  {most:>9}  {reason}")
    return "\n".join([*lines, "", *totals_lines(plan)])


def shorten(path: str, width: int) -> str:
    """The path cut from the left, so the file name stays readable."""
    return path if len(path) <= width else "…" + path[-(width - 1) :]


def totals_lines(plan: Plan) -> list[str]:
    """The totals: what routing costs, and what the default rule and always-OCR would cost."""
    engines: dict[str, int] = {}
    for r in plan.rows:
        if r.engine and r.duplicate_of is None:
            engines[r.engine] = engines.get(r.engine, 0) + 1
    by_engine = ", ".join(f"{e} {n}" for e, n in sorted(engines.items())) or "none"
    default = f"OpenRouter default ({plan.default_engine}):"
    vs_default = _saving(plan.savings_vs_default_usd, plan.default_usd)
    vs_ocr = _saving(plan.savings_vs_ocr_usd, plan.always_ocr_usd)
    return [
        f"{len(plan.rows)} files: {plan.count('sent')} to send ({by_engine}), "
        f"{plan.count('copies')} same-bytes copies, {plan.count('settled')} settled by earlier runs, "
        f"{plan.count('unsent')} not sent; model {plan.model}",
        f"token counts are estimated; answers expected at ~{plan.answer_tokens} tokens each",
        f"{'docrouter routing:':<32}{usd(plan.routed_usd):>10}  expected (at most {usd(plan.routed_max_usd)})",
        f"{default:<32}{usd(plan.default_usd):>10}  {vs_default}",
        f"{'always mistral-ocr:':<32}{usd(plan.always_ocr_usd):>10}  {vs_ocr}",
    ]


def _saving(saved: float, baseline: float) -> str:
    if baseline <= 0:
        return ""
    word = "saves" if saved >= 0 else "costs more by"
    return f"docrouter {word} {usd(abs(saved))} ({abs(saved) / baseline:.0%})"


def plan_totals(plan: Plan) -> dict[str, float | int | str]:
    """The totals as plain values (Parquet metadata, JSON, Prefect artifacts)."""
    return {
        "model": plan.model,
        "default_engine": plan.default_engine,
        "files": len(plan.rows),
        "sent": plan.count("sent"),
        "copies": plan.count("copies"),
        "unsent": plan.count("unsent"),
        "settled": plan.count("settled"),
        "answer_tokens": plan.answer_tokens,
        "routed_usd": plan.routed_usd,
        "routed_max_usd": plan.routed_max_usd,
        "default_usd": plan.default_usd,
        "always_ocr_usd": plan.always_ocr_usd,
        "savings_vs_default_usd": plan.savings_vs_default_usd,
        "savings_vs_ocr_usd": plan.savings_vs_ocr_usd,
    }


def write_plan(plan: Plan, out_dir: Path) -> Path:
    """Write the plan as out_dir/plan.parquet (atomically; totals in the file's metadata)."""
    rows = [{**asdict(r), "model": plan.model} for r in plan.rows]
    schema = PLAN_SCHEMA.with_metadata({"docrouter.plan": json.dumps(plan_totals(plan))})
    table = pa.Table.from_pylist(rows, schema=schema)
    target = out_dir / PLAN_FILE
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".plan-", suffix=".parquet", dir=out_dir)
        os.close(fd)
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot write the plan to {out_dir}: {exc.strerror or exc}") from None
    return target


def make_plan(
    config: RunConfig,
    fetched: Sequence[Document] = (),
    *,
    documents: Sequence[Document] | None = None,
    read: Reader = read_dataset,
) -> Plan:
    """Discover (plus `fetched` URL documents; or take `documents` as discovered), select against DIR's ledger
    (config.out), inspect what a run would send, route and price: the run's own session functions, no paid call."""
    from docrouter.run.session import checked_model, discover, inspect, make_router, models, named_files, select_from

    model, ceiling = checked_model(config, models(config))
    ledger = read_ledger(config.out, config.model, config.prompt_sha256, read=read)  # the ids of stored parses
    documents = [*discover(config), *fetched] if documents is None else list(documents)
    selection = select_from(documents, ledger, config)
    with inspection_pool(config.environment.pdf) as pool:  # DOCROUTER_PDF_* as the run has them
        pairs = inspect(selection.fresh, pool, named=named_files(config.sources))
    prices = PriceBook(ocr_fee_per_page=config.ocr_fee_per_page, ceiling=ceiling)  # as the run prices
    router = make_router(config, model, prices, ledger)
    return plan_from(pairs, router, copies=selection.copies, settled=selection.settled, earlier=ledger.answers)


def plan_json(plan: Plan) -> dict[str, object]:
    """The plan as one JSON object: the two totals and every document's route and two figures."""
    keys = ("path", "doc_id", "engine", "engine_reason", "pages")
    documents = [
        {**{k: getattr(r, k) for k in keys}, "est_usd": r.est_cost_usd, "max_usd": r.max_cost_usd} for r in plan.rows
    ]
    totals = plan_totals(plan)
    return {"expected_usd": plan.routed_usd, "max_usd": plan.routed_max_usd, **totals, "documents": documents}
