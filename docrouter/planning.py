"""The plan: per document the engine, the reason and the estimated cost, before any paid call.

Beside the routed total, a plan prices two naive rules for the same documents: OpenRouter's default
(native when the model takes files, else mistral-ocr, for every PDF) and always-OCR (mistral-ocr for
every PDF). Images cost the same under all three. Documents that are not sent count $0 everywhere.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from docrouter.catalogue import Catalogue, ModelInfo, cache_name, load_catalogue
from docrouter.client import models_fetcher
from docrouter.config import RunConfig, cache_dir, resolve_api_key, resolve_base_url
from docrouter.documents import SKIPPED_ERRORS, Document, skip_reason
from docrouter.errors import ConfigError
from docrouter.inspection import Inspection
from docrouter.payloads import PARSING_ENGINES
from docrouter.pricing import PriceBook, estimate, priced_model
from docrouter.reasoning import resolve as resolve_reasoning
from docrouter.routing import Route, check_forced_engine, choose_engine, usd

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
    engine: str | None
    engine_reason: str
    error_type: str | None
    error_message: str | None
    est_cost_usd: float  # expected, routed
    max_cost_usd: float  # upper bound, routed (what the budget would reserve)
    default_cost_usd: float  # under OpenRouter's default rule
    ocr_cost_usd: float  # under always-OCR
    prompt_tokens: int
    completion_tokens: int
    parse_fee_usd: float
    duplicate_of: str | None = None  # the path of the same bytes, priced there


@dataclass(frozen=True)
class Plan:
    """Rows and totals for one model."""

    model: str
    default_engine: str  # what OpenRouter picks for PDFs when none is given
    rows: tuple[PlanRow, ...]

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
        """Rows that are 'sent', 'copies' or 'unsent'."""
        tests = {
            "sent": lambda r: r.engine is not None and r.duplicate_of is None,
            "copies": lambda r: r.duplicate_of is not None,
            "unsent": lambda r: r.engine is None and r.duplicate_of is None,
        }
        return sum(1 for r in self.rows if tests[what](r))


@dataclass(frozen=True)
class _Pricing:
    model: ModelInfo
    prices: PriceBook
    forced: str | None
    prompt_chars: int
    max_tokens: int


def default_engine(model: ModelInfo) -> str:
    """OpenRouter's rule when no engine is given: the model's native file input, else mistral-ocr."""
    return "native" if model.takes_files else "mistral-ocr"


def build_plan(
    pairs: Iterable[tuple[Document, Inspection | None]],
    model: ModelInfo,
    prices: PriceBook,
    *,
    forced: str | None = None,
    prompt_chars: int,
    max_tokens: int,
    annotated_doc_ids: frozenset[str] = frozenset(),
) -> Plan:
    """Route and price every document (no request); the same bytes twice are priced once."""
    pricing = _Pricing(model, prices, None if forced == "auto" else forced, prompt_chars, max_tokens)
    rows: list[PlanRow] = []
    first: dict[str, PlanRow] = {}
    for doc, inspection in pairs:
        original = first.get(doc.doc_id) if doc.kind is not None else None
        if original is not None:
            rows.append(_copy(original, doc))
            continue
        row = plan_row(doc, inspection, pricing, doc.doc_id in annotated_doc_ids)
        if doc.kind is not None:
            first[doc.doc_id] = row
        rows.append(row)
    return Plan(model=model.id, default_engine=default_engine(model), rows=tuple(rows))


def plan_row(doc: Document, inspection: Inspection | None, pricing: _Pricing, annotated: bool) -> PlanRow:
    """One document's row: its route and what the three rules would cost."""
    if doc.kind is None or inspection is None:
        error, why = skip_reason(doc)
        outcome = "skipped" if error in SKIPPED_ERRORS else "failed"
        return _row(doc, None, Route(None, f"{outcome} ({error})", None, error, why))
    route = choose_engine(
        inspection,
        pricing.model,
        pricing.prices,
        forced=pricing.forced if inspection.kind == "pdf" else None,
        prompt_chars=pricing.prompt_chars,
        max_tokens=pricing.max_tokens,
        has_annotations=annotated,
    )
    if route.engine is None or route.estimate is None:
        return _row(doc, inspection, route)
    if inspection.kind == "image":
        same = route.estimate.expected_usd
        return _row(doc, inspection, route, default=same, ocr=same)
    default = _baseline(default_engine(pricing.model), inspection, pricing, annotated)
    return _row(doc, inspection, route, default=default, ocr=_baseline("mistral-ocr", inspection, pricing, annotated))


def _baseline(engine: str, inspection: Inspection, pricing: _Pricing, annotated: bool) -> float:
    return estimate(
        engine,
        inspection,
        pricing.model,
        pricing.prices,
        prompt_chars=pricing.prompt_chars,
        max_tokens=pricing.max_tokens,
        reuse_annotations=annotated and engine in PARSING_ENGINES,
    ).expected_usd


def _row(
    doc: Document, inspection: Inspection | None, route: Route, *, default: float = 0.0, ocr: float = 0.0
) -> PlanRow:
    cost = route.estimate
    return PlanRow(
        path=doc.rel_path,
        source_root=doc.source_root,
        doc_id=doc.doc_id,
        size_bytes=doc.size_bytes,
        kind=doc.kind,
        pages=inspection.pages if inspection is not None and inspection.ok else None,
        verdict=(inspection.verdict or None) if inspection is not None else None,
        engine=route.engine,
        engine_reason=route.reason,
        error_type=route.error_type,
        error_message=route.error_message,
        est_cost_usd=cost.expected_usd if cost else 0.0,
        max_cost_usd=cost.max_usd if cost else 0.0,
        default_cost_usd=default,
        ocr_cost_usd=ocr,
        prompt_tokens=cost.prompt_tokens if cost else 0,
        completion_tokens=cost.completion_tokens if cost else 0,
        parse_fee_usd=cost.parse_fee_usd if cost else 0.0,
    )


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
        ("model", pa.string()),
    ]
)


def render_plan(plan: Plan) -> str:
    """A fixed-width table, one line per document, then the totals beside the two naive rules."""
    width = min(PATH_WIDTH, max([4, *(len(r.path) for r in plan.rows)]))
    lines = [f"{'PATH':<{width}}  {'PAGES':>5}  {'ENGINE':<11}  {'EST $':>9}  REASON"]
    for r in plan.rows:
        pages = "-" if r.pages is None else str(r.pages)
        cost = usd(r.est_cost_usd) if r.engine else "-"
        reason = f"{r.engine_reason}: {r.error_message}" if r.error_message else r.engine_reason
        lines.append(f"{shorten(r.path, width):<{width}}  {pages:>5}  {r.engine or '-':<11}  {cost:>9}  {reason}")
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
        f"{plan.count('copies')} same-bytes copies, {plan.count('unsent')} not sent; model {plan.model}",
        f"{'docrouter routing:':<32}{usd(plan.routed_usd):>10}  (at most {usd(plan.routed_max_usd)})",
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


def plan_command(config: RunConfig, *, out: str | None = None) -> int:
    """`docrouter plan`: discover, inspect, route and price every document; print it; no paid call."""
    from docrouter.runs import discover, inspect, named_files, planned_urls  # the run's stages: plan and run agree

    model, ceiling = priced_model(plan_catalogue(config).get(config.model), config)  # as the run prices it
    forced = None if config.engine == "auto" else config.engine
    check_forced_engine(forced, model)
    with planned_urls(config) as (fetched, totals):
        plan = build_plan(
            inspect(discover(config) + fetched, named=named_files(config.sources)),
            model,
            PriceBook(ocr_fee_per_page=config.ocr_fee_per_page, ceiling=ceiling),
            forced=forced,
            prompt_chars=config.instruction_chars,
            max_tokens=resolve_reasoning(config.reasoning, model, config.max_tokens).max_tokens(config.max_tokens),
        )
    print(render_plan(plan))
    if fetched:
        print(
            f"URLs: {len(fetched)}; fetched {totals.fetched} ({totals.fetched_bytes:,} bytes), "
            f"{totals.not_modified} unchanged since the last fetch, {totals.failed} failed"
        )
    if out:
        print(f"plan written to {write_plan(plan, Path(out))}")
    return 0


def plan_catalogue(config: RunConfig) -> Catalogue:
    """The model list a run would use (GET /models needs no key; --offline: the snapshot)."""
    if config.offline:
        return load_catalogue(None, cache_path=cache_dir() / "models-offline.json")
    base_url = resolve_base_url(config.base_url)
    try:
        key: str | None = resolve_api_key(None)
    except ConfigError:
        key = None
    ttl_s = 0.0 if config.refresh_models else 3600.0
    return load_catalogue(models_fetcher(base_url, key), cache_path=cache_dir() / cache_name(base_url), ttl_s=ttl_s)
