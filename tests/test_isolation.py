"""Worker processes: one outcome per item in input order, a memory limit above the worker's own baseline."""

from __future__ import annotations

from isolation_ballast import allocate

from docrouter.isolation import Failure, run_isolated


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
