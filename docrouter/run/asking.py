"""`ask`: a follow-up question about one answered document, through the run's session functions (endpoint,
client, dispatcher) and DIR's ledger (its stored parse, so OCR is not paid again)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docrouter.call.client import OpenRouterClient
from docrouter.call.dispatch import Attempted
from docrouter.call.payloads import RequestOptions, image_request, pdf_request, text_request
from docrouter.call.rows import as_message_annotation
from docrouter.discover.names import escape_name, stored_file
from docrouter.errors import ConfigError
from docrouter.inspect.inspection import extract_text
from docrouter.run.ledger import stored_parses
from docrouter.run.session import Endpoint, dispatcher_for, endpoint, http_client
from docrouter.store.store import read_results
from docrouter.vocabulary import PARSING_ENGINES


@dataclass(frozen=True)
class Question:
    """What `docrouter ask` asks: of which document in which DIR, with which model (None: the one that answered)."""

    out: Path
    doc: str  # a path as stored or as on disk, a doc_id, or a unique doc_id prefix of 6+ characters
    question: str
    model: str | None = None
    max_tokens: int = 1024
    offline: bool = False
    base_url: str | None = None


@dataclass(frozen=True)
class Asked:
    """The answered document's row, the outcome of the one request, and whether its stored parse was sent."""

    row: dict[str, Any]
    attempted: Attempted
    reused_parse: bool


def ask(question: Question) -> Asked:
    """Find the document, build the follow-up (reusing its stored parse) and send it once, with retries."""
    row = find_document(question.out, question.doc)
    parse = tuple(as_message_annotation(a) for a in stored_parses(question.out, [row["doc_id"]]).get(row["doc_id"], ()))
    options = RequestOptions(
        model=question.model or row["model"], prompt=question.question, max_tokens=question.max_tokens
    )
    body = build_question(row, options, parse)
    with endpoint(question.offline, question.base_url) as place:
        attempted = asyncio.run(send_once(place, body))
    return Asked(row, attempted, bool(parse) and row["engine"] in PARSING_ENGINES)


def find_document(out: Path, doc: str) -> dict[str, Any]:
    """The latest ok row whose path or doc_id (or a unique doc_id prefix) is `doc`."""
    if not out.is_dir():
        raise ConfigError(f"{out} is not a results folder: give the --out DIR of a run")
    results = read_results(out)
    ok = results[results["status"] == "ok"]
    match = ok[ok["path"].isin({doc, escape_name(doc)}) | (ok["doc_id"] == doc)]  # as stored, or as on disk
    if match.empty and len(doc) >= 6:
        match = ok[ok["doc_id"].str.startswith(doc)]
        if match["doc_id"].nunique() > 1:
            raise ConfigError(f"--doc {doc!r} matches several documents; give more of the doc_id")
    if match.empty:
        raise ConfigError(f"no answered document in {out} has path or doc_id {doc!r} (see docrouter report)")
    return dict(match.sort_values("finished_at").iloc[-1])


def build_question(
    row: dict[str, Any], options: RequestOptions, annotations: tuple[dict[str, Any], ...]
) -> dict[str, Any]:
    """The request for a follow-up: the stored parse if any (no parse fee), else what was sent before."""
    path = stored_file(row["source_root"], row["path"])
    if not path.is_file():
        raise ConfigError(f"{path} is no longer there; the follow-up needs the original file")
    engine = row["engine"]
    if row["kind"] == "image":
        return image_request(options, path.read_bytes(), row["mime_type"])
    if engine == "local-text":
        text = "\n\n".join(t for t in extract_text(str(path)) if t)
        return text_request(options, text, path.name)
    reuse = annotations if engine in PARSING_ENGINES else ()
    return pdf_request(options, path.read_bytes(), path.name, engine, reuse)


async def send_once(place: Endpoint, body: dict[str, Any]) -> Attempted:
    """One request outside a run, over the run's client and dispatcher: one slot, no budget (ask prints the cost)."""
    async with http_client(1) as http:
        client = OpenRouterClient(http, base_url=place.base_url, api_key=place.api_key, title="docrouter")
        dispatcher = dispatcher_for(client, 1, None)
        return await dispatcher.send(lambda _: body, max_usd=lambda _: 0.0, failure_charge_usd=lambda _: 0.0)
