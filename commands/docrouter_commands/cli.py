"""The `docrouter` command: run, plan, report, ask, emulator.

`run` hands the work to the Prefect flow in flows/docrouter_flows/run.py (imported only then); everything else here is
plain docrouter and starts fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from docrouter import __version__
from docrouter.config import (
    DATA_COLLECTION,
    DEFAULT_MODEL,
    DEFAULT_PROMPT,
    ENGINES,
    PROVIDER_SORTS,
    RunConfig,
    comma_list,
    flow_parameters,
    read_prompt_file,
    resolve_api_key,
    schema_fields,
)
from docrouter.discover.urls import DEFAULT_CACHE_BYTES, SEND_URLS, parse_size, stash_command_line_urls
from docrouter.errors import DocrouterError
from docrouter.redaction import protect, redacted
from docrouter.results import VALIDITY
from docrouter.route.reasoning import SETTINGS


class OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(text: str) -> float:
    """A number as typed; RunConfig checks that it is finite and in range (one place for CLI and flows)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _positive_int(text: str) -> int:
    value = _whole_number(text)
    if not 1 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"expected a number from 1 to 1000000, got {text!r}")
    return value


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of bytes such as 500M or 2G, got {text!r}") from None


def _add_preferences(p: argparse.ArgumentParser) -> None:
    """How answers are asked for and where OpenRouter may route them (sent with every request)."""
    p.add_argument("--temperature", type=_number, default=0.0, help="sampling temperature, 0..2 (default 0)")
    system = p.add_mutually_exclusive_group()
    system.add_argument("--system-prompt", metavar="TEXT", help="a system message sent before every request")
    system.add_argument("--system-prompt-file", metavar="F", help="read the system message from a file")
    p.add_argument(
        "--data-collection", choices=DATA_COLLECTION, help="deny: only providers that do not store or train on data"
    )
    p.add_argument("--zdr", action="store_true", help="only zero-data-retention endpoints")
    p.add_argument("--provider-order", metavar="A,B", help="providers to try first, in this order (OpenRouter slugs)")
    p.add_argument("--provider-sort", choices=PROVIDER_SORTS, help="prefer providers by price, throughput or latency")
    p.add_argument(
        "--fallback-models",
        metavar="M1,M2",
        help="models to answer with when --model fails (estimates and the budget count the dearest)",
    )


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="folders (walked recursively), files or http(s) URLs")
    p.add_argument(
        "--urls",
        action="append",
        default=[],
        metavar="FILE",
        help="a list of URLs to read: one per line (# comments) or a CSV with a url column; repeatable",
    )
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"OpenRouter model id (default {DEFAULT_MODEL})")
    prompt = p.add_mutually_exclusive_group()
    prompt.add_argument("--prompt", help="what to ask of every document (default: a short summary)")
    prompt.add_argument("--prompt-file", metavar="F", help="read the prompt from a file")
    p.add_argument(
        "--schema",
        metavar="FILE",
        help="a JSON Schema (an object at the top level): extract one validated object per document into "
        "DIR/extractions/ (the default prompt becomes an extraction prompt; --prompt is sent with the schema)",
    )
    p.add_argument("--engine", choices=ENGINES, default="auto", help="force one engine for all PDFs")
    p.add_argument("--include", action="append", default=[], metavar="GLOB", help="only paths matching")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip paths matching")
    p.add_argument("--max-tokens", type=_whole_number, default=1024, help="answer length cap (default 1024)")
    p.add_argument(
        "--reasoning",
        choices=SETTINGS,
        default="auto",
        help="reasoning effort sent to the model (default auto: off where the model allows, else low); "
        "an effort adds its reasoning budget to max_tokens, and to estimates and reservations",
    )
    p.add_argument("--offline", action="store_true", help="use the built-in emulator: no key, no network")
    p.add_argument("--base-url", help="API base URL (default $OPENROUTER_BASE_URL or OpenRouter's)")
    p.add_argument("--ocr-fee", type=_number, default=0.002, help="mistral-ocr USD per page, 0..1 (default 0.002)")
    p.add_argument("--pdf-text-name", default="cloudflare-ai", help="wire name of the free PDF text engine")
    p.add_argument(
        "--price-headroom",
        type=_number,
        default=0.25,
        metavar="FRACTION",
        help="provider.max_price = catalogue price x (1 + FRACTION); 0..10 (default 0.25)",
    )
    p.add_argument(
        "--max-price",
        metavar="PROMPT,COMPLETION",
        help="most to pay in USD per million prompt,completion tokens (needed for models without a listed price)",
    )
    p.add_argument("--refresh-models", action="store_true", help="re-read the model list, ignoring the cache")
    _add_preferences(p)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every flag's default in its help (unless the help already says it); examples kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


EXAMPLES = {
    "run": "examples:\n  docrouter run data/samples --out out --offline\n"
    "  docrouter run ~/inbox --out ~/answers --budget 5 --prompt 'List every invoice number and total.'",
    "plan": "examples:\n  docrouter plan ~/inbox --out ~/answers\n  docrouter plan ~/inbox --out ~/answers --json",
    "report": "examples:\n  docrouter report ~/answers --failed\n  docrouter report ~/answers --json",
}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="docrouter", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"docrouter {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    run = sub.add_parser(
        "run",
        help="answer every document and write Parquet results",
        formatter_class=HelpFormatter,
        epilog=EXAMPLES["run"] + "\n\nexit status: 0 finished (failed documents are rows); 1 stopped by a 401/402;\n"
        "2 bad arguments, unwritable DIR, or DIR (this shard) is being written by another run;\n"
        "130 / 143 interrupted by Ctrl-C / SIGTERM (answers in flight within 10 s are recorded;\n"
        "a second Ctrl-C aborts at once)",
    )
    _add_selection(run)
    run.add_argument("--out", required=True, metavar="DIR", help="output folder (results/, annotations/)")
    run.add_argument("--budget", type=_number, metavar="USD", help="hard cap on money spent (>= 0; 0 sends nothing)")
    run.add_argument("--concurrency", type=_whole_number, default=16, help="requests in flight, 1..1024 (default 16)")
    run.add_argument("--max-attempts", type=_whole_number, default=6, help="attempts per request, 1..100 (default 6)")
    run.add_argument("--reprocess", action="store_true", help="answer again documents already answered")
    run.add_argument(
        "--retry-failed",
        action="store_true",
        help="try again unchanged files whose last row is a terminal failure (encrypted, corrupt, unsupported...)",
    )
    run.add_argument("--key-block", metavar="NAME", help="read the API key from this Prefect Secret block")
    run.add_argument("--batch-size", type=_whole_number, default=100, help="documents per Prefect task (1..100000)")
    run.add_argument(
        "--send-urls",
        choices=SEND_URLS,
        default="auto",
        help="auto (default): send URL images and server-parsed PDFs by URL when their server says unchanged; "
        "never: upload the fetched bytes (URLs the API cannot reach: intranet, expiring signatures)",
    )
    run.add_argument(
        "--url-cache-size",
        type=_size,
        default=DEFAULT_CACHE_BYTES,
        metavar="BYTES",
        help="fetched URL bytes kept under DIR/_urls once answered (default 2G; K, M, G suffixes)",
    )

    plan = sub.add_parser(
        "plan",
        help="per-file engine and estimated cost; no paid call",
        formatter_class=HelpFormatter,
        epilog=EXAMPLES["plan"],
    )
    _add_selection(plan)
    plan.add_argument(
        "--out",
        metavar="DIR",
        help="the run's output folder: skip what it already answered, reuse its stored parses; the plan is "
        "written there as plan.parquet",
    )
    plan.add_argument("--json", action="store_true", help="print one JSON object instead of the table")

    report = sub.add_parser(
        "report",
        help="totals by status, engine and model; money spent",
        formatter_class=HelpFormatter,
        epilog=EXAMPLES["report"],
    )
    report.add_argument("dir", metavar="DIR")
    report.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    report.add_argument("--failed", action="store_true", help="also list every failed file with its error")

    ask = sub.add_parser("ask", help="a follow-up question about one document, reusing its stored parse")
    ask.add_argument("dir", metavar="DIR")
    ask.add_argument("--doc", required=True, metavar="PATH_OR_ID", help="a path from the results, or a doc_id")
    ask.add_argument("question")
    ask.add_argument("--model", help="model id (default: the one that answered the document)")
    ask.add_argument("--max-tokens", type=_positive_int, default=1024)
    ask.add_argument("--offline", action="store_true", help="use the built-in emulator")
    ask.add_argument("--base-url")

    from docrouter.emulator import add_emulator_arguments

    emulator = sub.add_parser("emulator", help="serve the built-in OpenRouter-compatible API")
    add_emulator_arguments(emulator)
    return parser


def _prompt(args: argparse.Namespace) -> str:
    if args.prompt_file:
        return read_prompt_file(args.prompt_file)
    return DEFAULT_PROMPT if args.prompt is None else args.prompt  # --prompt "" is an error, not the default


def _system_prompt(args: argparse.Namespace) -> str | None:
    if args.system_prompt_file:
        return read_prompt_file(args.system_prompt_file, "--system-prompt-file")
    return args.system_prompt


def run_config(args: argparse.Namespace) -> RunConfig:
    return RunConfig(
        sources=tuple(args.sources),
        out=getattr(args, "out", None) or "",
        model=args.model,
        prompt=_prompt(args),
        engine=args.engine,
        budget_usd=getattr(args, "budget", None),
        concurrency=getattr(args, "concurrency", 16),
        max_attempts=getattr(args, "max_attempts", 6),
        include=tuple(args.include),
        exclude=tuple(args.exclude),
        reprocess=getattr(args, "reprocess", False),
        retry_failed=getattr(args, "retry_failed", False),
        offline=args.offline,
        max_tokens=args.max_tokens,
        base_url=args.base_url,
        pdf_text_wire_name=args.pdf_text_name,
        ocr_fee_per_page=args.ocr_fee,
        batch_size=getattr(args, "batch_size", 100),
        price_headroom=args.price_headroom,
        max_price=args.max_price,
        refresh_models=args.refresh_models,
        urls=tuple(args.urls),
        send_urls=getattr(args, "send_urls", "auto"),
        url_cache_size=getattr(args, "url_cache_size", DEFAULT_CACHE_BYTES),
        **schema_fields(args.schema),
        reasoning=args.reasoning,
        temperature=args.temperature,
        system_prompt=_system_prompt(args),
        data_collection=args.data_collection,
        zdr=args.zdr,
        provider_order=comma_list(args.provider_order),
        provider_sort=args.provider_sort,
        fallback_models=comma_list(args.fallback_models),
    )


def cmd_run(args: argparse.Namespace) -> int:
    from docrouter import stopping
    from docrouter.session import check_run, checked_model, models
    from docrouter.store import lease

    config = run_config(args)
    check_run(config, key_block=args.key_block)  # here, a one-line error; inside the flow, a Prefect traceback
    checked_model(config, models(config))  # an unknown model or an impossible --engine: before Prefect starts
    _quiet_prefect_server()
    sources, stashed = stash_command_line_urls(config.sources)  # no signed URL in the flow's parameters
    if stashed is not None:
        config = dataclasses.replace(config, sources=sources, urls=(*config.urls, stashed))
    # The lease first: a second run on this DIR stops here, at once, before Prefect even starts.
    interrupted: int | None = None
    try:
        with lease.acquire(Path(config.out), config.shard, config.shards), stopping.installed() as stopper:
            try:
                summary = _run_flow(config, args.key_block, stopper)
            except stopping.Interrupted as exc:
                print(
                    f"docrouter: {exc.message}; every finished row is in {config.out}; rerun to go on", file=sys.stderr
                )
                interrupted = exc.exit_code
    finally:
        if stashed is not None:
            os.unlink(stashed)
    if interrupted is not None:
        return stopping.exit_now(interrupted)
    if summary is None:
        return 1
    from docrouter_commands.report import build_report, render_report

    print(render_summary(summary))
    print(render_report(build_report(Path(config.out))))
    return 0


def _quiet_prefect_server() -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # The temporary server's shutdown prints harmless "Error flushing events" tracebacks (PrefectHQ #18934).
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
    # The temporary server's default 20 s start-up limit is missed on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _run_flow(config: RunConfig, key_block: str | None, stopper: Any) -> dict[str, Any] | None:
    """The run flow's summary; None (after a one-line message) when a 401/402 stopped it; Interrupted raised
    when a signal did."""
    from docrouter import stopping
    from docrouter_flows.run import RunStopped, docrouter_run
    from docrouter_flows.tempserver import temporary_server

    if not config.offline and key_block is None:
        protect(resolve_api_key())  # after Prefect set up its log handlers
    params = {**flow_parameters(config), "key_block": key_block, "show_progress": True}
    with temporary_server(stopper):
        if stopper.requested:
            raise stopper.error(": nothing was started")
        try:
            return stopping.run(docrouter_run(**params), stopper)
        except RunStopped as exc:
            print(
                f"docrouter: error: {redacted(str(exc))}; every finished row is written to {config.out}",
                file=sys.stderr,
            )
            return None


def render_summary(summary: dict[str, Any]) -> str:
    """The headline of one run (the dataset-wide table follows it)."""
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(summary["by_status"].items())) or "nothing new"
    budget = f" of ${summary['budget_usd']:.4f}" if summary["budget_usd"] is not None else ""
    notes = f"\n{summary['pdf_notes']}" if summary.get("pdf_notes") else ""
    validity = summary.get("extractions") or {}
    extractions = "; extractions " + ", ".join(f"{k} {validity.get(k, 0)}" for k in VALIDITY) if validity else ""
    lines = [
        f"run {summary['run_id']}: {summary['documents']} files; {statuses}; "
        f"{summary['already_done']} already done; {summary['known_failures']} known failures unchanged; "
        f"spent ${summary['spent_usd']:.4f}{budget}; "
        f"{summary['requests_sent']} requests{extractions}{notes}"
    ]
    lines += [f"warning: {note}" for note in summary.get("price_notes", ())]
    refused = summary.get("failures", {}).get("price")
    if refused:
        lines.append(
            f"{refused} files refused for price: no provider serves the model at the max price sent; rerun with "
            "--refresh-models (re-read the model list) or a higher --price-headroom"
        )
    return "\n".join(lines)


def cmd_plan(args: argparse.Namespace) -> int:
    from docrouter_commands.planning import plan_command

    return plan_command(run_config(args), out=args.out, as_json=args.json)


def cmd_report(args: argparse.Namespace) -> int:
    from docrouter_commands.report import build_report, render_report, report_json

    report = build_report(Path(args.dir))
    if args.json:
        print(json.dumps(report_json(report, failed=args.failed)))
    else:
        print(render_report(report, failed=args.failed))
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from docrouter_commands.asking import ask_command

    return ask_command(args)


def cmd_emulator(args: argparse.Namespace) -> int:
    from docrouter.emulator import run_emulator

    return run_emulator(args)


COMMANDS = {"run": cmd_run, "plan": cmd_plan, "report": cmd_report, "ask": cmd_ask, "emulator": cmd_emulator}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except DocrouterError as exc:
        print(f"docrouter: error: {redacted(exc.message)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("docrouter: interrupted; every finished row is on disk, rerun to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
