"""`docrouter report DIR`: what a results dataset holds, by status, engine and model; what it cost.

Counts use the latest row per (doc_id, path, model, prompt_sha256), so a document that failed and was
answered by a later run counts once, as ok; money and tokens count every row, because every row was paid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas

from docrouter import vocabulary
from docrouter.errors import ConfigError
from docrouter.results import VALIDITY
from docrouter.store.failures import Failure, commonest_failures
from docrouter.store.store import read_results

IDENTITY = ["doc_id", "path", "model", "prompt_sha256"]
STATUSES = vocabulary.STATUSES  # the report lists them in this order
COLUMNS = [  # everything but the answers themselves, which can be most of the bytes
    *IDENTITY,
    *("run_id", "engine", "status", "error_type", "error_message", "attempts", "est_cost_usd", "cost_usd"),
    *("prompt_tokens", "completion_tokens", "started_at", "finished_at", "extraction"),
]


@dataclass(frozen=True)
class Tally:
    """Latest rows sharing one engine, model or status."""

    name: str
    documents: int
    by_status: dict[str, int]
    cost_usd: float
    est_cost_usd: float
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class FailedFile:
    """One document whose latest row is failed or over budget."""

    path: str
    status: str
    error_type: str
    error_message: str


@dataclass(frozen=True)
class RunLine:
    """One run found in the dataset."""

    run_id: str
    rows: int
    cost_usd: float
    started_at: str
    finished_at: str


@dataclass(frozen=True)
class Report:
    """Everything `render_report` prints."""

    out_dir: str
    rows: int
    documents: int
    superseded: int
    by_status: tuple[Tally, ...]
    by_engine: tuple[Tally, ...]
    by_model: tuple[Tally, ...]
    spent_usd: float  # every row, superseded ones included
    superseded_spent_usd: float
    sent_est_usd: float  # latest rows that were sent: the estimate...
    sent_cost_usd: float  # ...and what they actually cost
    prompt_tokens: int
    completion_tokens: int
    failures: tuple[Failure, ...]
    runs: tuple[RunLine, ...]
    extractions: dict[str, int]  # latest rows checked against a --schema: valid / repaired / invalid
    failed_files: tuple[FailedFile, ...] = ()
    estimate_accuracy: dict[str, float] = field(default_factory=dict)  # engine -> billed / expected, sent rows


def build_report(out_dir: Path) -> Report:
    """The report of DIR; ConfigError when DIR is missing or holds no results."""
    out_dir = Path(out_dir)
    if not out_dir.exists():
        raise ConfigError(f"{out_dir} does not exist: nothing to report")
    if not out_dir.is_dir():
        raise ConfigError(f"{out_dir} is not a directory: give the --out DIR of a run")
    rows = read_results(out_dir, columns=COLUMNS)
    if rows.empty:
        raise ConfigError(f"no results in {out_dir}: nothing to report yet")
    ordered = rows.sort_values(["finished_at", "run_id"], kind="stable")
    latest = ordered.drop_duplicates(IDENTITY, keep="last")
    older = ordered.drop(latest.index)
    sent = latest[latest["attempts"] > 0]
    return Report(
        out_dir=str(out_dir),
        rows=len(rows),
        documents=len(latest),
        superseded=len(older),
        by_status=_tallies(latest, "status"),
        by_engine=_tallies(latest, "engine"),
        by_model=_tallies(latest, "model"),
        spent_usd=float(rows["cost_usd"].sum()),
        superseded_spent_usd=float(older["cost_usd"].sum()),
        sent_est_usd=float(sent["est_cost_usd"].sum()),
        sent_cost_usd=float(sent["cost_usd"].sum()),
        prompt_tokens=int(rows["prompt_tokens"].sum()),
        completion_tokens=int(rows["completion_tokens"].sum()),
        failures=commonest_failures(latest),
        runs=_runs(rows),
        extractions={k: int(n) for k, n in latest["extraction"].value_counts().items()},
        failed_files=_failed_files(latest),
        estimate_accuracy=_accuracy(sent),
    )


def _failed_files(latest: pandas.DataFrame) -> tuple[FailedFile, ...]:
    """Every document whose latest row failed or went over budget, by path."""
    bad = latest[latest["status"].isin(["failed", "over_budget"])].sort_values("path", kind="stable")
    return tuple(
        FailedFile(str(r.path), str(r.status), _text(r.error_type, "-"), _text(r.error_message, "(no message)"))
        for r in bad.itertuples()
    )


def _text(value: object, missing: str) -> str:
    return str(value) if pandas.notna(value) else missing


def _accuracy(sent: pandas.DataFrame) -> dict[str, float]:
    """Billed / expected per engine over the latest rows that were sent (1.0: the estimate was right)."""
    routed = sent[sent["engine"].notna()]
    sums = routed.groupby("engine")[["cost_usd", "est_cost_usd"]].sum()
    return {str(e): float(r.cost_usd / r.est_cost_usd) for e, r in sums.iterrows() if r.est_cost_usd > 0}


def _tallies(latest: pandas.DataFrame, column: str) -> tuple[Tally, ...]:
    """One Tally per value of `column` (a missing engine reads "-"), most documents first."""
    groups = latest.assign(_key=latest[column].fillna("-")).groupby("_key", sort=True)
    tallies = [
        Tally(
            name=str(name),
            documents=len(group),
            by_status={s: int(n) for s, n in group["status"].value_counts().items()},
            cost_usd=float(group["cost_usd"].sum()),
            est_cost_usd=float(group["est_cost_usd"].sum()),
            prompt_tokens=int(group["prompt_tokens"].sum()),
            completion_tokens=int(group["completion_tokens"].sum()),
        )
        for name, group in groups
    ]
    return tuple(sorted(tallies, key=lambda t: -t.documents))


def _runs(rows: pandas.DataFrame) -> tuple[RunLine, ...]:
    """Every run in the dataset, oldest first."""
    lines = [
        RunLine(
            run_id=str(run_id),
            rows=len(group),
            cost_usd=float(group["cost_usd"].sum()),
            started_at=_minute(group["started_at"].min()),
            finished_at=_minute(group["finished_at"].max()),
        )
        for run_id, group in rows.groupby("run_id", sort=True)
    ]
    return tuple(sorted(lines, key=lambda r: r.started_at))


def _minute(stamp: pandas.Timestamp) -> str:
    minute: str = stamp.strftime("%Y-%m-%d %H:%M")
    return minute


def render_report(report: Report, *, failed: bool = False) -> str:
    """The report as fixed-width text for a terminal (with `failed`, every failed file too)."""
    present = [s for s in STATUSES if any(t.name == s for t in report.by_status)]
    sections = [
        _headline(report),
        _tally_table("status", report.by_status, ()),
        _tally_table("engine", report.by_engine, present),
        _tally_table("model", report.by_model, present),
        _money(report),
    ]
    if report.extractions:
        sections.append(_validity(report.extractions))
    if report.failures:
        sections.append(_failure_table(report.failures))
    if failed:
        sections.append(_failed_table(report.failed_files))
    sections.append(_run_table(report.runs))
    return "\n\n".join(sections)


def _failed_table(files: Sequence[FailedFile]) -> str:
    if not files:
        return "no failed files"
    body = [[f.path, f.status, f.error_type, _clip(f.error_message, 100)] for f in files]
    return _table(["failed file", "status", "error_type", "message"], body, left=(0, 1, 2, 3))


def report_json(report: Report, *, failed: bool = False) -> dict[str, Any]:
    """The report as one JSON object (`docrouter report --json`)."""
    data: dict[str, Any] = {
        "out": report.out_dir,
        "documents": report.documents,
        "rows": report.rows,
        "cost_usd": report.spent_usd,
        "by_status": {t.name: t.documents for t in report.by_status},
        "by_engine": {t.name: _tally_json(t) for t in report.by_engine},
        "by_error_type": {f.error_type: f.count for f in report.failures},
        "estimate_accuracy": report.estimate_accuracy,
    }
    if failed:
        data["failed"] = [dataclasses.asdict(f) for f in report.failed_files]
    return data


def _tally_json(tally: Tally) -> dict[str, Any]:
    keys = ("documents", "by_status", "cost_usd", "est_cost_usd", "prompt_tokens", "completion_tokens")
    return {k: getattr(tally, k) for k in keys}


def _headline(report: Report) -> str:
    lines = [
        f"docrouter report: {report.out_dir}",
        f"{report.documents} documents (latest row per doc_id, path, model, prompt) in {report.rows} rows",
    ]
    if report.superseded:
        lines.append(f"{report.superseded} older rows superseded by a later row of the same document")
    return "\n".join(lines)


def _tally_table(title: str, tallies: Sequence[Tally], statuses: Sequence[str]) -> str:
    """One line per tally, with a count column for each status in `statuses`."""
    headers = [title, "docs", *statuses, "spent $", "expected $", "tokens in", "tokens out"]
    body = [
        [
            t.name,
            _count(t.documents),
            *(_count(t.by_status.get(s, 0)) for s in statuses),
            f"{t.cost_usd:.4f}",
            f"{t.est_cost_usd:.4f}",
            _count(t.prompt_tokens),
            _count(t.completion_tokens),
        ]
        for t in tallies
    ]
    return _table(headers, body)


def _money(report: Report) -> str:
    lines = [f"money spent: ${report.spent_usd:.4f} in all rows"]
    if report.superseded_spent_usd:
        lines[0] += f" (${report.superseded_spent_usd:.4f} of it on superseded rows)"
    if report.sent_est_usd > 0:
        share = f" ({report.sent_cost_usd / report.sent_est_usd:.0%} of the estimate)"
        lines.append(f"expected ${report.sent_est_usd:.4f}, billed ${report.sent_cost_usd:.4f}{share}")
        ratios = ", ".join(f"{e} {r:.2f}" for e, r in sorted(report.estimate_accuracy.items()))
        lines.append(f"billed / expected by engine: {ratios}")
    lines.append(f"tokens in all rows: {_count(report.prompt_tokens)} in, {_count(report.completion_tokens)} out")
    return "\n".join(lines)


def _validity(extractions: dict[str, int]) -> str:
    """Extraction validity against --schema, with each share of the checked answers."""
    checked = sum(extractions.get(k, 0) for k in VALIDITY)
    body = [[k, _count(extractions.get(k, 0)), f"{extractions.get(k, 0) / checked:.0%}"] for k in VALIDITY]
    return _table(["extraction", "docs", "share"], body)


def _failure_table(failures: Sequence[Failure]) -> str:
    body = [[f.error_type, f.status, _count(f.count), _clip(f.example, 70)] for f in failures]
    return _table(["error_type", "status", "docs", "example"], body, left=(0, 1, 3))


def _run_table(runs: Sequence[RunLine]) -> str:
    shown = runs[-10:]
    body = [[r.run_id, _count(r.rows), f"{r.cost_usd:.4f}", r.started_at, r.finished_at] for r in shown]
    table = _table(["run", "rows", "spent $", "started (UTC)", "finished (UTC)"], body, left=(0, 3, 4))
    hidden = f"\n... and {len(runs) - len(shown)} earlier runs" if len(runs) > len(shown) else ""
    return f"{len(runs)} runs found\n{table}{hidden}"


def _table(headers: Sequence[str], body: Sequence[Sequence[str]], left: Sequence[int] = (0,)) -> str:
    """Columns padded to their widest cell; text columns left-aligned, numbers right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *body, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = (c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in body)])


def _count(value: int) -> str:
    return f"{value:,}"


def _clip(text: str, width: int) -> str:
    """One line of at most `width` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."
