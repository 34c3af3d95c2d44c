"""The API key never leaks: checked at start without being echoed, and redacted from every log handler.

The canary test runs the console script with a made-up key through every error path (401, 402, bad
characters, an unreachable API, a crash) and scans stdout, stderr, DIR, PREFECT_HOME (the SQLite
database included) and the cache for it.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from docrouter.emulator import Emulator
from docrouter.errors import ConfigError
from docrouter.redaction import MASK, protect
from docrouter.run.config import resolve_api_key
from pipeline import write_corpus

CANARY = f"sk-or-v1-canary{uuid.uuid4().hex}"
COMMAND = [sys.executable, "-m", "docrouter_commands.cli"]
TIMEOUT_S = 240


@pytest.mark.parametrize("odd", ["\u200b", "é", "\x7f", "\u00a0x", "\t\x07"])
def test_a_key_that_is_not_printable_ascii_is_one_line_that_does_not_echo_it(
    odd: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", f"  {CANARY[:20]}{odd}{CANARY[20:]}\n")
    with pytest.raises(ConfigError) as caught:
        resolve_api_key()
    message = caught.value.message
    assert "not printable ASCII" in message and "\n" not in message
    assert CANARY[:12] not in message and CANARY[20:] not in message


def test_a_key_from_a_secret_block_is_checked_alike() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_api_key(f"{CANARY}\x00")
    assert CANARY not in caught.value.message and "U+0000" in caught.value.message


def test_surrounding_whitespace_is_trimmed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", f" \t{CANARY}\r\n")
    assert resolve_api_key() == CANARY


def test_the_filter_redacts_messages_arguments_and_tracebacks_on_every_handler() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("prefect.test_key_safety")
    logger.addHandler(handler)
    try:
        protect(CANARY)
        logger.error("header was Bearer %s", CANARY)
        try:
            raise ValueError(f"cannot encode {CANARY!r}")
        except ValueError:
            logger.exception("request failed")
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert CANARY not in written and written.count(MASK) == 2 and "ValueError" in written


def leaks(where: list[Path], *texts: str) -> list[str]:
    """Every file under `where` and every text that contains the canary."""
    found = [f"output #{i}" for i, text in enumerate(texts) if CANARY in text]
    needle = CANARY.encode()
    for root in where:
        for path in root.rglob("*"):
            if path.is_file() and needle in path.read_bytes():
                found.append(str(path))
    return found


def cli_env(tmp: Path, key: str, base_url: str, api_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OPENROUTER_"))}
    return env | {
        "PREFECT_API_URL": api_url,  # the session's server: its database is scanned too
        "OPENROUTER_API_KEY": key,
        "OPENROUTER_BASE_URL": base_url,
        "PREFECT_HOME": str(tmp / "prefect-home"),
        "XDG_CACHE_HOME": str(tmp / "cache"),
        "PREFECT_LOGGING_LEVEL": "DEBUG",  # everything Prefect would ever log, to the console and the API
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/api/v1"


def prefect_database_folder() -> Path:
    """The folder of the SQLite database the session's Prefect server writes (runs, parameters, logs)."""
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    url = str(PREFECT_SERVER_DATABASE_CONNECTION_URL.value())
    assert url.startswith("sqlite+aiosqlite:///"), url
    return Path(url.removeprefix("sqlite+aiosqlite:///")).parent


@pytest.mark.slow
def test_a_canary_key_appears_nowhere_whatever_goes_wrong(tmp_path: Path, prefect_api_url: str) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, text=2, scans=1)
    outputs: list[str] = []

    def run(case: str, key: str, base_url: str, *extra: str) -> subprocess.CompletedProcess[str]:
        command = [*COMMAND, "run", str(docs), "--out", str(tmp_path / f"out-{case}"), "--max-attempts", "1", *extra]
        env = cli_env(tmp_path, key, base_url, prefect_api_url)
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        outputs.extend([done.stdout, done.stderr])
        return done

    bad = run("bad-characters", f"{CANARY}\u200b", closed_port_url())
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr[-2000:]
    with Emulator(api_key="sk-or-v1-another-key") as other:
        rejected = run("401", CANARY, other.base_url)
    assert rejected.returncode == 1 and "rejected the API key" in rejected.stderr, rejected.stderr[-2000:]
    with Emulator(api_key=CANARY, credits_usd=0.0) as broke:
        no_credits = run("402", CANARY, broke.base_url)
    assert no_credits.returncode == 1 and "credits" in no_credits.stderr, no_credits.stderr[-2000:]
    unreachable = run("unreachable", CANARY, closed_port_url())
    assert unreachable.returncode == 0, unreachable.stderr[-2000:]
    outputs.extend(crashed_run(tmp_path, docs, prefect_api_url))
    database = prefect_database_folder()
    assert any(database.glob("*.db*"))
    assert leaks([tmp_path, database, Path(os.environ["PREFECT_HOME"])], *outputs) == []


def crashed_run(tmp_path: Path, docs: Path, api_url: str) -> list[str]:
    """A run killed (SIGKILL) while its requests are in flight; its stdout and stderr."""
    with Emulator(api_key=CANARY, latency=30.0) as slow:
        command = [*COMMAND, "run", str(docs), "--out", str(tmp_path / "out-crash")]
        env = cli_env(tmp_path, CANARY, slow.base_url, api_url)
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        deadline = time.monotonic() + TIMEOUT_S
        while not any(r.path.endswith("/chat/completions") for r in slow.records) and slow.max_in_flight == 0:
            assert process.poll() is None and time.monotonic() < deadline, "the run ended before sending"
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGKILL)  # the run and anything it started
        stdout, stderr = process.communicate(timeout=60)
    return [stdout, stderr]
