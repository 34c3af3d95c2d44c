"""The summary a run (or a backfill, over all its shards) publishes at its end, as Markdown.

Money spent vs budget vs estimate (expected and at most), the estimated savings against OpenRouter's default
rule and always-OCR (priced per document as `plan` prices them), documents by status and engine, the top
failures with their paths, and where the results are. Pure functions over plain data; flows/ publishes them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pandas

from docrouter.call.rows import Job, Unsent
from docrouter.results import VALIDITY
from docrouter.route.routing import Router, usd
from docrouter.run.planning import baselines
from docrouter.store.failures import failure_groups
from docrouter.store.store import read_results

ROW_COLUMNS = ["run_id", "path", "status", "engine", "error_type", "error_message", "cost_usd"]
FAILED_STATUSES = ("failed", "over_budget")  # `skipped` files are not documents at all: counted, not listed
TOP_TYPES = 5  # error types listed, commonest first
EXAMPLES = 3  # paths listed per error type
MESSAGE_WIDTH = 160


@dataclass(frozen=True)
class Costs:
    """What the documents a run routed were expected to cost: as routed (expected, at most) and under the two
    naive rules. For the same documents and flags these are `plan`'s totals."""

    expected_usd: float = 0.0
    max_usd: float = 0.0
    default_usd: float = 0.0  # OpenRouter's default rule
    always_ocr_usd: float = 0.0

    def __add__(self, other: Costs) -> Costs:
        return Costs(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Costs:
        """From a run summary's `estimate` (absent keys count 0)."""
        return cls(**{f.name: float(data.get(f.name) or 0.0) for f in fields(cls)})


def job_costs(jobs: Iterable[Job | Unsent], router: Router) -> Costs:
    """The estimates of routed jobs (a document that is not sent counts $0 under every rule, as in `plan`)."""
    total = Costs()
    for job in jobs:
        if isinstance(job, Job):
            default, ocr = baselines(job.document, job.inspection, job.route, router)
            total += Costs(job.route.estimate.expected_usd, job.route.estimate.max_usd, default, ocr)
    return total


def read_run_rows(out: str, run_ids: Sequence[str]) -> pandas.DataFrame:
    """The result rows the given runs wrote under `out` (only the columns a summary needs)."""
    if not run_ids or not (Path(out) / "results").is_dir():
        return pandas.DataFrame({column: pandas.Series(dtype=object) for column in ROW_COLUMNS})
    rows = read_results(Path(out), columns=ROW_COLUMNS)
    return rows.loc[rows["run_id"].isin(list(run_ids)), ROW_COLUMNS].reset_index(drop=True)


def read_run_summaries(out: str, run_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Each run's DIR/_runs/<run_id>.json (a run that stopped before its end wrote none)."""
    paths = [Path(out) / "_runs" / f"{run_id}.json" for run_id in run_ids]
    return [json.loads(path.read_text()) for path in paths if path.is_file()]


def top_failures(rows: pandas.DataFrame, limit: int = TOP_TYPES, examples: int = EXAMPLES) -> list[dict[str, Any]]:
    """The commonest error types among failed rows, each with its count and the first paths and messages."""
    groups = failure_groups(rows, ["error_type"], FAILED_STATUSES)
    return [
        {
            "error_type": error_type,
            "count": len(group),
            "examples": [
                {"path": str(path), "message": "" if pandas.isna(message) else str(message)}
                for path, message in group[["path", "error_message"]].head(examples).itertuples(index=False)
            ],
        }
        for (error_type,), group in groups[:limit]
    ]


@dataclass(frozen=True)
class Digest:
    """What a summary artifact says, as plain data: a run's or a backfill's."""

    title: str
    headline: str
    spent_usd: float
    budget_usd: float | None
    costs: Costs | None  # None: no estimate recorded (a shard that never finished)
    default_engine: str | None  # OpenRouter's default engine for PDFs with this model
    by_status: Mapping[str, int]
    by_engine: Mapping[str, int]
    failures: Sequence[Mapping[str, Any]]  # top_failures()
    places: Sequence[tuple[str, str]]  # (what, where): the results and what else the run wrote
    notes: Sequence[str] = ()  # paragraphs under the headline (why it stopped, warnings)
    sections: Sequence[str] = ()  # further Markdown sections before the results' places


def summary_markdown(digest: Digest) -> str:
    """The whole summary as Markdown: headline, money, savings, documents, top failures, where the results are."""
    parts = [f"# {digest.title}", digest.headline, *digest.notes, _money(digest), _savings(digest)]
    parts += [_documents(digest), _failures(digest.failures), *digest.sections, _places(digest.places)]
    return "\n\n".join(part for part in parts if part) + "\n"


def _money(digest: Digest) -> str:
    rows = [("spent (billed)", usd(digest.spent_usd))]
    if digest.budget_usd is None:
        rows.append(("budget", "no cap"))
    else:
        used = f" ({digest.spent_usd / digest.budget_usd:.0%} used)" if digest.budget_usd > 0 else ""
        rows.append(("budget", usd(digest.budget_usd) + used))
    costs = digest.costs
    if costs is not None:
        ratio = f" (spent is {digest.spent_usd / costs.expected_usd:.0%} of it)" if costs.expected_usd > 0 else ""
        rows.append(("estimate, expected", usd(costs.expected_usd) + ratio))
        rows.append(("estimate, at most", usd(costs.max_usd)))
    return "## Money\n\n" + _table(("", "USD"), rows, right=(1,))


def _savings(digest: Digest) -> str:
    costs = digest.costs
    if costs is None:
        return ""
    default = f"OpenRouter default ({digest.default_engine})" if digest.default_engine else "OpenRouter default"
    rows = [("docrouter routing", usd(costs.expected_usd), "")]
    for rule, baseline in ((default, costs.default_usd), ("always mistral-ocr", costs.always_ocr_usd)):
        rows.append((rule, usd(baseline), _saving(baseline - costs.expected_usd, baseline)))
    intro = (
        "Estimates for the documents sent, each priced the same way under each rule, as `docrouter plan` prices "
        "them (copies and unsent files count $0)."
    )
    return f"## Savings\n\n{intro}\n\n" + _table(("rule", "expected", "docrouter saves"), rows, right=(1, 2))


def _saving(saved: float, baseline: float) -> str:
    if baseline <= 0:
        return "-"
    if saved >= 0:
        return f"{usd(saved)} ({saved / baseline:.0%})"
    return f"costs {usd(-saved)} more ({-saved / baseline:.0%})"


def _documents(digest: Digest) -> str:
    statuses = _table(("status", "documents"), sorted(digest.by_status.items()), right=(1,))
    engines = _table(("engine (ok rows)", "documents"), sorted(digest.by_engine.items()), right=(1,))
    return f"## Documents\n\n{statuses}\n\n{engines}"


def _failures(failures: Sequence[Mapping[str, Any]]) -> str:
    if not failures:
        return ""
    rows = [
        (group["error_type"], group["count"], f"`{cell(example['path'])}`", cell(example["message"]))
        for group in failures
        for example in group["examples"]
    ]
    return "## Top failures\n\n" + _table(("error type", "count", "path", "message"), rows, right=(1,))


def _places(places: Sequence[tuple[str, str]]) -> str:
    return "## Results\n\n" + "\n".join(f"- {what}: `{where}`" for what, where in places)


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], right: Sequence[int] = ()) -> str:
    rule = ["---:" if i in right else "---" for i in range(len(headers))]
    lines = [headers, rule, *([str(value) for value in row] for row in rows)]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def cell(text: object) -> str:
    """Text made safe for one Markdown table cell: one line, pipes and backticks escaped, clipped."""
    flat = " ".join(str(text).split()).replace("|", "\\|").replace("`", "'")
    return flat if len(flat) <= MESSAGE_WIDTH else flat[: MESSAGE_WIDTH - 1] + "…"


def run_digest(summary: Mapping[str, Any]) -> Digest:
    """A run's digest, from its summary (flows/reporting.py run_summary, plus `top_failures`)."""
    out, run_id = str(summary["out"]), summary["run_id"]
    headline = (
        f"{summary['documents']} files: {summary['processed']} processed, {summary['already_done']} already done, "
        f"{summary['known_failures']} known failures unchanged; model `{summary['model']}`, "
        f"{summary.get('requests_sent', 0)} requests."
    )
    notes = [f"**Stopped:** {summary['stopped']}"] if summary.get("stopped") else []
    notes += [f"**Warning:** {note}" for note in summary.get("price_notes", ())]
    if summary.get("extractions"):
        validity = summary["extractions"]
        notes.append("**Extractions:** " + ", ".join(f"{validity.get(k, 0)} {k}" for k in VALIDITY))
    estimate = summary.get("estimate")
    return Digest(
        title=f"docrouter run {run_id}",
        headline=headline,
        spent_usd=float(summary["spent_usd"]),
        budget_usd=summary.get("budget_usd"),
        costs=Costs.from_dict(estimate) if estimate is not None else None,
        default_engine=summary.get("default_engine"),
        by_status=summary["by_status"],
        by_engine=summary["by_engine"],
        failures=summary.get("top_failures", ()),
        places=run_places(
            out, [run_id], pdf_notes=bool(summary.get("pdf_notes")), extractions=bool(summary.get("extractions"))
        ),
        notes=notes,
    )


def run_places(
    out: str, run_ids: Sequence[str], *, pdf_notes: bool = False, extractions: bool = False
) -> list[tuple[str, str]]:
    """Where a run's (or a backfill's) results are: the datasets under DIR and each run's own files."""
    root = Path(out)
    ids = ", ".join(f"'{run_id}'" for run_id in run_ids)
    places = [
        ("results (Parquet dataset; `docrouter report DIR` reads it)", f"{root / 'results'}/"),
        (f"rows of this {'run' if len(run_ids) == 1 else 'backfill'}", f"run_id in ({ids})"),
        ("annotations (stored parses)", f"{root / 'annotations'}/"),
    ]
    if extractions:
        places.append(("extractions (--schema)", f"{root / 'extractions'}/"))
    places += [("run summary (JSON)", str(root / "_runs" / f"{run_id}.json")) for run_id in run_ids]
    if pdf_notes:
        places += [("what the PDF libraries said", str(root / "logs" / f"{run_id}.log")) for run_id in run_ids]
    return places


def backfill_digest(summary: Mapping[str, Any]) -> Digest:
    """A backfill's digest over all its shards, from flows/backfill_report.py backfill_summary."""
    shards = summary["shards"]
    completed = sum(1 for s in shards if s["state"] == "Completed")
    model = f"; model `{summary['model']}`" if summary.get("model") else ""
    headline = (
        f"{summary['documents']} documents over {len(shards)} shards; "
        f"{summary['known_failures']} known failures unchanged{model}."
    )
    estimate = summary.get("estimate")
    return Digest(
        title=f"docrouter backfill: {completed} of {len(shards)} shards completed",
        headline=headline,
        spent_usd=float(summary["spent_usd"]),
        budget_usd=summary["budget_usd"],
        costs=Costs.from_dict(estimate) if estimate is not None else None,
        default_engine=summary.get("default_engine"),
        by_status=summary["by_status"],
        by_engine=summary["by_engine"],
        failures=summary["top_failures"],
        places=run_places(str(summary.get("out", "")), summary.get("run_ids", [])),
        notes=[f"**Unfinished:** {summary['unfinished']}"] if summary.get("unfinished") else [],
        sections=[_shards(shards)],
    )


def _shards(shards: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        (
            s["shard"],
            s["flow_run"],
            s["state"],
            s["documents"],
            s["ok"],
            s["failed"],
            usd(s["spent_usd"]),
            "no cap" if s["budget_usd"] is None else usd(s["budget_usd"]),
        )
        for s in shards
    ]
    headers = ("shard", "flow run", "state", "documents", "ok", "failed", "spent", "budget share")
    return "## Shards\n\n" + _table(headers, rows, right=(0, 3, 4, 5, 6, 7))
