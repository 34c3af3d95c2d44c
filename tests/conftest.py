"""Shared fixtures: an isolated Prefect home, one Prefect test server per session, sample folders."""

from __future__ import annotations

import gc
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pytest.mark.expression import Expression  # how -m expressions are evaluated

# Before anything imports prefect: a private PREFECT_HOME, no telemetry, quiet logs.
_HOME = tempfile.mkdtemp(prefix="docrouter-prefect-home-")
os.environ["PREFECT_HOME"] = _HOME
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.pop("PREFECT_API_URL", None)
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="docrouter-cache-")
os.environ.pop("OPENROUTER_API_KEY", None)
os.environ.pop("OPENROUTER_BASE_URL", None)

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"
CORPUS = REPO.parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def prefect_api_url() -> Iterator[str]:
    """A real Prefect server for the session (the flow's runs, artifacts and logs land there)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield str(PREFECT_API_URL.value())


# Prefect 3.8's own client leaves a socket to its API server for the garbage collector (seen with a bare
# flow under prefect_test_harness, no docrouter code involved). Tests that run flows tolerate exactly that
# warning, and collect garbage before they end so it cannot surface in an unrelated test.
PREFECT_SOCKET_LEAK = "ignore:unclosed <socket.socket:ResourceWarning"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "prefect_api_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.filterwarnings(PREFECT_SOCKET_LEAK))
            item.add_marker(pytest.mark.slow)  # a test that needs the Prefect server is slow, marked or not


# The quick loop (`pytest -m "not slow"`) does not even import a module marked slow as a whole: importing
# them (prefect, openai, the flows) is most of what collecting them costs.
_SLOW_MODULE = re.compile(r"^pytestmark = \[?\s*pytest\.mark\.slow\b", re.MULTILINE)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    expression = config.getoption("markexpr")
    if not expression or Expression.compile(expression).evaluate(lambda name, **_: name == "slow"):
        return None  # slow tests are selected
    return True if _SLOW_MODULE.search(collection_path.read_text()) else None


@pytest.fixture(autouse=True)
def _collect_prefect_sockets(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "prefect_api_url" in request.fixturenames:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
