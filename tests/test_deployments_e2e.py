"""The deployments in prefect.yaml, and a sharded backfill through a real Prefect server, work pool and two workers.

The fast tests check the backfill's arithmetic and the deployment file against the flows it names. The slow
ones start `prefect server` on loopback, deploy the real prefect.yaml, start two process workers and the
emulator, run the backfill deployment over generated documents, and check the union of the shards' outputs.
"""

from __future__ import annotations

import inspect
import json
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import samples
from docrouter.errors import ConfigError
from docrouter.route.routing import usd
from docrouter.run.summary import top_failures
from docrouter_flows.backfill import SHARD_DEPLOYMENT, check_parameters, docrouter_backfill, shard_parameters
from docrouter_flows.backfill_report import (
    ShardRun,
    backfill_markdown,
    backfill_summary,
    read_known_failures,
    shard_budgets,
    unfinished_message,
)
from docrouter_flows.run import docrouter_run
from prefect_server import PrefectServer, Service, prefect_executable, running_prefect_server

# Its end-to-end tests start Prefect servers and workers; the others import the flows (and so prefect).
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
POOL = "docrouter-pool"
KEY_BLOCK = "openrouter-api-key"
SHARDS = 3
BUDGET = 1.0


# --- the backfill's arithmetic -------------------------------------------------------------------------------


@pytest.mark.parametrize(("budget", "shards"), [(10.0, 3), (1.0, 7), (0.01, 4), (20.0, 1), (0.0, 5)])
def test_shard_budgets_never_add_up_to_more_than_the_budget(budget: float, shards: int) -> None:
    shares = shard_budgets(budget, shards)
    assert len(shares) == shards
    assert sum(s for s in shares if s is not None) <= budget
    assert all(s is not None and s >= budget / shards - 1e-6 for s in shares)


def test_shard_budgets_without_a_budget_leave_every_shard_uncapped() -> None:
    assert shard_budgets(None, 3) == [None, None, None]


def test_shard_parameters_are_exactly_parameters_of_the_shard_flow() -> None:
    child = {"sources": ["/a"], "out": "/o", "key_block": "blk", "model": "m"}
    params = shard_parameters(child, 2, 4, 1.5)
    assert params == {**child, "shard": 2, "shards": 4, "budget": 1.5}
    assert set(params) <= set(inspect.signature(docrouter_run.fn).parameters)


def test_every_parameter_the_backfill_passes_on_exists_on_the_shard_flow() -> None:
    own = {"shards", "budget", "deployment_name", "poll_seconds", "timeout_hours"}
    passed_on = set(inspect.signature(docrouter_backfill.fn).parameters) - own
    assert passed_on | {"shard", "shards", "budget"} <= set(inspect.signature(docrouter_run.fn).parameters)


def test_backfill_rejects_bad_parameters_before_creating_any_run() -> None:
    child = {
        "sources": ["/a"],
        "out": "/o",
        "model": "m",
        "prompt": "p",
        "engine": "auto",
        "concurrency": 4,
        "max_attempts": 2,
        "max_tokens": 10,
        "batch_size": 5,
    }
    with pytest.raises(ConfigError, match="shard"):
        check_parameters(child, None, 0)
    with pytest.raises(ConfigError, match="--engine"):
        check_parameters({**child, "engine": "teleport"}, None, 2)
    with pytest.raises(ConfigError, match="--budget"):
        check_parameters(child, -1.0, 2)


def _shard(shard: int, state: str, run_id: str | None, message: str = "", final: bool = True) -> ShardRun:
    return ShardRun(shard, uuid.uuid4(), f"bf-shard-{shard}-of-3", state, final, message, run_id)


def _rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_id": ["r0", "r0", "r1", "r1", "r1", "other"],
            "path": ["a.pdf", "b.pdf", "c.pdf", "d.pdf", "e.png", "z.pdf"],
            "status": ["ok", "failed", "ok", "failed", "failed", "ok"],
            "engine": ["pdf-text", None, "mistral-ocr", None, None, "native"],
            "error_type": [None, "corrupt", None, "encrypted", "corrupt", None],
            "error_message": [None, "not a PDF: truncated", None, "needs a password", "bad xref", None],
            "cost_usd": [0.001, 0.0, 0.004, 0.0, 0.0, 9.0],
        }
    )


def test_backfill_summary_counts_each_shards_rows_and_money_against_its_share() -> None:
    rows = _rows()
    rows = rows[rows["run_id"] != "other"]
    summary = backfill_summary([_shard(0, "Completed", "r0"), _shard(1, "Completed", "r1")], rows, 1.0)
    assert summary["documents"] == 5
    assert summary["by_status"] == {"failed": 3, "ok": 2}
    assert summary["by_engine"] == {"mistral-ocr": 1, "pdf-text": 1}
    assert summary["spent_usd"] == pytest.approx(0.005)
    first, second = summary["shards"]
    assert (first["documents"], first["ok"], first["failed"], first["budget_usd"]) == (2, 1, 1, 0.5)
    assert (second["documents"], second["ok"], second["failed"], second["spent_usd"]) == (3, 1, 2, 0.004)


def test_backfill_summary_adds_up_the_known_failures_its_shards_left_alone(tmp_path: Path) -> None:
    (tmp_path / "_runs").mkdir()
    for run_id, known in (("r0", 3), ("r1", 2), ("other", 50)):
        (tmp_path / "_runs" / f"{run_id}.json").write_text(json.dumps({"run_id": run_id, "known_failures": known}))
    known = read_known_failures(str(tmp_path), ["r0", "r1", "never-started"])
    summary = backfill_summary([_shard(0, "Completed", "r0")], _rows(), None, known_failures=known)
    assert summary["known_failures"] == 5
    assert "5 known failures unchanged" in backfill_markdown(summary)


def test_top_failures_put_the_commonest_error_first_with_an_example_to_act_on() -> None:
    failures = top_failures(_rows())
    assert [(f["error_type"], f["count"]) for f in failures] == [("corrupt", 2), ("encrypted", 1)]
    assert failures[0]["examples"] == [
        {"path": "b.pdf", "message": "not a PDF: truncated"},
        {"path": "e.png", "message": "bad xref"},
    ]


def test_unfinished_message_names_each_shard_that_did_not_complete_and_why() -> None:
    runs = [
        _shard(0, "Completed", "r0"),
        _shard(1, "Failed", None, "run stopped: HTTP 402 credits"),
        _shard(2, "Running", None, final=False),
    ]
    message = unfinished_message(runs)
    assert message is not None
    assert message.startswith("2 of 3 shards did not complete")
    assert "shard 1 (bf-shard-1-of-3) Failed: run stopped: HTTP 402 credits" in message
    assert "shard 2 (bf-shard-2-of-3) still Running at the timeout" in message
    assert unfinished_message(runs[:1]) is None


# --- prefect.yaml against the flows it names ---------------------------------------------------------------


def _deployments() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    return {d["name"]: d for d in config["deployments"]}


def test_prefect_yaml_has_the_three_jobs_and_the_shard_deployment_on_one_process_pool() -> None:
    deployments = _deployments()
    assert set(deployments) == {"nightly-summaries", "backfill", "backfill-shard", "ocr-budgeted"}
    assert {d["work_pool"]["name"] for d in deployments.values()} == {POOL}
    assert deployments["nightly-summaries"]["schedules"][0]["cron"] == "0 2 * * *"
    assert deployments["ocr-budgeted"]["parameters"]["budget"] > 0
    assert deployments["backfill"]["parameters"]["deployment_name"] == SHARD_DEPLOYMENT
    assert "schedules" not in deployments["backfill-shard"]


def test_prefect_yaml_parameters_exist_on_their_flows_and_name_a_key_block_never_a_key() -> None:
    flows = {
        "flows/docrouter_flows/run.py:docrouter_run": docrouter_run,
        "flows/docrouter_flows/backfill.py:docrouter_backfill": docrouter_backfill,
    }
    for name, deployment in _deployments().items():
        flow = flows[deployment["entrypoint"]]
        parameters = deployment["parameters"]
        assert set(parameters) <= set(inspect.signature(flow.fn).parameters), name
        assert parameters["key_block"] == KEY_BLOCK, name
        assert not any("key" in p and p != "key_block" for p in parameters), name
        assert "sk-or-" not in json.dumps(parameters), name


# --- end to end: server, pool, two workers, emulator, a sharded backfill -----------------------------------


@dataclass(frozen=True)
class BackfillRun:
    """What the e2e backfill left behind, read while the server still runs."""

    server: PrefectServer
    docs: Path
    out: Path
    key: str
    expected_paths: set[str]
    results: pd.DataFrame
    workers: list[Service]
    watch_output: str
    billed_usd: float  # what the emulator charged, all shards together


def write_documents(root: Path) -> set[str]:
    """~20 small documents with distinct content, one copy under a second path, one broken PDF; their paths."""
    files: dict[str, bytes] = {}
    for i in range(12):
        files[f"reports/report-{i:02d}.pdf"] = samples.text_pdf(pages=1 + i % 2, text=f"Report number {i}. " * 20)
    for i in range(6):
        files[f"receipts/receipt-{i}.png"] = samples.png(w=200 + 10 * i, h=120 + 5 * i)
    files["copies/report-00-again.pdf"] = files["reports/report-00.pdf"]
    files["broken/truncated_download.pdf"] = samples.truncated_pdf()
    for relative, data in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    return set(files)


@pytest.fixture(scope="module")
def backfill_run() -> Iterator[BackfillRun]:
    if prefect_executable() is None:
        pytest.skip("the `prefect` executable is not installed next to this Python")
    from docrouter.emulator import Emulator
    from docrouter.store.store import read_results

    key = "sk-or-v1-e2e-canary-" + secrets.token_hex(12)
    scratch = Path(tempfile.mkdtemp(prefix="docrouter-e2e-"))
    docs, out = scratch / "docs", scratch / "out"
    try:
        expected = write_documents(docs)
        with Emulator(api_key=key) as emulator, running_prefect_server(REPO) as server:
            save_secret(server, key)
            server.cli("work-pool", "create", POOL, "--type", "process", cwd=scratch)
            server.cli("--no-prompt", "deploy", "--all", cwd=REPO)
            worker_env = {"DOCROUTER_HOME": str(REPO), "OPENROUTER_BASE_URL": emulator.base_url}
            for name in ("w1", "w2"):
                server.start_worker(POOL, name, cwd=scratch, extra_env=worker_env, limit=2)
            workers = list(server.workers)
            watch = run_backfill(server, docs, out, cwd=scratch)
            server.stop_workers()  # before the server, and so their output is complete
            rows = read_results(out)
            yield BackfillRun(server, docs, out, key, expected, rows, workers, watch, emulator.billed_usd)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def save_secret(server: PrefectServer, key: str) -> None:
    """Save the key as the Secret block the deployments name (from the environment: never on a command line)."""
    code = "import os; from prefect.blocks.system import Secret; "
    code += f"Secret(value=os.environ['E2E_KEY']).save({KEY_BLOCK!r}, overwrite=True)"
    server.python(code, extra_env={"E2E_KEY": key})


def run_backfill(server: PrefectServer, docs: Path, out: Path, cwd: Path) -> str:
    """Run the backfill deployment and wait for its end (`--watch` exits non-zero unless it completed)."""
    params = {"sources": [str(docs)], "out": str(out), "shards": SHARDS, "budget": BUDGET, "poll_seconds": 1.0}
    params |= {"concurrency": 4, "batch_size": 4}
    try:
        return server.cli(
            "deployment",
            "run",
            "docrouter-backfill/backfill",
            "--params",
            json.dumps(params),
            "--watch",
            "--watch-timeout",
            "150",
            cwd=cwd,
            timeout=170,
        )
    except AssertionError as exc:
        logs = "\n".join(f"--- {w.name}\n{w.output()[-6000:]}" for w in server.workers)
        raise AssertionError(f"{exc}\n{logs}") from None


@pytest.mark.slow
def test_sharded_backfill_writes_every_document_exactly_once(backfill_run: BackfillRun) -> None:
    rows = backfill_run.results
    assert sorted(rows["path"]) == sorted(backfill_run.expected_paths)
    by_path = rows.set_index("path")
    assert by_path.loc["broken/truncated_download.pdf", "status"] == "failed"
    assert by_path.loc["broken/truncated_download.pdf", "error_type"] == "corrupt"
    good = rows[rows["path"] != "broken/truncated_download.pdf"]
    assert (good["status"] == "ok").all(), good[good["status"] != "ok"][["path", "status", "error_message"]]
    copy, original = by_path.loc["copies/report-00-again.pdf"], by_path.loc["reports/report-00.pdf"]
    assert copy["doc_id"] == original["doc_id"] and copy["run_id"] == original["run_id"]


@pytest.mark.slow
def test_backfill_spends_within_its_budget_and_every_cent_billed_is_in_a_row(backfill_run: BackfillRun) -> None:
    spent = float(backfill_run.results["cost_usd"].fillna(0).sum())
    assert 0 < backfill_run.billed_usd <= BUDGET
    assert spent == pytest.approx(backfill_run.billed_usd, abs=1e-9)


@pytest.mark.slow
def test_backfill_shards_ran_as_separate_flow_runs_on_both_workers(backfill_run: BackfillRun) -> None:
    rows = backfill_run.results
    assert rows["run_id"].nunique() >= 2
    with backfill_run.server.api() as api:
        runs = api.post("flow_runs/filter", json={"limit": 200}).json()
    children = [r for r in runs if r["parameters"].get("shards") == SHARDS and "shard" in r["parameters"]]
    assert sorted(r["parameters"]["shard"] for r in children) == list(range(SHARDS))
    assert {r["state_type"] for r in children} == {"COMPLETED"}
    assert all(r["parameters"]["budget"] == pytest.approx(BUDGET / SHARDS, abs=1e-6) for r in children)
    submitted = {w.name: w.output().count("submitting flow run") for w in backfill_run.workers}
    assert all(count >= 1 for count in submitted.values()), submitted


@pytest.mark.slow
def test_backfill_publishes_its_summary_and_progress_artifacts(backfill_run: BackfillRun) -> None:
    with backfill_run.server.api() as api:
        artifacts = api.post("artifacts/filter", json={"limit": 200}).json()
    by_key = {a["key"]: a for a in artifacts if a["key"]}
    assert {"docrouter-backfill", "docrouter-backfill-shards", "docrouter-backfill-progress"} <= set(by_key)
    assert by_key["docrouter-backfill-progress"]["data"] == 100.0
    shards = json.loads(by_key["docrouter-backfill-shards"]["data"])
    assert [s["state"] for s in shards] == ["Completed"] * SHARDS
    assert sum(s["documents"] for s in shards) == len(backfill_run.expected_paths)
    assert f"{SHARDS} of {SHARDS} shards completed" in by_key["docrouter-backfill"]["data"]
    lines = by_key["docrouter-backfill"]["data"].splitlines()
    assert any(line.startswith("| corrupt | 1 | `broken/truncated_download.pdf` | ") for line in lines)
    assert f"| spent (billed) | {usd(backfill_run.billed_usd)} |" in lines
    assert any(line.startswith("| estimate, expected | ") for line in lines)
    assert any(line.startswith("| always mistral-ocr | ") for line in lines)
    assert f"- results (Parquet dataset; `docrouter report DIR` reads it): `{backfill_run.out / 'results'}/`" in lines


@pytest.mark.slow
def test_api_key_appears_in_no_parameter_artifact_log_or_output(backfill_run: BackfillRun) -> None:
    key, server = backfill_run.key, backfill_run.server
    with server.api() as api:
        seen = {
            "flow runs": api.post("flow_runs/filter", json={"limit": 200}).text,
            "deployments": api.post("deployments/filter", json={"limit": 200}).text,
            "artifacts": api.post("artifacts/filter", json={"limit": 200}).text,
            "logs": all_logs(api),
        }
    seen |= {f"worker {w.name}": w.output() for w in backfill_run.workers}
    seen |= {"server": server.service.output(), "deployment run": backfill_run.watch_output}
    seen["results"] = backfill_run.results.astype(str).to_csv()
    assert "docrouter-run" in seen["logs"] or "shard" in seen["logs"]  # the logs were read, not empty
    assert [where for where, text in seen.items() if key in text] == []


def all_logs(api: Any) -> str:
    """Every log line the server holds, page by page."""
    lines: list[str] = []
    while True:
        page = api.post("logs/filter", json={"limit": 200, "offset": len(lines)}).json()
        lines += [entry["message"] for entry in page]
        if len(page) < 200:
            return "\n".join(lines)


@pytest.mark.slow
def test_deployed_nightly_run_is_scheduled_by_cron_and_takes_its_key_from_a_block(backfill_run: BackfillRun) -> None:
    with backfill_run.server.api() as api:
        nightly = api.get("deployments/name/docrouter-run/nightly-summaries").json()
    assert [s["schedule"]["cron"] for s in nightly["schedules"]] == ["0 2 * * *"]
    assert nightly["parameters"]["key_block"] == KEY_BLOCK
    assert nightly["work_pool_name"] == POOL
    assert nightly["pull_steps"][0]["prefect.deployments.steps.set_working_directory"]["directory"] == (
        "{{ $DOCROUTER_HOME }}"  # resolved on each worker, from its own environment
    )
