"""One source for run settings: the flags, the flows, prefect.yaml and the README agree with RunConfig's settings."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from docrouter.run.config import RUN_DEFAULTS, SETTINGS, RunConfig, config_from_parameters
from docrouter.run.environment import Environment
from docrouter_commands.cli import build_parser, default_text, run_config
from docrouter_flows.backfill import check_parameters, docrouter_backfill
from docrouter_flows.run import docrouter_run

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
FLAGS = [d for d in SETTINGS if d.setting.is_flag]
# Run flow parameters that are not RunConfig's: the key's block, the schema, the CLI's display, and the files that
# large prompts reach a flow run by (docrouter.run.references: read into `prompt` / `system_prompt`).
NOT_SETTINGS = {"key_block", "extraction_schema", "show_progress", "prompt_file", "system_prompt_file"}
BACKFILL_ONLY = {"deployment_name", "poll_seconds", "timeout_hours"}
BACKFILL_SHARDS = 4  # the backfill's own default shard count (a run's is 1: the whole input)


def subparser(command: str) -> argparse.ArgumentParser:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[command]


def flow_defaults(flow: Any) -> dict[str, Any]:
    """Each parameter's default as RunConfig would take it (a list parameter's None is the empty tuple)."""
    signature = inspect.signature(flow.fn).parameters
    lists = {d.parameter for d in SETTINGS if d.setting.is_list}
    return {
        name: (() if name in lists and p.default is None else p.default)
        for name, p in signature.items()
        if p.default is not inspect.Parameter.empty
    }


@pytest.mark.parametrize("command", ["run", "plan"])
def test_no_flag_given_is_exactly_the_settings_defaults(command: str) -> None:
    args = build_parser().parse_args([command, "src", "--out", "o"])
    config = run_config(args)
    assert dataclasses.replace(config, environment=Environment()) == RunConfig(sources=("src",), out="o")


def test_every_setting_flag_is_on_run_and_plan_has_all_but_the_run_only_ones() -> None:
    run_flags = {o for a in subparser("run")._actions for o in a.option_strings}
    plan_flags = {o for a in subparser("plan")._actions for o in a.option_strings}
    assert {d.flag for d in FLAGS} <= run_flags
    assert {d.flag for d in FLAGS if not d.setting.run_only} <= plan_flags
    assert {d.flag for d in FLAGS if d.setting.run_only}.isdisjoint(plan_flags)


def test_run_help_shows_every_default() -> None:
    entries = re.split(r"\n  (?=-)", subparser("run").format_help())
    for described in FLAGS:
        if described.default in (None, False, ()):
            continue
        entry = " ".join(next(e for e in entries if e.startswith(described.flag)).split())
        assert "default" in entry, described.flag
        if described.field != "prompt":  # the prompt's default is a sentence: the help says "a short summary"
            assert default_text(described) in entry, (described.flag, entry)


def test_the_run_flow_takes_every_setting_with_its_default() -> None:
    defaults = flow_defaults(docrouter_run)
    parameters = set(inspect.signature(docrouter_run.fn).parameters)
    assert parameters - NOT_SETTINGS == {d.parameter for d in SETTINGS}
    assert {name: defaults[name] for name in RUN_DEFAULTS} == RUN_DEFAULTS
    required = {"sources": ["x"], "out": "o"}
    assert config_from_parameters({**defaults, **required}) == RunConfig(sources=("x",), out="o")


def test_the_backfill_shares_the_run_flows_parameters_and_defaults() -> None:
    run, backfill = flow_defaults(docrouter_run), flow_defaults(docrouter_backfill)
    backfill_parameters = set(inspect.signature(docrouter_backfill.fn).parameters)
    run_parameters = set(inspect.signature(docrouter_run.fn).parameters)
    assert backfill_parameters - BACKFILL_ONLY == run_parameters - {"shard", "show_progress"}
    shared = set(backfill) - BACKFILL_ONLY - {"shards"}
    assert {name: backfill[name] for name in shared} == {name: run[name] for name in shared}
    assert backfill["shards"] == BACKFILL_SHARDS


def _deployments() -> list[dict[str, Any]]:
    return yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("deployment", _deployments(), ids=lambda d: d["name"])
def test_every_prefect_yaml_parameter_is_a_valid_value_for_its_flow(deployment: dict[str, Any]) -> None:
    flow = docrouter_backfill if deployment["entrypoint"].endswith(":docrouter_backfill") else docrouter_run
    # A shard deployment gets its sources and out from the backfill: placeholders stand in for them here.
    parameters = {"sources": ["/srv/in"], "out": "/srv/out", **deployment["parameters"]}
    assert set(parameters) <= set(inspect.signature(flow.fn).parameters)
    validated = flow.validate_parameters(parameters)  # Prefect's own check of the types (defaults filled in)
    assert {name: validated[name] for name in parameters} == parameters
    if flow is docrouter_backfill:  # RunConfig's checks of what each shard gets: ranges, choices, the prompt
        child = {k: v for k, v in validated.items() if k not in BACKFILL_ONLY | {"budget", "shards"}}
        check_parameters(child, validated["budget"], validated["shards"])
    else:
        config_from_parameters(validated)


def documented_defaults() -> dict[str, str]:
    """flag -> the default the README's Configuration table gives: the first "default X" after the flag's name
    (the row's first flag when its meaning names none before the default)."""
    section = README.split("\n## Configuration\n")[1].split("\n## ")[0]
    found: dict[str, str] = {}
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        first, meaning = row[2:].split(" | ", 1)
        flag = re.search(r"`(--[a-z-]+)`", first)
        owner = flag.group(1) if flag else None
        for token in re.finditer(r"`(--[a-z-]+)`|default:? `?([^`;,)\s]+)`?", meaning):
            if token.group(1):
                owner = token.group(1)
            elif owner is not None:
                found.setdefault(owner, token.group(2))
    return found


def test_the_readme_configuration_table_gives_every_flag_default_as_the_settings_do() -> None:
    documented = documented_defaults()
    with_default = [d for d in FLAGS if d.default not in (None, False, ())]
    assert [d.flag for d in with_default if d.flag not in documented] == []
    # The prompt's default is a sentence: the table says what it asks for instead.
    checked = [d for d in with_default if d.field != "prompt"]
    assert {d.flag: documented[d.flag] for d in checked} == {d.flag: default_text(d) for d in checked}


def test_the_readme_synopsis_of_run_lists_every_flag_and_its_choices() -> None:
    commands = README.split("\n## Commands\n")[1].split("\n```\n")[1]
    synopsis = commands.split("docrouter run SOURCE...")[1].split("docrouter plan")[0]
    for described in FLAGS:
        assert re.search(rf"\[{re.escape(described.flag)}\b", synopsis) or f"| {described.flag} " in synopsis
        if described.setting.choices:
            assert f"{described.flag} {'|'.join(described.setting.choices)}]" in synopsis
