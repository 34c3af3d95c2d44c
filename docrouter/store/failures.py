"""The commonest failures among results rows, each with an example to act on (`report`, a backfill's summary)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas


@dataclass(frozen=True)
class Failure:
    """Rows that ended with one error_type and status, and one of their messages."""

    error_type: str
    status: str
    count: int
    example: str  # "path: message" of the group's first row


def commonest_failures(rows: pandas.DataFrame, limit: int | None = None) -> tuple[Failure, ...]:
    """Rows that are not ok, by error_type and status: the commonest first (ties by name), at most `limit`."""
    bad = rows[(rows["status"] != "ok") & rows["error_type"].notna()]
    failures = []
    for (error_type, status), group in bad.groupby(["error_type", "status"], sort=True):
        first = group.iloc[0]
        message = first["error_message"] if pandas.notna(first["error_message"]) else "(no message)"
        failures.append(Failure(str(error_type), str(status), len(group), f"{first['path']}: {message}"))
    return tuple(sorted(failures, key=lambda f: -f.count)[:limit])
