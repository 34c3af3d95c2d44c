"""Every numeric setting is finite and in range, or the command stops before any work with one line."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from docrouter.budget import Budget
from docrouter.errors import ConfigError
from docrouter.run.config import RunConfig, config_from_parameters, flow_parameters
from docrouter_commands.cli import main

# (flag, a valid value): each flag is tried with every bad value below, the rest of the command valid.
NUMERIC_FLAGS = (
    ("--budget", "1"),
    ("--concurrency", "4"),
    ("--max-attempts", "3"),
    ("--max-tokens", "100"),
    ("--ocr-fee", "0.002"),
    ("--batch-size", "10"),
    ("--price-headroom", "0.25"),
    ("--max-price", "1,2"),
)
BAD_VALUES = ("nan", "inf", "-inf", "1e309", "-1", "99999999999999999999", "1e300", "NaN,1", "2,inf", "")
_WHOLE = {"--concurrency", "--max-attempts", "--max-tokens", "--batch-size"}


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`docrouter ARGV` in this process: its exit code and its stderr (argparse errors exit via SystemExit)."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(("flag", "_valid"), NUMERIC_FLAGS)
@pytest.mark.parametrize("value", BAD_VALUES)
def test_a_bad_number_on_any_flag_is_one_line_exit_2_before_any_work(
    flag: str, _valid: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if flag != "--max-price" and "," in value:
        pytest.skip("a pair is only a --max-price value")
    out = tmp_path / "out"
    code, err = run_main(["run", str(tmp_path), "--out", str(out), "--offline", f"{flag}={value}"], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert flag.split("=")[0] in err
    assert not out.exists()  # stopped before any work: not even the output folder


@pytest.mark.slow
@pytest.mark.parametrize(("flag", "valid"), NUMERIC_FLAGS)
def test_the_plan_command_checks_the_same_flags(
    flag: str, valid: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if flag in ("--budget", "--concurrency", "--max-attempts", "--batch-size"):
        pytest.skip("a run-only flag")
    code, err = run_main(["plan", str(tmp_path), "--offline", f"{flag}=nan"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and flag in err


def test_minus_zero_budget_is_zero_and_sends_nothing() -> None:
    config = RunConfig(sources=("x",), out="o", budget_usd=-0.0)
    assert config.budget_usd == 0.0 and math.copysign(1.0, config.budget_usd) == 1.0
    budget = Budget(config.budget_usd)
    assert budget.reserve(0.0) is None and budget.reserve(1e-9) is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("budget", float("nan")),
        ("budget", float("inf")),
        ("budget", -1.0),
        ("budget", 1e12),
        ("ocr_fee", float("nan")),
        ("ocr_fee", 2.0),
        ("concurrency", 0),
        ("concurrency", 5000),
        ("max_tokens", 10**9),
        ("max_attempts", 0),
        ("batch_size", 10**7),
        ("price_headroom", float("inf")),
        ("price_headroom", -0.5),
        ("max_price", [float("nan"), 1.0]),
        ("max_price", [1.0]),
        ("shards", 0),
        ("concurrency", 2.5),
        ("budget", "ten"),
    ],
)
def test_flow_and_deployment_parameters_are_checked_in_the_one_place(name: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_parameters({"sources": ["x"], "out": "o", name: value})
    assert "\n" not in caught.value.message


def test_the_new_flags_round_trip_through_flow_parameters() -> None:
    config = RunConfig(sources=("x",), out="o", price_headroom=0.5, max_price=(1.5, 6.0), refresh_models=True)
    parameters = flow_parameters(config)
    assert parameters["price_headroom"] == 0.5 and parameters["max_price"] == [1.5, 6.0]
    assert parameters["refresh_models"] is True
    assert config_from_parameters(parameters) == config
    assert RunConfig(sources=("x",), out="o", max_price="0.3,2.5").max_price == (0.3, 2.5)  # type: ignore[arg-type]


def test_a_nan_reservation_is_never_granted() -> None:
    budget = Budget(1.0)
    assert budget.reserve(float("nan")) is None and budget.reserve(float("inf")) is None
    with pytest.raises(ValueError):
        Budget(float("nan"))


@pytest.mark.slow
def test_the_console_script_says_one_line_without_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "docrouter_commands.cli", "run", str(tmp_path), "--out", str(tmp_path / "o"),
         "--offline", "--budget", "nan"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == "docrouter: error: --budget must be a number from 0 to 1e+06, not nan"


def test_split_limits_from_the_environment_have_an_upper_bound() -> None:
    from docrouter.route.splitting import SplitLimits

    for value in ("nan", "inf", "-0", "0", "1e3", str(10**20)):
        with pytest.raises(ConfigError):
            SplitLimits.from_env({"DOCROUTER_MAX_PART_PAGES": value})
    assert SplitLimits.from_env({"DOCROUTER_MAX_PART_PAGES": "50"}).pages_for("native") == 50
