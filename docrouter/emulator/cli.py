"""`docrouter emulator`: run the emulator in the foreground until Ctrl-C (or SIGTERM)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import socket
import sys
import threading
from typing import Any

from docrouter.emulator.faults import FAULT_KINDS, Faults, parse_fault_flag
from docrouter.emulator.records import RequestRecord
from docrouter.emulator.runner import Emulator
from docrouter.emulator.state import DEFAULT_API_KEY
from docrouter.emulator.thinking import parse_knob

DEFAULT_PORT = 8787


def add_emulator_arguments(parser: argparse.ArgumentParser) -> None:
    """The emulator's flags, for `docrouter emulator` and `python -m docrouter.emulator`."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"0 picks a free port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--latency", type=float, default=0.0, metavar="S", help="seconds added to every answer (default 0)"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="inject failures, e.g. 429=0.2 retry_after=2 fail_401=true (default: none); "
        f"kinds: {', '.join(FAULT_KINDS)}",
    )
    parser.add_argument(
        "--credits", type=float, default=None, metavar="USD", help="account balance (402 past it; default: unlimited)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the fault draws (runs reproduce; default 0)")
    parser.add_argument(
        "--key", default=DEFAULT_API_KEY, help=f"the API key the emulator accepts (made up; default {DEFAULT_API_KEY})"
    )
    parser.add_argument(
        "--ocr-fee", type=float, default=None, metavar="USD", help="mistral-ocr fee per page (default 0.002)"
    )
    parser.add_argument(
        "--models", default=None, metavar="PATH", help="a /models JSON snapshot to serve (default: the bundled one)"
    )
    parser.add_argument(
        "--price-multiplier",
        type=float,
        default=1.0,
        metavar="X",
        help="bill model prices at X times /models (default 1)",
    )
    parser.add_argument(
        "--ocr-fee-multiplier", type=float, default=1.0, metavar="X", help="bill the OCR fee at X times (default 1)"
    )
    parser.add_argument("--byok", action="store_true", help="answer as for a BYOK key (cost upstream)")
    parser.add_argument(
        "--reasoning-model",
        action="append",
        default=[],
        metavar="MODEL=TOKENS[,mandatory][,low=N]",
        help="make MODEL reason TOKENS tokens by default (out of max_tokens first); mandatory: it cannot be "
        "turned off; EFFORT=N: tokens at that effort (minimal, low, medium, high); repeatable (default: none)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not print a line per request")


def faults_from_flags(flags: list[str]) -> Faults:
    """Faults from repeated `--fault NAME=VALUE` flags."""
    values: dict[str, Any] = dict(parse_fault_flag(flag) for flag in flags)
    return Faults.from_mapping(values)


def _print_record(record: RequestRecord) -> None:
    cost = f" ${record.billed_usd:.6f}" if record.billed_usd else ""
    details = " ".join(filter(None, [record.model, record.engine, record.fault and f"fault={record.fault}"]))
    print(f"{record.status} {record.path} {details}{cost}".rstrip(), flush=True)


def emulator_from(args: argparse.Namespace) -> Emulator:
    """An Emulator configured by the parsed flags (ValueError for a bad --fault)."""
    return Emulator(
        faults=faults_from_flags(args.fault),
        latency=args.latency,
        api_key=args.key,
        credits_usd=args.credits,
        seed=args.seed,
        models_path=args.models,
        host=args.host,
        port=args.port,
        ocr_fee_per_page=args.ocr_fee,
        price_multiplier=args.price_multiplier,
        ocr_fee_multiplier=args.ocr_fee_multiplier,
        byok=args.byok,
        reasoning=dict(parse_knob(text) for text in args.reasoning_model),
    )


def check_port_free(host: str, port: int) -> None:
    """A ValueError (one line) when `port` is taken, before the server starts and logs a traceback."""
    if not port:
        return  # 0: any free port
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a TIME_WAIT port is free
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port") from None


def run_emulator(args: argparse.Namespace) -> int:
    """Serve until interrupted (Ctrl-C or SIGTERM); prints the base URL and the key it accepts first."""
    try:
        check_port_free(args.host, args.port)
        emulator = emulator_from(args)
    except ValueError as exc:
        print(f"docrouter emulator: error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        emulator.state.on_record = _print_record
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # real PDFs make pypdf chatty; this process is ours
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with emulator:
        print(f"OPENROUTER_BASE_URL={emulator.base_url}", flush=True)
        print(f"OPENROUTER_API_KEY={emulator.api_key}", flush=True)
        print(
            "docrouter emulator: an emulated OpenRouter API (made-up key, no network); "
            f"stats at {emulator.root_url}/_emulator/stats; Ctrl-C stops it",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            while not stop.wait(0.5):
                pass
    print(f"docrouter emulator: stopped; billed ${emulator.billed_usd:.6f} in total", flush=True)
    return 0


def main_emulator(argv: list[str] | None = None) -> int:
    """`python -m docrouter.emulator [flags]`."""
    parser = argparse.ArgumentParser(prog="docrouter emulator", description="An OpenRouter-compatible API emulator.")
    add_emulator_arguments(parser)
    return run_emulator(parser.parse_args(argv))
