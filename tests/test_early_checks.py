"""`run` refuses a bad model, engine or prompt in one line before Prefect starts (no server, no database), and
a missing key block right after the server starts, before any document work."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from conftest import SAMPLES
from docrouter.emulator import Emulator
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


def test_a_prompt_too_long_for_the_model_is_refused_before_any_prefect_server_starts(tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Summarize this. " + "x" * 1_000_000)  # ~250k tokens: over gpt-4o-mini's 128k context
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = {"PREFECT_HOME": str(home), "PREFECT_API_URL": ""}
    flags = ["--model", "openai/gpt-4o-mini", "--prompt-file", prompt]
    done = docrouter_cli("run", SAMPLES, "--out", tmp_path / "out", "--offline", *flags, env=env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1, done.stderr[-2000:]
    assert "the prompt is too long for openai/gpt-4o-mini" in done.stderr and "128,000-token context" in done.stderr
    assert list(home.iterdir()) == []


def test_a_missing_key_block_is_one_line_read_before_any_document_work(prefect_api_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with Emulator() as emu:  # GET /models for the early model check; nothing else may reach it
        done = docrouter_cli(
            "run", SAMPLES, "--out", out, "--base-url", emu.base_url, "--key-block", "no-such-block",
            env={"PREFECT_API_URL": prefect_api_url},
        )  # fmt: skip
        paths = {record.path for record in emu.records}
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "cannot load Prefect Secret block 'no-such-block'" in done.stderr
    assert not any(path.endswith("/chat/completions") for path in paths)
    assert flow_runs_writing_to(prefect_api_url, out) == []  # no flow run started: no discovery, no inspection
    assert not (out / "results").exists() and not (out / "_journal").exists()


def flow_runs_writing_to(api_url: str, out: Path) -> list[dict]:
    """The flow runs on the Prefect server whose `out` parameter is `out` (read back from its API)."""
    runs = httpx.post(f"{api_url}/flow_runs/filter", json={"limit": 200}, timeout=30).json()
    return [run for run in runs if run["parameters"].get("out") == str(out)]


def test_a_saved_key_block_is_read_and_used(prefect_api_url: str, tmp_path: Path) -> None:
    from prefect.blocks.system import Secret

    key = "sk-or-v1-from-the-block"
    Secret(value=key).save("docrouter-test-key", overwrite=True)  # on the session's Prefect server
    out = tmp_path / "out"
    with Emulator(api_key=key) as emu:  # answers only that key: a 401 would stop the run with exit 1
        done = docrouter_cli(
            "run", SAMPLES, "--out", out, "--base-url", emu.base_url, "--key-block", "docrouter-test-key",
            "--include", "receipt.png", env={"PREFECT_API_URL": prefect_api_url},
        )  # fmt: skip
        chats = [record for record in emu.records if record.path.endswith("/chat/completions")]
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(chats) == 1 and key not in done.stdout + done.stderr
