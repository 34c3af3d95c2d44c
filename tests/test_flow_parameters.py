"""What `docrouter run` stores as its flow run's parameters, read back from the Prefect API: absolute paths, and
large prompts and schemas by reference (a file), never inline."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import REPO
from docrouter.errors import ConfigError
from docrouter.run.config import RunConfig, config_from_parameters
from docrouter.run.references import INLINE_TEXT_CHARS
from pipeline import results
from test_cli import COMMAND, TIMEOUT_S
from test_early_checks import flow_runs_writing_to

MEGABYTE = 1_000_000
SOME_SAMPLES = ("--include", "born_digital_text.pdf", "--include", "receipt.png")


def run_from(cwd: Path, *args: str | Path, api_url: str) -> subprocess.CompletedProcess[str]:
    """The console script run from `cwd` (relative paths are relative to it), against the test's Prefect server."""
    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_LOGGING_LEVEL": "WARNING"}
    command = [*COMMAND, *map(str, args)]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


@pytest.fixture(scope="module")
def big_texts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("texts")
    texts = {
        "prompt": "Summarize this document in one sentence. " + "This line is filler. " * (MEGABYTE // 21),
        "system": "You answer briefly. " + "Really. " * (100_000 // 8),
        "schema": json.dumps(
            {
                "type": "object",
                "properties": {"title": {"type": "string", "description": "The title. " + "t" * MEGABYTE}},
                "required": ["title"],
            }
        ),
    }
    paths = {name: folder / f"{name}.txt" for name in texts}
    for name, text in texts.items():
        paths[name].write_text(text, encoding="utf-8")
    return paths


def test_a_1_mb_prompt_and_schema_work_and_reach_the_flow_run_by_reference(
    prefect_api_url: str, big_texts: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    done = run_from(
        REPO,
        "run", "data/samples", "--out", out, "--offline", *SOME_SAMPLES,
        "--prompt-file", big_texts["prompt"], "--schema", big_texts["schema"],
        "--system-prompt-file", big_texts["system"],
        api_url=prefect_api_url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [flow_run] = flow_runs_writing_to(prefect_api_url, out)
    parameters = flow_run["parameters"]
    assert len(json.dumps(parameters)) < 4 * INLINE_TEXT_CHARS, sorted(parameters)  # no megabyte inline
    assert Path(parameters["prompt_file"]).read_text() == big_texts["prompt"].read_text()
    assert Path(parameters["prompt_file"]).parent == out / "_inputs"
    assert Path(parameters["system_prompt_file"]).read_text() == big_texts["system"].read_text()
    assert parameters["extraction_schema"] == str(big_texts["schema"])  # a --schema file: its own path
    rows = results(out)
    asked = RunConfig(
        sources=("x",),
        out="x",
        prompt=big_texts["prompt"].read_text(),
        schema=big_texts["schema"].read_text(),
        system_prompt=big_texts["system"].read_text(),
    )
    assert len(rows) == 2 and set(rows["status"]) == {"ok"}, rows[["path", "status", "error_message"]]
    assert set(rows["prompt_sha256"]) == {asked.prompt_sha256}  # the flow read back exactly what was asked


def test_the_flow_run_stores_absolute_paths_for_relative_ones(prefect_api_url: str, tmp_path: Path) -> None:
    done = run_from(
        tmp_path, "run", os.path.relpath(REPO / "data" / "samples", tmp_path), "--out", "out", "--offline",
        "--include", "receipt.png", api_url=prefect_api_url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [flow_run] = flow_runs_writing_to(prefect_api_url, tmp_path / "out")
    assert flow_run["parameters"]["sources"] == [str(REPO / "data" / "samples")]
    assert flow_run["parameters"]["prompt"] == RunConfig(sources=("x",), out="x").prompt  # small: inline
    assert "prompt_file" not in flow_run["parameters"] or flow_run["parameters"]["prompt_file"] is None


def test_a_deployment_gives_a_prompt_inline_or_by_file_not_both(tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("List every invoice number.")
    base = {"sources": [str(tmp_path)], "out": str(tmp_path / "out")}
    assert config_from_parameters({**base, "prompt_file": str(prompt)}).prompt == "List every invoice number."
    with pytest.raises(ConfigError, match="give prompt or prompt_file, not both"):
        config_from_parameters({**base, "prompt": "Summarize.", "prompt_file": str(prompt)})
    with pytest.raises(ConfigError, match="cannot read system_prompt_file"):
        config_from_parameters({**base, "system_prompt_file": str(tmp_path / "missing.txt")})
