"""`run` refuses a bad model, engine or prompt in one line before Prefect starts (no server, no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SAMPLES
from test_cli import docrouter_cli

pytestmark = pytest.mark.slow  # runs the command line in a subprocess

TEXT_ONLY = "meta-llama/llama-3.3-70b-instruct"


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        pytest.param(["--model", "google/gemini-2.5-flashh"], "did you mean google/gemini-2.5-flash", id="model"),
        pytest.param(["--model", TEXT_ONLY, "--engine", "native"], "does not accept file input", id="engine"),
        pytest.param(["--prompt", ""], "the prompt is empty", id="empty-prompt"),
        pytest.param(["--prompt", "   "], "the prompt is empty", id="blank-prompt"),
    ],
)
def test_a_bad_run_is_refused_before_any_prefect_server_starts(flags: list[str], says: str, tmp_path: Path) -> None:
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = {"PREFECT_HOME": str(home), "PREFECT_API_URL": ""}  # a run would start a temporary server here
    done = docrouter_cli("run", SAMPLES, "--out", tmp_path / "out", "--offline", *flags, env=env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and says in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert list(home.iterdir()) == []  # no Prefect server, no database: nothing started
