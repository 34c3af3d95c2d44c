"""Prefect's temporary API server for `docrouter run`, in its own session: Ctrl-C in the terminal reaches the
whole foreground process group, and a server that dies with it leaves the flow retrying a dead API for minutes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import prefect
from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED, get_current_settings

from docrouter.run.stopping import Stopper

_PR_SET_PDEATHSIG = 1


class _OwnSessionServer(SubprocessASGIServer):
    """Prefect's temporary server, started exactly as Prefect does, but in a new session (no terminal signals)
    and told to stop when this process dies (Linux), so a kill -9 leaves no server behind."""

    def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
        args = [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent), "--factory"]
        args += ["prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port)]
        args += ["--log-level", "error", "--lifespan", "on"]
        env = {
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
            **get_current_settings().to_environment_variables(exclude_unset=True),
        }
        return subprocess.Popen(args, env=env, start_new_session=True, preexec_fn=_stop_with_parent)


def _stop_with_parent() -> None:
    """In the server's process before exec: SIGTERM when the process that started it dies."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@contextmanager
def temporary_server(stopper: Stopper) -> Iterator[None]:
    """Start the temporary server ourselves when no PREFECT_API_URL is set (Prefect's clients then find it
    running: they ask SubprocessASGIServer() for it, which returns this instance). It stops at exit, after
    Prefect's log and event workers have flushed to it (their exit hooks run first), as Prefect's own does."""
    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        yield
        return
    server = _OwnSessionServer()
    server.start()
    stopper.on_abort(lambda: server.server_process.kill() if server.server_process else None)
    yield
