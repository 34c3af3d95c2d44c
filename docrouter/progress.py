"""Progress of a run: counters, money against the budget, an ETA, and a throttled status line."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from docrouter.results import Result


@dataclass
class Progress:
    """Counts what the run has done so far; `line()` renders it for a terminal or a log."""

    total: int = 0
    budget_usd: float | None = None
    clock: Callable[[], float] = time.monotonic
    stream: TextIO | None = None
    every_s: float = 2.0
    statuses: Counter[str] = field(default_factory=Counter)
    engines: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    extractions: Counter[str] = field(default_factory=Counter)  # with --schema: valid / repaired / invalid
    spent_usd: float = 0.0
    already_done: int = 0
    known_failures: int = 0  # terminal failures of earlier runs, left alone
    copies: int = 0
    _started: float = field(default=0.0)
    _last_print: float = field(default=0.0)

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
        self.maybe_print()

    def eta_s(self) -> float | None:
        done = self.finished
        remaining = self.total - done - self.already_done - self.known_failures
        if done == 0 or remaining <= 0:
            return None
        return (self.clock() - self._started) / done * remaining

    def line(self) -> str:
        budget = f" of ${self.budget_usd:.4f}" if self.budget_usd is not None else ""
        eta = self.eta_s()
        parts = [
            f"{self.finished + self.already_done + self.known_failures}/{self.total} docs",
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
        parts.append(f"ETA {eta:.0f}s" if eta is not None else "ETA -")
        return " | ".join(parts)

    def maybe_print(self, force: bool = False) -> None:
        if self.stream is None:
            return
        now = self.clock()
        if force or now - self._last_print >= self.every_s:
            self._last_print = now
            print(f"docrouter: {self.line()}", file=self.stream, flush=True)


def stderr_progress(total: int, budget_usd: float | None) -> Progress:
    """A Progress that prints a status line to stderr every couple of seconds."""
    return Progress(total=total, budget_usd=budget_usd, stream=sys.stderr)
