"""The `docrouter` console script as a user runs it: subprocesses, exit codes, stdout and stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import SAMPLES
from docrouter.emulator import Emulator
from pipeline import results

pytestmark = pytest.mark.slow  # starts servers, subprocesses or Prefect flows

SCRIPT = Path(sys.executable).with_name("docrouter")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "docrouter_commands.cli"]
TIMEOUT_S = 240

# SPEC.md section 2: the flags of `run`, and the selection and routing flags `plan` shares with it.
PLAN_FLAGS = ("--model", "--prompt", "--prompt-file", "--engine", "--include", "--exclude", "--offline")
RUN_FLAGS = (*PLAN_FLAGS, "--out", "--budget", "--concurrency", "--max-attempts", "--reprocess", "--retry-failed")
ENGINES = ("auto", "pdf-text", "mistral-ocr", "native", "local-text")
COMMANDS = ("run", "plan", "report", "ask", "emulator")


def docrouter_cli(
    *args: str | Path, env: dict[str, str] | None = None, timeout_s: float = TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run the console script to completion (bounded); the environment has no API key unless `env` adds one."""
    full_env = {**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING", **(env or {})}
    command = [*COMMAND, *map(str, args)]
    return subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=timeout_s, check=False)


def chat_records(emu: Emulator) -> list:
    return [r for r in emu.records if r.path.endswith("/chat/completions")]


@dataclass(frozen=True)
class OfflineRun:
    out: Path
    done: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def offline_run(prefect_api_url: str, tmp_path_factory: pytest.TempPathFactory) -> OfflineRun:
    out = tmp_path_factory.mktemp("cli") / "out"
    done = docrouter_cli("run", SAMPLES, "--out", out, "--offline", env={"PREFECT_API_URL": prefect_api_url})
    return OfflineRun(out, done)


def test_offline_run_exits_0_prints_a_summary_and_writes_results(offline_run: OfflineRun) -> None:
    assert offline_run.done.returncode == 0, offline_run.done.stderr[-2000:]
    headline = offline_run.done.stdout.splitlines()[0]
    assert headline.startswith("run ") and "19 files; failed 3, ok 14, skipped 2" in headline
    assert "money spent: $" in offline_run.done.stdout
    assert len(results(offline_run.out)) == 19


def test_report_prints_totals_by_status_engine_and_model(offline_run: OfflineRun) -> None:
    done = docrouter_cli("report", offline_run.out)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "19 documents" in lines[1]
    status_rows = {line.split()[0]: line.split()[1] for line in lines if line.split()[:1] in (["ok"], ["failed"])}
    assert status_rows == {"ok": "14", "failed": "3"}
    assert any(line.startswith("google/gemini-2.5-flash") for line in lines)
    assert any(line.startswith("money spent: $") for line in lines)


def test_plan_offline_prints_a_row_per_file_and_totals() -> None:
    done = docrouter_cli("plan", SAMPLES, "--offline")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:5] == ["PATH", "PAGES", "ENGINE", "EXPECTED", "AT"]
    assert sum(line.startswith(("receipt", "born_digital", "scan")) for line in lines) == 9
    assert any(line.startswith("19 files: 13 to send") for line in lines)


def test_plan_sends_no_chat_request(tmp_path: Path) -> None:
    with Emulator() as emu:
        done = docrouter_cli("plan", SAMPLES, "--base-url", emu.base_url, env={"OPENROUTER_API_KEY": emu.api_key})
        records = emu.records
    assert done.returncode == 0, done.stderr
    assert chat_records(emu) == []
    assert emu.billed_usd == 0
    assert any(r.path.endswith("/models") for r in records)  # it priced from the live catalogue


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "not_a_folder.txt"
    path.write_text("x")
    return path


RUN = ["run", SAMPLES, "--out", "{tmp}/o"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param([*RUN, "--offline", "--no-such-flag"], "--no-such-flag", id="bad-flag"),
        pytest.param(["run", SAMPLES, "--offline"], "--out", id="missing-out"),
        pytest.param(
            ["run", "{tmp}/no/such", "--out", "{tmp}/o", "--offline"], "source not found", id="missing-source"
        ),
        pytest.param(["run", SAMPLES, "--out", "{file}", "--offline"], "cannot write to", id="out-is-a-file"),
        pytest.param(["run", SAMPLES, "--out", "{file}/sub", "--offline"], "cannot write to", id="out-under-a-file"),
        pytest.param([*RUN, "--offline", "--budget", "-1"], "--budget", id="budget-1"),
        pytest.param([*RUN, "--offline", "--engine", "ocr"], "--engine", id="bad-engine"),
        pytest.param([*RUN, "--prompt-file", "{tmp}/no.txt"], "--prompt-file", id="prompt"),
        pytest.param(RUN, "OPENROUTER_API_KEY", id="no-key-not-offline"),
        pytest.param(["report", "{tmp}/nothing-here"], "nothing-here", id="report-missing-dir"),
        pytest.param(
            ["ask", "{tmp}/nothing-here", "--doc", "a.pdf", "what?"],
            "nothing-here is not a results folder",
            id="ask-missing-dir",
        ),
    ],
)
def test_a_bad_invocation_exits_non_zero_with_one_line_on_stderr(
    args: list, says: str, tmp_path: Path, a_file: Path
) -> None:
    done = docrouter_cli(*[str(a).format(tmp=tmp_path, file=a_file) for a in args])
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("docrouter"), done.stderr[-3000:]
    assert says in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "o" / "results").exists()


def test_a_rejected_key_stops_the_run_with_exit_1_and_one_error_line(prefect_api_url: str, tmp_path: Path) -> None:
    env = {"OPENROUTER_API_KEY": "sk-wrong", "PREFECT_API_URL": prefect_api_url}
    with Emulator(api_key="sk-right") as emu:
        done = docrouter_cli("run", SAMPLES, "--out", tmp_path / "o", "--base-url", emu.base_url, env=env)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    ours = [line for line in lines if line.startswith("docrouter: error")]
    assert len(ours) == 1 and lines[-1] == ours[0] and ours[0].startswith("docrouter: error: run stopped")
    assert "401" in ours[0] or "key" in ours[0].lower()
    assert "Traceback" not in done.stderr  # Prefect records the failed run; it does not dump our stack


def test_help_lists_every_command() -> None:
    done = docrouter_cli("--help")
    assert done.returncode == 0
    assert all(command in done.stdout for command in COMMANDS)


@pytest.mark.parametrize(("command", "flags"), [("run", RUN_FLAGS), ("plan", PLAN_FLAGS)])
def test_command_help_lists_the_spec_flags_and_engines(command: str, flags: tuple[str, ...]) -> None:
    done = docrouter_cli(command, "--help")
    assert done.returncode == 0
    assert [flag for flag in flags if flag not in done.stdout.split()] == []
    assert "{" + ",".join(ENGINES) + "}" in done.stdout


CANARY = "sk-or-v1-canary-0123456789abcdef-never-print-me"


@pytest.fixture
def canary_run(prefect_api_url: str, tmp_path: Path) -> Iterator[tuple[Path, subprocess.CompletedProcess[str], str]]:
    out = tmp_path / "out"
    env = {"OPENROUTER_API_KEY": CANARY, "PREFECT_API_URL": prefect_api_url}
    with Emulator(api_key=CANARY) as emu:
        done = docrouter_cli("run", SAMPLES, "--out", out, "--base-url", emu.base_url, env=env)
        assert chat_records(emu), "the key was not used"
    yield out, done, prefect_api_url


def test_the_api_key_never_appears_in_output_files_or_prefect_parameters(
    canary_run: tuple[Path, subprocess.CompletedProcess[str], str],
) -> None:
    out, done, api_url = canary_run
    assert done.returncode == 0, done.stderr[-2000:]
    assert (results(out).status == "ok").sum() == 14
    assert CANARY not in done.stdout and CANARY not in done.stderr
    leaking = [p for p in out.rglob("*") if p.is_file() and CANARY.encode() in p.read_bytes()]
    assert leaking == []
    runs = prefect_flow_runs(api_url, str(out))
    assert len(runs) == 1 and runs[0]["parameters"]["out"] == str(out)
    assert CANARY not in json.dumps(runs) + json.dumps(prefect_filter(api_url, "artifacts", "CREATED_DESC"))


def prefect_flow_runs(api_url: str, out: str) -> list[dict]:
    """The latest flow runs whose `out` parameter is `out`, as the Prefect API returns them."""
    found = prefect_filter(api_url, "flow_runs", "START_TIME_DESC")
    return [run for run in found if run.get("parameters", {}).get("out") == out]


def prefect_filter(api_url: str, what: str, sort: str) -> list[dict]:
    """The 50 latest objects of one kind from the Prefect REST API (explicit limit: its server needs one)."""
    with httpx.Client(base_url=api_url, timeout=30) as client:
        response = client.post(f"/{what}/filter", json={"sort": sort, "limit": 50, "offset": 0})
        return response.raise_for_status().json()


def test_plan_json_is_one_object_on_stdout() -> None:
    done = docrouter_cli("plan", SAMPLES, "--offline", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert len(data["documents"]) == 19 and data["max_usd"] >= data["expected_usd"] > 0


def test_command_help_shows_defaults_and_examples() -> None:
    done = docrouter_cli("run", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "(default: cloudflare-ai)" in text and "(default: 100)" in text and "(default 0.002)" in text
    assert "examples: docrouter run data/samples --out out --offline" in text
