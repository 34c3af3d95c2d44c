"""`docrouter ask`: a follow-up question about one answered document, reusing its stored parse."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from docrouter.budget import Budget
from docrouter.call.client import OpenRouterClient
from docrouter.call.dispatch import Attempted, Dispatcher
from docrouter.call.limits import AdaptiveLimiter, RetryPolicy
from docrouter.call.payloads import RequestOptions, image_request, pdf_request, text_request
from docrouter.config import resolve_api_key, resolve_base_url
from docrouter.discover.names import escape_name, stored_file
from docrouter.errors import ConfigError
from docrouter.inspect.inspection import extract_text
from docrouter.store.store import read_annotations, read_results
from docrouter.vocabulary import PARSING_ENGINES


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


def stored_annotations(out: Path, doc_id: str) -> tuple[dict[str, Any], ...]:
    """The document's file annotations in the shape the API returned them (latest per file hash)."""
    frame = read_annotations(out)
    if frame.empty:
        return ()
    mine = frame[frame["doc_id"] == doc_id].sort_values("created_at").drop_duplicates("file_hash", keep="last")
    return tuple(
        {"type": "file", "file": {"hash": r.file_hash, "name": r.name, "content": json.loads(r.content)}}
        for r in mine.itertuples()
    )


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


async def _ask(base_url: str, key: str, body: dict[str, Any]) -> Attempted:
    async with httpx.AsyncClient(timeout=httpx.Timeout(300.0, connect=15.0)) as http:
        dispatcher = Dispatcher(
            client=OpenRouterClient(http, base_url=base_url, api_key=key, title="docrouter"),
            limiter=AdaptiveLimiter(1),
            budget=Budget(None),
            policy=RetryPolicy(),
        )
        return await dispatcher.send(lambda _: body, max_usd=lambda _: 0.0, failure_charge_usd=lambda _: 0.0)


def ask_command(args: argparse.Namespace) -> int:
    """Print the answer to stdout and what it cost to stderr."""
    out = Path(args.dir)
    row = find_document(out, args.doc)
    annotations = stored_annotations(out, row["doc_id"])
    options = RequestOptions(model=args.model or row["model"], prompt=args.question, max_tokens=args.max_tokens)
    body = build_question(row, options, annotations)
    with ExitStack() as stack:
        if args.offline:
            from docrouter.emulator import Emulator

            emulator = stack.enter_context(Emulator())
            base_url, key = emulator.base_url, emulator.api_key
        else:
            base_url = resolve_base_url(args.base_url)
            key = resolve_api_key()
        attempted = asyncio.run(_ask(base_url, key, body))
    if attempted.completion is None:
        assert attempted.error is not None
        print(f"docrouter: error: {attempted.error.error_type}: {attempted.error.message}", file=sys.stderr)
        return 1
    completion = attempted.completion
    if completion.truncated:  # reasoning tokens come out of max_tokens first; say so rather than print a stub
        cut = f"cut by the length limit ({completion.reasoning_tokens} tokens spent reasoning)"
        print(f"docrouter: the answer was {cut}; ask again with a larger --max-tokens", file=sys.stderr)
        if not completion.content.strip():
            return 1
    print(completion.content)
    reused = " (stored parse reused: no parse fee)" if annotations and row["engine"] in PARSING_ENGINES else ""
    print(f"docrouter: {row['path']}: ${attempted.cost_usd:.6f}{reused}", file=sys.stderr)
    return 0
