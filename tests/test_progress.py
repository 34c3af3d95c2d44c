"""Live progress: figures from recent throughput, a bar on a terminal, one plain line per 10 s elsewhere."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from docrouter.run.config import RunConfig
from docrouter.run.forecast import Forecast, Interval
from docrouter.run.pilot import FORECAST_FILE, Pilot, read_forecast, write_forecast
from docrouter.run.progress import Display, Progress
from pipeline import write_corpus
from test_cli import docrouter_cli, prefect_filter
from test_store import make_result


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run_of(clock: Clock, total: int = 100, budget: float | None = 1.0) -> Progress:
    return Progress(total=total, budget_usd=budget, clock=clock)


def test_the_eta_follows_recent_throughput_not_the_slow_start() -> None:
    clock = Clock()
    progress = run_of(clock)
    clock.now += 60  # a slow start (Prefect, inspection): nothing finishes for a minute
    for n in range(40):  # then 40 documents in 20 s: 2 per second
        clock.now += 0.5
        progress.add(make_result(n, cost_usd=0.001))
    assert progress.rate() == 40 / 30  # the last 30 s hold all 40
    assert progress.eta_s() == 60 / (40 / 30)  # 60 left at that pace: 45 s, not the whole-run average's 120 s
    line = progress.line()
    expected = sum(make_result(n, cost_usd=0.001).est_cost_usd for n in range(40))
    assert line.startswith(
        f"40/100 docs | ok 40 | failed 0 | skipped 0 | spent $0.0400 of $1.0000 | expected ${expected:.4f} | 1.3 docs/s"
    )
    assert line.endswith("ETA 45s")


def test_at_the_end_the_line_says_done_with_the_true_counts() -> None:
    clock = Clock()
    progress = run_of(clock, total=3)
    progress.already_done = 1
    for n in range(2):
        clock.now += 1
        progress.add(make_result(n, status="failed" if n else "ok"))
    assert progress.line().startswith("3/3 docs | ok 1 | failed 1")
    assert progress.line().endswith("| done") and progress.eta_s() == 0


def test_without_a_terminal_one_plain_line_per_10_seconds() -> None:
    clock, stream = Clock(), io.StringIO()
    progress = run_of(clock)
    display = Display(progress, stream, terminal=False)
    for n in range(25):  # 25 s, ticked every second as the flow does
        clock.now += 1
        progress.add(make_result(n))
        display.tick()
    display.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3  # at 10 s, at 20 s, and the final figures
    assert lines[0].startswith("docrouter: 10/100 docs") and lines[-1].startswith("docrouter: 25/100 docs")
    assert "\x1b[" not in stream.getvalue()  # plain text for logs and pipes


def test_on_a_terminal_a_bar_redrawn_on_every_tick() -> None:
    clock, stream = Clock(), io.StringIO()
    progress = run_of(clock, total=4)
    display = Display(progress, stream, terminal=True)
    for n in range(4):
        clock.now += 1
        progress.add(make_result(n, cost_usd=0.01))
        display.tick()
    display.close()
    shown = stream.getvalue()
    assert "\x1b[" in shown and "━" in shown  # terminal control codes and a bar
    assert shown.count("docrouter") >= 4  # redrawn on each tick
    assert "4/4 docs | ok 4" in shown and "spent $0.0400 of $1.0000" in shown and "done" in shown


@pytest.mark.slow
def test_a_run_logs_progress_to_prefect_and_its_artifact_ends_at_the_final_numbers(
    prefect_api_url: str, tmp_path: Path
) -> None:
    write_corpus(tmp_path / "src", text=3, pngs=2)
    out = str(tmp_path / "out")
    env = {"PREFECT_API_URL": prefect_api_url, "PREFECT_LOGGING_LEVEL": "INFO"}
    done = docrouter_cli("run", tmp_path / "src", "--out", out, "--offline", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    final = [line for line in done.stderr.splitlines() if line.startswith("docrouter: 5/5 docs")]
    assert final and final[-1].endswith("| done")  # stderr is a pipe here: plain lines, the last one final
    runs = [r for r in prefect_filter(prefect_api_url, "flow_runs", "START_TIME_DESC") if r["parameters"]["out"] == out]
    flow_run_id = runs[0]["id"]
    artifacts = prefect_filter(prefect_api_url, "artifacts", "CREATED_DESC")
    progress = next(a for a in artifacts if a["flow_run_id"] == flow_run_id and a["key"] == "docrouter-progress")
    assert progress["data"] == 100.0
    assert progress["description"].startswith("5/5 docs | ok 5") and progress["description"].endswith("done")
    logs = prefect_filter(prefect_api_url, "logs", "TIMESTAMP_DESC")
    mine = [log["message"] for log in logs if log["flow_run_id"] == flow_run_id]
    assert any(m.startswith("progress: 5/5 docs") and m.endswith("done") for m in mine), mine


def test_the_line_sets_money_against_the_estimate_and_a_pilot_forecast(tmp_path: Path) -> None:
    clock = Clock()
    config = RunConfig(sources=("docs",), out=str(tmp_path))
    assert read_forecast(tmp_path, config) is None  # no pilot yet
    cost = Interval(0.05, 0.04, 0.06)
    write_forecast(tmp_path, config, Pilot(Forecast(cost, Interval(60, 50, 70), 20, 0.01)))
    forecast = read_forecast(tmp_path, config)
    assert forecast == pytest.approx(0.04)  # the whole bill's forecast less what the pilot already spent
    assert read_forecast(tmp_path, dataclasses.replace(config, prompt="another prompt")) is None
    progress = Progress(total=10, budget_usd=None, clock=clock, forecast_usd=forecast)
    for n in range(4):
        clock.now += 1
        progress.add(make_result(n, cost_usd=0.001, est_cost_usd=0.003))
    assert "| spent $0.0040 | expected $0.0120 | forecast $0.0400 |" in progress.line()


def test_a_damaged_forecast_file_is_no_forecast(tmp_path: Path) -> None:
    config = RunConfig(sources=("docs",), out=str(tmp_path))
    (tmp_path / FORECAST_FILE).write_text('{"model": "x", "rest_usd": NaN')
    assert read_forecast(tmp_path, config) is None
