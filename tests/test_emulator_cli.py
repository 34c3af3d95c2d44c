"""`python -m docrouter.emulator` (what `docrouter emulator` runs): a separate process other tests can drive."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from docrouter.emulator import main_emulator
from test_cli import docrouter_cli

pytestmark = pytest.mark.slow  # starts servers, subprocesses or Prefect flows

REPO = Path(__file__).resolve().parents[1]


class Output:
    """A process's stdout lines, read by a thread so that waiting for one is bounded."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(process,), daemon=True)
        self._thread.start()

    def _pump(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._lines.put(line.rstrip("\n"))

    def line(self, timeout: float = 20.0) -> str:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("the emulator printed nothing in time") from None

    def rest(self) -> str:
        self._thread.join(timeout=20)
        return "\n".join(self._lines.queue)


@pytest.fixture
def emulator_process() -> Iterator[tuple[subprocess.Popen[str], Output]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "docrouter.emulator", "--port", "0", "--fault", "429_bare=0.0", "--credits", "5"]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    try:
        yield process, Output(process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


def test_process_prints_base_url_and_key_serves_and_stops_on_ctrl_c(
    emulator_process: tuple[subprocess.Popen[str], Output],
) -> None:
    process, output = emulator_process
    base_url = output.line().removeprefix("OPENROUTER_BASE_URL=")
    key = output.line().removeprefix("OPENROUTER_API_KEY=")
    output.line()  # the human note
    root = base_url.removesuffix("/api/v1")
    headers = {"Authorization": f"Bearer {key}"}

    httpx.post(f"{root}/_emulator/faults", json={"rate_429": 1.0})
    limited = httpx.post(
        f"{base_url}/chat/completions",
        headers=headers,
        json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    )
    remaining = httpx.get(f"{base_url}/key", headers=headers).json()["data"]["limit_remaining"]
    logged = output.line()
    process.send_signal(signal.SIGINT)
    process.wait(timeout=20)
    rest = output.rest()

    assert key.startswith("sk-or-v1-emulator")
    assert limited.status_code == 429 and remaining == 5
    assert logged.startswith("429 /api/v1/chat/completions openai/gpt-4o-mini fault=429")
    assert process.returncode == 0 and "stopped" in rest


def test_sigterm_stops_the_process_cleanly(emulator_process: tuple[subprocess.Popen[str], Output]) -> None:
    process, output = emulator_process
    for _ in range(3):
        output.line()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=20)
    assert process.returncode == 0 and "stopped" in output.rest()


def test_bad_fault_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main_emulator(["--fault", "teapot=1"]) == 2
    assert "unknown fault" in capsys.readouterr().err


def test_a_busy_port_is_one_line_not_a_traceback() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = docrouter_cli("emulator", "--port", str(port), "--quiet", timeout_s=120)  # the console script
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
