"""A real `prefect server` on loopback with its workers, as subprocesses a test starts and always stops.

Every subprocess gets its own process group and an output file; stopping collects its descendants first
(Prefect starts flow runs in new sessions, out of the worker's group) so nothing is left behind. Workers
stop before the server: a worker whose server is gone ignores SIGTERM for a long while.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

PREFECT = Path(sys.executable).parent / "prefect"
STARTUP_SECONDS = 120.0
STOP_SECONDS = 20.0


def prefect_executable() -> Path | None:
    """The venv's `prefect` command, or None where it is not installed."""
    return PREFECT if PREFECT.exists() else None


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def isolated_env(home: Path, api_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment minus any Prefect or OpenRouter settings, pointed at one private server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OPENROUTER_", "DOCROUTER_"))}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_UI_ENABLED="false",
        PREFECT_LOGGING_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra or {})
    return env


@dataclass
class Service:
    """One long-running subprocess in its own process group, its output in a file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, grace: float = STOP_SECONDS) -> None:
        """SIGTERM the group, wait up to `grace`, then SIGKILL whatever of the tree is left."""
        try:
            tree = [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(tree, timeout=grace)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(alive, timeout=5)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def start_service(name: str, argv: list[str], env: Mapping[str, str], cwd: Path, logs: Path) -> Service:
    """Start `argv` in a new session with stdout and stderr going to logs/<name>.log."""
    log = logs / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv, cwd=cwd, env=dict(env), stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Service(name=name, process=process, log=log)


@dataclass
class PrefectServer:
    """A running server, the environment that points clients at it, and the workers started against it."""

    home: Path
    api_url: str
    service: Service
    workers: list[Service] = field(default_factory=list)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return isolated_env(self.home, self.api_url, extra)

    def cli(self, *args: str, cwd: Path, extra_env: Mapping[str, str] | None = None, timeout: float = 180) -> str:
        """Run `prefect ARGS` against this server; its output, or an AssertionError that shows it."""
        return self.run([str(PREFECT), *args], cwd, extra_env, timeout)

    def python(self, code: str, extra_env: Mapping[str, str] | None = None, timeout: float = 120) -> str:
        """Run Python `code` as a client of this server (e.g. to save a block)."""
        return self.run([sys.executable, "-c", code], self.home, extra_env, timeout)

    def run(self, argv: list[str], cwd: Path, extra_env: Mapping[str, str] | None, timeout: float) -> str:
        """Run a client command to its end; its output, or an AssertionError that shows the output."""
        done = subprocess.run(argv, cwd=cwd, env=self.env(extra_env), capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(argv[:4])} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start_worker(self, pool: str, name: str, cwd: Path, extra_env: Mapping[str, str], limit: int) -> Service:
        """A `prefect worker start` on `pool` that polls every second."""
        env = self.env({"PREFECT_WORKER_QUERY_SECONDS": "1", **extra_env})
        argv = [str(PREFECT), "worker", "start", "--pool", pool, "--name", name, "--limit", str(limit)]
        worker = start_service(name, argv, env, cwd, self.home)
        self.workers.append(worker)
        return worker

    def stop_workers(self) -> None:
        while self.workers:
            self.workers.pop().stop()

    def api(self) -> httpx.Client:
        """A plain HTTP client for the server's REST API (tests read runs, artifacts and logs through it)."""
        return httpx.Client(base_url=self.api_url.rstrip("/") + "/", timeout=30)


def wait_healthy(server: PrefectServer, timeout: float = STARTUP_SECONDS) -> None:
    """Return once /api/health answers; fail with the server's output if it exits or the time is up."""
    deadline = time.monotonic() + timeout
    with server.api() as api:
        while time.monotonic() < deadline:
            if server.service.process.poll() is not None:
                raise AssertionError(f"prefect server exited early:\n{server.service.output()[-4000:]}")
            with contextlib.suppress(httpx.TransportError):
                if api.get("health").status_code == 200:
                    return
            time.sleep(0.25)
    raise AssertionError(f"prefect server not healthy after {timeout:.0f}s:\n{server.service.output()[-4000:]}")


@contextlib.contextmanager
def running_prefect_server(cwd: Path, timeout: float = STARTUP_SECONDS) -> Iterator[PrefectServer]:
    """A fresh server (own PREFECT_HOME and SQLite DB in a temp dir); workers, then server, stopped on exit."""
    home = Path(tempfile.mkdtemp(prefix="docrouter-prefect-e2e-"))
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    argv = [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    service = start_service("server", argv, isolated_env(home, api_url), cwd, home)
    server = PrefectServer(home=home, api_url=api_url, service=service)
    try:
        wait_healthy(server, timeout)
        yield server
    finally:
        server.stop_workers()
        service.stop()
        shutil.rmtree(home, ignore_errors=True)
