"""The `docrouter` command: run, plan, report, ask, emulator.

`run` hands the work to the Prefect flow in flows/docrouter_flows/run.py (imported only then); everything else here is
plain docrouter and starts fast.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeAlias

from docrouter import __version__
from docrouter.discover.urls import parse_size, size_text, stash_command_line_urls
from docrouter.errors import ConfigError, DocrouterError
from docrouter.redaction import protect, redacted
from docrouter.results import VALIDITY
from docrouter.run.config import (
    SETTINGS,
    RunConfig,
    comma_list,
    flow_parameters,
    read_prompt_file,
    resolve_api_key,
    schema_fields,
)
from docrouter.run.environment import DEFAULT_STOP_GRACE_S, Environment
from docrouter.run.references import portable
from docrouter.run.settings import Described


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


def _add_sources(p: argparse.ArgumentParser) -> None:
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="folders (walked recursively), files or http(s) URLs")


def _add_settings(p: argparse.ArgumentParser, command: str) -> None:
    """The flags of the run settings `command` takes, built from their descriptions (docrouter.run.settings)."""
    for described in SETTINGS:
        if described.setting.is_flag and (command == "run" or not described.setting.run_only):
            _add_setting(p, described)
    p.add_argument(
        "--schema",
        metavar="FILE",
        help="a JSON Schema (an object at the top level): extract one validated object per document into "
        "DIR/extractions/ (the default prompt becomes an extraction prompt; --prompt is sent with the schema; "
        "default: none, free-text answers)",
    )


_READ = {"number": _number, "whole": _whole_number, "size": _size}


def _add_setting(p: argparse.ArgumentParser, described: Described) -> None:
    """One setting's flag (and its read-from-a-file twin, one or the other), its help showing its default."""
    how = described.setting
    group: Any = p.add_mutually_exclusive_group() if how.from_file else p
    options: dict[str, Any] = {"help": _help(described), "default": _flag_default(described)}
    if how.kind in ("switch", "repeat"):
        options["action"] = "store_true" if how.kind == "switch" else "append"
    elif how.kind in _READ:
        options["type"] = _READ[how.kind]
    if how.choices:
        options["choices"] = how.choices
    if how.metavar:
        options["metavar"] = how.metavar
    group.add_argument(described.flag, **options)
    if how.from_file:
        group.add_argument(how.from_file[0], metavar="F", help=how.from_file[1])


def _help(described: Described) -> str:
    """The flag's help with its default and range filled in, as a user types them (2G, 0.002, 0)."""
    how = described.setting
    assert how.help is not None
    low, high = how.bounds or (None, None)
    return how.help.format(default=default_text(described), low=_shown(low), high=_shown(high))


def default_text(described: Described) -> str:
    """A setting's default as a user would type it (2G, 0.002, 0): in --help, and in the README."""
    return size_text(described.default) if described.setting.kind == "size" else _shown(described.default)


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _flag_default(described: Described) -> Any:
    """The argparse default: the setting's default as the flag would give it (a list, an A,B text, or None)."""
    default = described.default
    if described.setting.kind == "repeat":
        return list(default)
    if described.setting.kind == "commas":
        return ",".join(default) or None
    return default


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every flag's default in its help (unless the help already says it); examples kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.required and action.option_strings:
            return f"{text} (required)"
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


EXAMPLES = {
    "run": "examples:\n  docrouter run data/samples --out out --offline\n"
    "  docrouter run ~/inbox --out ~/answers --budget 5 --prompt 'List every invoice number and total.'",
    "plan": "examples:\n  docrouter plan ~/inbox --out ~/answers\n  docrouter plan ~/inbox --out ~/answers --json\n"
    "  docrouter plan ~/inbox --out ~/answers --pilot 20 --budget 1",
    "report": "examples:\n  docrouter report ~/answers --failed\n  docrouter report ~/answers --json",
    "ask": "examples:\n  docrouter ask out --doc receipt.png 'What is the total?' --offline\n"
    "  docrouter ask ~/answers --doc 3f2a9c 'Who signed it?' --model anthropic/claude-haiku-4.5",
    "emulator": "examples:\n  docrouter emulator --port 8787 --latency 0.2\n"
    "  docrouter emulator --port 0 --fault 429=0.3 --fault retry_after=1 --credits 0.05 --quiet",
    "docrouter": "examples:\n  docrouter run data/samples --out out --offline\n"
    "  docrouter plan ~/inbox --out ~/answers\n"
    "  docrouter report out --failed\n\n'docrouter COMMAND --help' lists a command's flags with their defaults",
}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="docrouter",
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=HelpFormatter,
        epilog=EXAMPLES["docrouter"],
    )
    parser.add_argument("--version", action="version", version=f"docrouter {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for add in (_add_run, _add_plan, _add_report, _add_ask, _add_emulator):
        add(sub)
    return parser


Subcommands: TypeAlias = "argparse._SubParsersAction[OneLineParser]"


def _command(sub: Subcommands, name: str, help: str, epilog: str = "") -> argparse.ArgumentParser:
    """One subcommand, its examples (and `epilog`) under its flags."""
    return sub.add_parser(name, help=help, formatter_class=HelpFormatter, epilog=EXAMPLES[name] + epilog)


def _add_run(sub: Subcommands) -> None:
    exits = (
        "\n\nexit status: 0 finished (failed documents are rows); 1 stopped by a 401/402;\n"
        "2 bad arguments, unwritable DIR, or DIR (this shard) is being written by another run;\n"
        f"130 / 143 interrupted by Ctrl-C / SIGTERM (answers in flight within {DEFAULT_STOP_GRACE_S:g} s are "
        "recorded;\na second Ctrl-C aborts at once)"
    )
    run = _command(sub, "run", "answer every document and write Parquet results", exits)
    _add_sources(run)
    run.add_argument("--out", required=True, metavar="DIR", help="output folder (results/, annotations/)")
    _add_settings(run, "run")
    run.add_argument(
        "--key-block",
        metavar="NAME",
        help="read the API key from this Prefect Secret block (default: $OPENROUTER_API_KEY)",
    )


def _add_plan(sub: Subcommands) -> None:
    plan = _command(sub, "plan", "per-file engine and estimated cost; no paid call")
    _add_sources(plan)
    _add_settings(plan, "plan")
    plan.add_argument(
        "--out",
        metavar="DIR",
        help="the run's output folder: skip what it already answered, reuse its stored parses; the plan is "
        "written there as plan.parquet (default: none: plan every document, write nothing)",
    )
    plan.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    plan.add_argument(
        "--pilot",
        type=_whole_number,
        default=0,
        metavar="N",
        help="answer N documents sampled across engines and sizes for real (recorded in --out DIR, so the run "
        "never pays for them again), then forecast the whole run's cost and time with a 95%% interval "
        "(default 0: no pilot)",
    )


def _add_report(sub: Subcommands) -> None:
    report = _command(sub, "report", "totals by status, engine and model; money spent")
    report.add_argument("dir", metavar="DIR")
    report.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    report.add_argument("--failed", action="store_true", help="also list every failed file with its error")


def _add_ask(sub: Subcommands) -> None:
    ask = _command(sub, "ask", "a follow-up question about one document, reusing its stored parse")
    ask.add_argument("dir", metavar="DIR", help="the --out DIR of a run")
    ask.add_argument("--doc", required=True, metavar="PATH_OR_ID", help="a path from the results, or a doc_id")
    ask.add_argument("question", help="what to ask about the document")
    ask.add_argument("--model", help="model id (default: the one that answered the document)")
    ask.add_argument("--max-tokens", type=_positive_int, default=1024, help="answer length cap")
    ask.add_argument("--offline", action="store_true", help="use the built-in emulator")
    ask.add_argument("--base-url", help="API base URL (default $OPENROUTER_BASE_URL or OpenRouter's)")


def _add_emulator(sub: Subcommands) -> None:
    from docrouter.emulator import add_emulator_arguments

    add_emulator_arguments(_command(sub, "emulator", "serve the built-in OpenRouter-compatible API"))


def run_config(args: argparse.Namespace) -> RunConfig:
    """The RunConfig that `run`'s or `plan`'s arguments and this process's environment describe."""
    values = {d.field: _value(args, d) for d in SETTINGS if d.setting.is_flag and hasattr(args, d.parameter)}
    return RunConfig(
        sources=tuple(args.sources),
        out=getattr(args, "out", None) or "",
        **values,
        **schema_fields(args.schema),
        environment=Environment.read(os.environ),  # the command's one read of the environment
    )


def _value(args: argparse.Namespace, described: Described) -> Any:
    """One setting's value as RunConfig takes it, from its flag (or the file its twin flag names)."""
    how, value = described.setting, getattr(args, described.parameter)
    if how.from_file:
        flag = how.from_file[0]
        path = getattr(args, flag.removeprefix("--").replace("-", "_"))
        if path:
            return read_prompt_file(path, flag)
    if how.kind == "repeat":
        return tuple(value)
    return comma_list(value) if how.kind == "commas" else value  # --prompt "" is an error, not the default


def cmd_run(args: argparse.Namespace) -> int:
    from docrouter.run import stopping
    from docrouter.run.promptroom import check_prompt_room
    from docrouter.run.session import check_run, checked_model, models
    from docrouter.store import lease

    config = run_config(args)
    check_run(config, key_block=args.key_block)  # here, a one-line error; inside the flow, a Prefect traceback
    model, _ = checked_model(config, models(config))  # an unknown model or an impossible --engine: before Prefect
    check_prompt_room(config, model)
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
    from docrouter.run import stopping
    from docrouter_flows.run import RunStopped, docrouter_run
    from docrouter_flows.secrets import load_api_key
    from docrouter_flows.tempserver import temporary_server

    if not config.offline and key_block is None:
        protect(resolve_api_key())  # after Prefect set up its log handlers
    params = portable({**flow_parameters(config), "key_block": key_block, "show_progress": True})
    with temporary_server(stopper):
        if stopper.requested:
            raise stopper.error(": nothing was started")
        if key_block is not None and not config.offline:  # right after the server starts, before any document
            protect(asyncio.run(load_api_key(key_block)))  # work: a missing block is one line, not a failed flow
        try:
            summary: dict[str, Any] = stopping.run(docrouter_run(**params), stopper)
            return summary
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

    if args.pilot < 0 or (args.pilot and not args.out):
        raise ConfigError("--pilot N needs N >= 0 and --out DIR (where the pilot's answers are recorded)")
    return plan_command(run_config(args), out=args.out, as_json=args.json, pilot=args.pilot)


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
