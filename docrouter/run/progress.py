"""Progress of a run: counters, money against the budget, throughput, an ETA from recent throughput, and
its display: a rich bar redrawn every second on a terminal, one plain line per 10 s otherwise."""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, TextColumn
from rich.progress import Progress as RichProgress

from docrouter.results import Result
from docrouter.vocabulary import Engine, ErrorType, Status


@dataclass
class Progress:
    """Counts what the run has done so far; `line()` renders it for a terminal or a log."""

    total: int = 0
    budget_usd: float | None = None
    clock: Callable[[], float] = time.monotonic
    statuses: Counter[Status] = field(default_factory=Counter)
    engines: Counter[Engine] = field(default_factory=Counter)
    errors: Counter[ErrorType] = field(default_factory=Counter)
    extractions: Counter[str] = field(default_factory=Counter)  # with --schema: valid / repaired / invalid
    spent_usd: float = 0.0
    expected_usd: float = 0.0  # what the run's estimates said the finished documents would cost
    forecast_usd: float | None = None  # a `plan --pilot` forecast of this run's bill (the pilot's spend excluded)
    already_done: int = 0
    known_failures: int = 0  # terminal failures of earlier runs, left alone
    window_s: float = 30.0  # the ETA uses the throughput of the last `window_s` seconds
    _started: float = field(default=0.0)
    _finished_at: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))

    def __post_init__(self) -> None:
        self._started = self.clock()

    @property
    def finished(self) -> int:
        return sum(self.statuses.values())

    def add(self, result: Result) -> None:
        self.statuses[result.status] += 1
        if result.engine and result.status == "ok":
            self.engines[result.engine] += 1
        if result.error_type:
            self.errors[result.error_type] += 1
        if result.extraction:
            self.extractions[result.extraction] += 1
        self.spent_usd += result.cost_usd
        self.expected_usd += result.est_cost_usd
        self._finished_at.append(self.clock())

    @property
    def done(self) -> int:
        """Documents accounted for: finished in this run, or settled by an earlier one."""
        return self.finished + self.already_done + self.known_failures

    def rate(self) -> float | None:
        """Documents per second over the last `window_s` seconds (or since the start, if shorter)."""
        now = self.clock()
        recent = sum(1 for t in self._finished_at if now - t <= self.window_s)
        span = min(self.window_s, now - self._started)
        return recent / span if recent and span > 0 else None

    def eta_s(self) -> float | None:
        """Seconds left at the recent throughput; 0 once every document is accounted for."""
        remaining = self.total - self.done
        if remaining <= 0:
            return 0.0 if self.total else None
        rate = self.rate()
        return remaining / rate if rate else None

    def line(self) -> str:
        budget = f" of ${self.budget_usd:.4f}" if self.budget_usd is not None else ""
        eta, rate = self.eta_s(), self.rate()
        parts = [
            f"{self.done}/{self.total} docs",
            f"ok {self.statuses['ok']}",
            f"failed {self.statuses['failed']}",
            f"skipped {self.statuses['skipped']}",
        ]
        if self.statuses["over_budget"]:
            parts.append(f"over budget {self.statuses['over_budget']}")
        if self.already_done:
            parts.append(f"already done {self.already_done}")
        if self.known_failures:
            parts.append(f"known failures {self.known_failures}")
        parts.append(f"spent ${self.spent_usd:.4f}{budget}")
        parts.append(f"expected ${self.expected_usd:.4f}")  # for the same documents: the estimate judged live
        if self.forecast_usd is not None:
            parts.append(f"forecast ${self.forecast_usd:.4f}")
        parts.append(f"{rate:.1f} docs/s" if rate is not None else "- docs/s")
        parts.append("done" if self.total and self.done >= self.total else f"ETA {eta:.0f}s" if eta else "ETA -")
        return " | ".join(parts)


class Display:
    """Shows a Progress: `tick()` once a second; a bar on a terminal, else one plain line per `every_s`."""

    def __init__(self, progress: Progress, stream: TextIO, *, terminal: bool | None = None, every_s: float = 10.0):
        self.progress, self.stream, self.every_s = progress, stream, every_s
        self._last = progress.clock()
        self._bar: RichProgress | None = None
        if stream.isatty() if terminal is None else terminal:
            console = Console(file=stream, force_terminal=True, width=160)
            columns = (TextColumn("docrouter"), BarColumn(), TextColumn("{task.fields[line]}"))
            self._bar = RichProgress(*columns, console=console, auto_refresh=False)
            self._task = self._bar.add_task("run", total=max(1, progress.total), line=progress.line())
            self._bar.start()

    def tick(self, *, force: bool = False) -> None:
        """Redraw the bar (terminal), or print a line when `every_s` has passed (or `force`)."""
        progress = self.progress
        if self._bar is not None:
            self._bar.update(self._task, total=max(1, progress.total), completed=progress.done, line=progress.line())
            self._bar.refresh()
            return
        now = progress.clock()
        if force or now - self._last >= self.every_s:
            self._last = now
            print(f"docrouter: {progress.line()}", file=self.stream, flush=True)

    def close(self) -> None:
        """The final figures, then the terminal back to normal."""
        self.tick(force=True)
        if self._bar is not None:
            self._bar.stop()
