"""What a run or a plan needs to know of DIR, read once at its start and then only looked up (never written).

The stages before the store never read it: selection gets the done-set, the known failures and the answered
paths (for copies) from the ledger, routing the documents with a stored parse, the call stage the parses
themselves. Loading it reads the results dataset once and the annotations dataset at most twice, whatever
the number of documents; `read` is that reader (tests count its calls).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from docrouter.errors import is_terminal
from docrouter.results import Annotation, Result
from docrouter.store.compaction import ANNOTATIONS, RESULTS, Kind, read_dataset
from docrouter.store.datasets import ANNOTATIONS_DIR, RESULTS_DIR, annotation_from_row, parse_timestamp, result_from_row
from docrouter.store.store import Key, answered_for_good
from docrouter.vocabulary import Engine

_COLUMNS = ["path", "doc_id", "model", "prompt_sha256", "status", "truncated", "attempts", "completion_tokens"]
_ROW = [*_COLUMNS, "engine", "error_type", "finished_at"]


class Reader(Protocol):
    """Reads one dataset of DIR (only `columns`, only rows matching `filter`): store.compaction.read_dataset."""

    def __call__(
        self, out_dir: Path, kind: Kind, columns: list[str] | None = None, filter: pc.Expression | None = None
    ) -> pa.Table: ...


@dataclass(frozen=True)
class Ledger:
    """DIR as a run found it, for one model and prompt: the decisions of `plan` and `run` rest on this alone."""

    done: frozenset[Key] = frozenset()  # answered (ok, not cut) for (doc_id, model, prompt), any model and prompt
    answered: frozenset[tuple[str, str]] = frozenset()  # (doc_id, path) answered for this model and prompt
    failed: frozenset[Key] = frozenset()  # the latest row is a terminal failure
    annotated: frozenset[str] = frozenset()  # doc_ids with a stored parse
    answer_tokens: tuple[int, ...] = ()  # completion tokens of paid ok answers for this model and prompt
    answers: Mapping[str, tuple[str, Engine | None]] = field(default_factory=dict)  # doc_id -> (path, engine)
    parses: Mapping[str, tuple[Annotation, ...]] = field(default_factory=dict)  # of the documents a run may send

    def stored_parse(self, doc_id: str) -> tuple[Annotation, ...]:
        """The document's stored parse (the latest annotation per file hash, oldest first); () when none."""
        return self.parses.get(doc_id, ())


Sends = Callable[[Ledger, str], bool]  # (the ledger so far, doc_id) -> may this run send the document?


def read_ledger(
    out_dir: str | Path | None,
    model: str,
    prompt_sha256: str,
    *,
    sends: Sends | None = None,
    read: Reader = read_dataset,
) -> Ledger:
    """DIR's ledger for `model` and `prompt_sha256` (empty when DIR holds nothing yet), with the stored parses of
    the documents `sends` says may be sent (none without it: a plan needs only which documents have one)."""
    if not out_dir or not (Path(out_dir) / RESULTS_DIR).is_dir():
        return Ledger()
    out = Path(out_dir)
    ledger = _from_results(read(out, RESULTS, _ROW), model, prompt_sha256)
    if not (out / ANNOTATIONS_DIR).is_dir():
        return ledger
    annotated: list[str] = read(out, ANNOTATIONS, ["doc_id"]).column("doc_id").to_pylist()
    ledger = replace(ledger, annotated=frozenset(annotated))
    wanted = [doc_id for doc_id in ledger.annotated if sends is not None and sends(ledger, doc_id)]
    return replace(ledger, parses=stored_parses(out, wanted, read=read)) if wanted else ledger


def stored_parses(
    out_dir: Path, doc_ids: Collection[str], *, read: Reader = read_dataset
) -> Mapping[str, tuple[Annotation, ...]]:
    """doc_id -> its stored parse (the latest annotation per file hash across runs, oldest first), for `doc_ids`:
    one read of the annotations dataset, however many documents (`run` and `ask` both read parses here)."""
    if not doc_ids or not (Path(out_dir) / ANNOTATIONS_DIR).is_dir():
        return MappingProxyType({})
    found = read(Path(out_dir), ANNOTATIONS, None, pc.field("doc_id").isin(sorted(doc_ids)))
    return latest_parses(annotation_from_row(row) for row in found.to_pylist())


def _from_results(table: pa.Table, model: str, prompt_sha256: str) -> Ledger:
    """The done-set, answered paths, known failures and answer lengths, in one pass over the results rows."""
    done: set[Key] = set()
    answered: set[tuple[str, str]] = set()
    tokens: list[int] = []
    answers: dict[str, tuple[str, Engine | None]] = {}
    latest_terminal: dict[Key, bool] = {}
    for row in _rows(table.sort_by("finished_at")):
        path, doc_id, row_model, prompt, status, truncated, attempts, completion, engine, error_type, _ = row
        key: Key = (doc_id, sys.intern(row_model), sys.intern(prompt))  # a few models and prompts, 100k rows
        latest_terminal[key] = status != "ok" and is_terminal(error_type)
        mine = (row_model, prompt) == (model, prompt_sha256)
        if status == "ok" and mine and attempts:  # copies (attempts 0) repeat an answer: nothing new on its length
            tokens.append(int(completion or 0))
        if not answered_for_good(status, truncated):
            continue  # a truncated answer is not done: a rerun answers it again, and it is no copy's source
        done.add(key)
        if mine:
            answered.add((doc_id, path))  # not the root: an archive moved or mounted elsewhere is the same
            answers.setdefault(doc_id, (path, engine))
    failed = frozenset(key for key, terminal in latest_terminal.items() if terminal)
    return Ledger(frozenset(done), frozenset(answered), failed, frozenset(), tuple(tokens), MappingProxyType(answers))


def latest_parses(annotations: Iterable[Annotation]) -> Mapping[str, tuple[Annotation, ...]]:
    """doc_id -> its stored parse: the latest annotation per file hash across runs, oldest first."""
    latest: dict[str, dict[str, Annotation]] = {}
    for annotation in sorted(annotations, key=lambda a: parse_timestamp(a.created_at)):
        latest.setdefault(annotation.doc_id, {})[annotation.file_hash] = annotation
    return MappingProxyType(
        {
            doc_id: tuple(sorted(found.values(), key=lambda a: parse_timestamp(a.created_at)))
            for doc_id, found in latest.items()
        }
    )


def answers_of(
    out_dir: Path, doc_ids: Collection[str], model: str, prompt_sha256: str, *, read: Reader = read_dataset
) -> dict[str, Result]:
    """The latest ok row of each document for this model and prompt (one read for all: copies of earlier runs'
    answers get their rows from here)."""
    if not doc_ids or not (Path(out_dir) / RESULTS_DIR).is_dir():
        return {}
    wanted = (
        pc.field("doc_id").isin(sorted(doc_ids))
        & (pc.field("model") == model)
        & (pc.field("prompt_sha256") == prompt_sha256)
        & (pc.field("status") == "ok")
    )
    table = read(Path(out_dir), RESULTS, None, wanted).sort_by("finished_at")
    return {
        row["doc_id"]: result_from_row(row) for row in table.to_pylist() if answered_for_good("ok", row["truncated"])
    }


def _rows(table: pa.Table) -> Iterable[tuple[Any, ...]]:
    for batch in table.to_batches():
        yield from zip(*(column.to_pylist() for column in batch.columns), strict=True)
