"""Environment variables are read once at the edge (the command line, the flow run), and each still takes effect."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

import samples
from docrouter.emulator import Emulator
from docrouter.run.config import config_from_parameters
from docrouter.run.environment import REFERER, STOP_GRACE, TITLE, VARIABLES, Environment
from docrouter_commands.cli import build_parser, main, run_config
from pipeline import results, run_flow, start_run, write_corpus

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
NOT_READ_HERE = {"OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "DOCROUTER_HOME"}  # config.resolve_*, prefect.yaml

# variable -> (a valid value, what it sets, what that becomes)
VALUES: dict[str, tuple[str, Callable[[Environment], Any], Any]] = {
    REFERER: ("https://example.org/archive", lambda e: e.referer, "https://example.org/archive"),
    TITLE: ("Archive bot", lambda e: e.title, "Archive bot"),
    STOP_GRACE: ("2.5", lambda e: e.stop_grace_s, 2.5),
    "DOCROUTER_MAX_REQUEST_BYTES": ("1000000", lambda e: e.split.max_body_bytes, 1_000_000),
    "DOCROUTER_MAX_PART_PAGES": ("25", lambda e: e.split.pages_for("native"), 25),
    "DOCROUTER_PDF_TIME_LIMIT_S": ("3", lambda e: e.pdf.time_s, 3.0),
    "DOCROUTER_PDF_MEMORY_MB": ("512", lambda e: e.pdf.memory_mb, 512),
    "DOCROUTER_URL_TIMEOUT_S": ("5", lambda e: e.fetch.timeout_s, 5.0),
    "DOCROUTER_URL_MAX_BYTES": ("1000", lambda e: e.fetch.max_bytes, 1000),
}
BAD = {
    STOP_GRACE: "soon",
    "DOCROUTER_MAX_REQUEST_BYTES": "0",
    "DOCROUTER_MAX_PART_PAGES": "many",
    "DOCROUTER_PDF_TIME_LIMIT_S": "-3",
    "DOCROUTER_PDF_MEMORY_MB": "lots",
    "DOCROUTER_URL_TIMEOUT_S": "nan",
    "DOCROUTER_URL_MAX_BYTES": "-1",
}


def test_the_readme_documents_exactly_the_variables_docrouter_reads() -> None:
    named = set(re.findall(r"\b(?:OPENROUTER|DOCROUTER)_[A-Z_]*[A-Z]\b", README))
    assert named - NOT_READ_HERE == set(VARIABLES) == set(VALUES)


@pytest.mark.parametrize("variable", VALUES)
def test_each_variable_sets_its_setting_and_nothing_else(variable: str) -> None:
    value, read, expected = VALUES[variable]
    environment, default = Environment.read({variable: value}), Environment()
    assert read(environment) == expected != read(default)
    fields = [f.name for f in dataclasses.fields(Environment)]
    assert sum(getattr(environment, name) != getattr(default, name) for name in fields) == 1
    assert Environment.read({}) == default  # unset: the defaults


def test_the_command_line_reads_the_environment_into_the_config_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, (value, _, _) in VALUES.items():
        monkeypatch.setenv(variable, value)
    for command in ("run", "plan"):
        config = run_config(build_parser().parse_args([command, "x", "--out", "o"]))
        assert config.environment == Environment.read({v: value for v, (value, _, _) in VALUES.items()})


@pytest.mark.parametrize("command", ["run", "plan"])
@pytest.mark.parametrize("variable", BAD)
def test_a_bad_variable_is_one_line_exit_2_before_any_work(
    variable: str, command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(variable, BAD[variable])
    out = tmp_path / "out"
    assert main([command, str(tmp_path), "--out", str(out), "--offline"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("docrouter: error: ") and variable in err, err
    assert not out.exists()


def test_a_flow_run_takes_its_environment_when_it_starts_not_from_its_parameters() -> None:
    parameters = {"sources": ["x"], "out": "o"}
    assert config_from_parameters(parameters).environment == Environment()
    worker = Environment.read({TITLE: "Archive bot", STOP_GRACE: "0"})
    assert config_from_parameters(parameters, worker).environment.stop_grace_s == 0.0


@contextmanager
def recording_proxy(target: str) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A loopback HTTP proxy to `target` that keeps the headers of every request it forwards."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append({k.lower(): v for k, v in self.headers.items()} | {":path": self.path})
            keep = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            answer = httpx.request(self.command, target + self.path, headers=keep, content=body, timeout=120)
            self.send_response(answer.status_code)
            self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = _forward  # noqa: N815 (http.server's names)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_api_url")
def test_attribution_headers_and_split_limits_from_the_environment_reach_a_flow_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "long.pdf").write_bytes(samples.text_pdf(5, text="A page of the long report. " * 20))
    monkeypatch.setenv(REFERER, "https://example.org/archive")
    monkeypatch.setenv(TITLE, "Archive bot")
    monkeypatch.setenv("DOCROUTER_MAX_PART_PAGES", "2")
    with Emulator(seed=5) as emu, recording_proxy(emu.base_url.removesuffix("/api/v1")) as (proxy, seen):
        monkeypatch.setenv("OPENROUTER_API_KEY", emu.api_key)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        run_flow(sources=[str(docs)], out=str(tmp_path / "out"), base_url=f"{proxy}/api/v1", engine="local-text")
    chats = [h for h in seen if h[":path"].endswith("/chat/completions")]
    assert chats and all(h.get("http-referer") == "https://example.org/archive" for h in chats)
    assert all(h.get("x-openrouter-title") == "Archive bot" for h in chats)
    row = results(tmp_path / "out").iloc[0]
    assert (row.status, row.parts) == ("ok", 3)  # 5 pages at most 2 per request: 3 parts


@pytest.mark.slow
def test_a_zero_stop_grace_leaves_the_answers_in_flight_unrecorded(tmp_path: Path, prefect_api_url: str) -> None:
    write_corpus(tmp_path / "docs", pngs=6)
    out = tmp_path / "out"
    with Emulator(seed=9, latency=5.0) as emu:  # an answer takes 5 s: well within the default 10 s grace
        run = start_run(tmp_path / "docs", out, emu, prefect_api_url, **{STOP_GRACE: "0"})
        deadline = time.monotonic() + 240
        while emu.state.ledger.max_in_flight == 0 and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert run.poll() is None, "the run ended before the signal"
        os.kill(run.pid, signal.SIGTERM)  # requests are in flight, none answered yet
        _, stderr = run.communicate(timeout=120)  # a hang guard
    assert run.returncode == 143, stderr[-3000:]
    assert stderr.strip().splitlines()[-1].startswith("docrouter: interrupted by SIGTERM"), stderr[-3000:]
    frame = results(out) if (out / "results").exists() else None
    assert frame is None or frame.empty or not (frame.status == "ok").any()  # no grace: no answer awaited
