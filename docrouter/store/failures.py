"""The commonest failures among results rows, each with an example to act on (`report`, a backfill's summary)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import pandas


@dataclass(frozen=True)
class Failure:
    """Rows that ended with one error_type and status, and one of their messages."""

    error_type: str
    status: str
    count: int
    example: str  # "path: message" of the group's first row


def failure_groups(
    rows: pandas.DataFrame, by: list[str], statuses: Collection[str] | None = None
) -> list[tuple[tuple[str, ...], pandas.DataFrame]]:
    """Rows that failed (not ok, with an error_type; only `statuses` when given) grouped by the columns `by`, the
    commonest group first, ties by name: the one grouping `report` and the summary artifacts share."""
    failed = rows[(rows["status"] != "ok") & rows["error_type"].notna()]
    if statuses is not None:
        failed = failed[failed["status"].isin(list(statuses))]
    groups = [(tuple(str(k) for k in key), group) for key, group in failed.groupby(by, sort=True)]
    return sorted(groups, key=lambda item: -len(item[1]))


def commonest_failures(rows: pandas.DataFrame, limit: int | None = None) -> tuple[Failure, ...]:
    """Rows that are not ok, by error_type and status: the commonest first (ties by name), at most `limit`."""
    failures = []
    for (error_type, status), group in failure_groups(rows, ["error_type", "status"])[:limit]:
        first = group.iloc[0]
        message = first["error_message"] if pandas.notna(first["error_message"]) else "(no message)"
        failures.append(Failure(error_type, status, len(group), f"{first['path']}: {message}"))
    return tuple(failures)
