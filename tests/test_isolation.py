"""Worker processes: one outcome per item in input order, a memory limit above the worker's own baseline."""

from __future__ import annotations

import os
import time

import pytest

from docrouter.inspect.isolation import Failure, WorkerPool, run_isolated
from isolation_ballast import allocate

pytestmark = pytest.mark.slow  # starts servers, subprocesses or Prefect flows


def fail_on_odd(n: int) -> int:
    if n % 2:
        raise ValueError(f"odd {n}")
    return n


def test_a_file_needing_more_than_the_limit_fails_as_memory_and_the_next_one_still_runs() -> None:
    outcomes = dict(run_isolated(allocate, [400, 50], workers=1, memory_mb=200))
    assert isinstance(outcomes[400], Failure) and outcomes[400].kind == "memory"
    assert outcomes[50] == 50 * 2**20  # the limit is headroom above what the worker had already mapped


def test_outcomes_come_back_in_input_order_and_errors_are_data() -> None:
    outcomes = list(run_isolated(fail_on_odd, range(6), workers=2))
    assert [item for item, _ in outcomes] == list(range(6))
    assert [o if isinstance(o, int) else o.kind for _, o in outcomes] == [0, "crashed", 2, "crashed", 4, "crashed"]


def test_a_pool_keeps_its_workers_across_calls_and_an_abandoned_call_does_not_leak_into_the_next() -> None:
    with WorkerPool(worker_pid_after, workers=2) as pool:
        first = {pid for _, pid in pool.map([0.0] * 6)}
        partial = pool.map([0.0, 0.3, 0.3, 0.3])
        next(partial)
        partial.close()  # the caller stopped reading while workers were busy
        second = list(pool.map([0.0] * 4))
    assert 1 <= len(first) <= 2 and all(isinstance(pid, int) for pid in first)
    assert [item for item, _ in second] == [0.0] * 4 and all(isinstance(pid, int) for _, pid in second)
    assert first & {pid for _, pid in second}  # the idle worker was kept, not restarted (only busy ones were)


def worker_pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()
