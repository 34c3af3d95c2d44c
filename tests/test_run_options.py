"""Run options given to the flow (as the CLI and deployments pass them) reach the requests and the estimates."""

from __future__ import annotations

from pathlib import Path

import pytest

from docrouter.emulator import Emulator, Faults
from pipeline import results, run_flow, write_corpus

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api_url")]


def run_once(tmp_path: Path, name: str, emu: Emulator, **extra) -> Path:
    out = tmp_path / name
    run_flow(sources=[str(tmp_path / "docs")], out=str(out), base_url=emu.base_url, **extra)
    return out


def test_ocr_fee_and_pdf_text_name_reach_the_estimate_and_the_wire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_corpus(tmp_path / "docs", text=1, scans=1)
    with Emulator(seed=3) as emu:
        monkeypatch.setenv("OPENROUTER_API_KEY", emu.api_key)
        # Each run with a fresh cache: the per-user answer-length history the first run leaves would move the
        # second run's expected answer too, and this test isolates the page fee.
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-cheap"))
        cheap = results(run_once(tmp_path, "cheap", emu, engine="mistral-ocr", ocr_fee=0.002))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-dear"))
        dear = results(run_once(tmp_path, "dear", emu, engine="mistral-ocr", ocr_fee=0.05))
        # The emulator, like OpenRouter after the rename, refuses the legacy wire name "pdf-text".
        emu.set_faults(Faults(pdf_text_rejected=True))
        legacy = results(run_once(tmp_path, "legacy", emu, engine="pdf-text", pdf_text_name="pdf-text"))
        current = results(run_once(tmp_path, "current", emu, engine="pdf-text"))
    assert set(cheap.engine) == set(dear.engine) == {"mistral-ocr"}
    # Two one-page documents: the configured page fee moves each estimate by exactly the difference.
    difference = dear.set_index("path").est_cost_usd - cheap.set_index("path").est_cost_usd
    assert difference.round(6).tolist() == [0.048, 0.048]
    text = "text_000.pdf"
    legacy_row = legacy.set_index("path").loc[text]
    assert (legacy_row.engine, legacy_row.status) == ("local-text", "ok")  # the refused name was sent, then fell back
    assert "pdf-text parse failed" in legacy_row.engine_reason
    assert current.set_index("path").loc[text].engine == "pdf-text"  # the default wire name is accepted


def test_flow_parameters_describe_the_config_exactly_and_name_only_flow_parameters(tmp_path: Path) -> None:
    import inspect

    from docrouter.run.config import RunConfig, config_from_parameters, flow_parameters
    from docrouter_flows.run import docrouter_run

    config = RunConfig(
        sources=("a", "b"), out=str(tmp_path), budget_usd=2.5, include=("*.pdf",), ocr_fee_per_page=0.01,
        pdf_text_wire_name="pdf-text", shard=1, shards=3, reprocess=True, retry_failed=True,
    )  # fmt: skip
    parameters = flow_parameters(config)
    assert set(parameters) <= set(inspect.signature(docrouter_run.fn).parameters)
    assert parameters["sources"] == ["a", "b"] and parameters["budget"] == 2.5 and parameters["ocr_fee"] == 0.01
    assert config_from_parameters({**parameters, "key_block": "blk", "show_progress": True}) == config
