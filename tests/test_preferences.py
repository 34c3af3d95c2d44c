"""Answer and routing preferences (temperature, system prompt, provider object, fallback models): from the command
line and flow parameters to the wire, to the emulator's answer, and into the results and the run summary."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from docrouter.emulator import Emulator, Faults
from docrouter.run.config import RunConfig, answer_sha256, config_from_parameters, flow_parameters
from docrouter_commands.cli import build_parser, main, run_config
from pipeline import results, run_flow, write_corpus

PREFERENCES = [
    *("--temperature", "0.4", "--system-prompt", "Answer in French."),
    *("--data-collection", "deny", "--zdr", "--provider-order", "together, deepinfra"),
    *("--provider-sort", "latency", "--fallback-models", "anthropic/claude-haiku-4.5,openai/gpt-4o-mini"),
]


def test_default_settings_hash_like_the_prompt_alone_and_every_shaping_setting_changes_the_hash() -> None:
    prompt = "Summarize."
    assert answer_sha256(prompt) == hashlib.sha256(b"Summarize.").hexdigest()
    assert answer_sha256(prompt, system_prompt=None, temperature=0.0) == answer_sha256(prompt)
    variants = {
        answer_sha256(prompt),
        answer_sha256(prompt, system_prompt="Be brief."),
        answer_sha256(prompt, temperature=0.7),
        answer_sha256(prompt, system_prompt="Be brief.", temperature=0.7),
        answer_sha256("Summarize!"),
    }
    assert len(variants) == 5
    config = RunConfig(sources=("x",), out="o", prompt=prompt, system_prompt="Be brief.", temperature=0.7)
    assert config.prompt_sha256 == answer_sha256(prompt, system_prompt="Be brief.", temperature=0.7)


def test_preference_flags_become_the_config_and_survive_the_flow_parameter_round_trip(tmp_path: Path) -> None:
    system = tmp_path / "system.txt"
    system.write_text("Answer in German.", encoding="utf-8")
    args = build_parser().parse_args(["run", "docs", "--out", "o", *PREFERENCES])
    config = run_config(args)
    assert (config.temperature, config.system_prompt, config.data_collection, config.zdr) == (
        0.4,
        "Answer in French.",
        "deny",
        True,
    )
    assert config.provider_order == ("together", "deepinfra") and config.provider_sort == "latency"
    assert config.fallback_models == ("anthropic/claude-haiku-4.5", "openai/gpt-4o-mini")
    parameters = flow_parameters(config)
    assert parameters["provider_order"] == ["together", "deepinfra"]
    assert json.loads(json.dumps(parameters)) == parameters  # deployment parameters are JSON
    assert config_from_parameters(parameters) == config
    from_file = run_config(build_parser().parse_args(["plan", "docs", "--system-prompt-file", str(system)]))
    assert from_file.system_prompt == "Answer in German."


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--temperature", "3"], "--temperature"),
        (["--temperature", "nan"], "--temperature"),
        (["--data-collection", "maybe"], "--data-collection"),
        (["--provider-sort", "cheapest"], "--provider-sort"),
        (["--provider-order", "a,,b"], "--provider-order"),
        (["--system-prompt", "x", "--system-prompt-file", "f"], "--system-prompt"),
        (["--system-prompt-file", "/nonexistent/system.txt"], "--system-prompt-file"),
        (["--fallback-models", "google/gemini-2.5-flash"], "--fallback-models"),
    ],
)
@pytest.mark.slow
def test_a_bad_preference_is_one_line_before_any_work(
    flags: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(["plan", "nowhere", "--offline", *flags])
    except SystemExit as exc:
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code != 0 and says in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.slow
def test_fallback_models_make_estimates_count_the_dearest_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_corpus(tmp_path / "docs", text=1)
    out = tmp_path / "plans"
    main(["plan", str(tmp_path / "docs"), "--offline", "--out", str(out / "alone")])
    main(["plan", str(tmp_path / "docs"), "--offline", "--out", str(out / "fb"), "--fallback-models",
          "anthropic/claude-sonnet-4.5"])  # fmt: skip
    import pandas as pd

    alone = pd.read_parquet(next((out / "alone").rglob("*.parquet")))
    dearer = pd.read_parquet(next((out / "fb").rglob("*.parquet")))
    # Sonnet's prices are 10x and 6x Gemini Flash's: the at-most cost follows them.
    assert dearer.max_cost_usd.iloc[0] > 5 * alone.max_cost_usd.iloc[0]


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_api_url")
def test_every_preference_reaches_the_wire_and_the_answering_provider_and_model_are_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_corpus(tmp_path / "docs", text=1, pngs=1)
    config = run_config(build_parser().parse_args(["run", str(tmp_path / "docs"), "--out", "o", *PREFERENCES]))
    with Emulator(seed=5) as emu:
        monkeypatch.setenv("OPENROUTER_API_KEY", emu.api_key)
        out = tmp_path / "out"
        summary = run_flow(**{**flow_parameters(config), "out": str(out), "base_url": emu.base_url})
        records = [r for r in emu.records if r.path.endswith("/chat/completions")]
    assert len(records) == 2
    for record in records:
        assert record.options["temperature"] == 0.4
        assert record.options["system"] == ["Answer in French."]
        assert record.options["models"] == ["google/gemini-2.5-flash", *config.fallback_models]
        provider = dict(record.options["provider"])
        # The budget's ceiling rides along, priced at the dearest model (claude-haiku-4.5, $1/$5 per M) + 25%.
        assert provider.pop("max_price") == {"prompt": 1.25, "completion": 6.25}
        assert provider == {
            "order": ["together", "deepinfra"],
            "sort": "latency",
            "data_collection": "deny",
            "zdr": True,
        }
        assert record.provider == "Together"  # the first of the order that serves the model
    rows = results(out)
    assert set(rows.provider) == {"Together"}
    assert set(rows.answered_model) == set(rows.model) == {"google/gemini-2.5-flash"}
    assert set(rows.prompt_sha256) == {config.prompt_sha256} != {answer_sha256(config.prompt)}
    assert summary["preferences"]["provider"]["zdr"] is True
    assert summary["preferences"]["fallback_models"] == list(config.fallback_models)
    assert summary["preferences"]["system_prompt"] == "Answer in French."


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_api_url")
def test_an_unavailable_model_is_answered_by_the_fallback_and_model_stays_the_one_requested(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_corpus(tmp_path / "docs", text=2)
    with Emulator(seed=6, faults=Faults(unavailable_models="google/gemini-2.5-flash")) as emu:
        monkeypatch.setenv("OPENROUTER_API_KEY", emu.api_key)
        fallback = ["openai/gpt-4o-mini"]
        out = tmp_path / "out"
        run_flow(sources=[str(tmp_path / "docs")], out=str(out), base_url=emu.base_url, fallback_models=fallback)
        billed = emu.billed_usd
        models = {r.model for r in emu.records if r.path.endswith("/chat/completions")}
        # A second run with the same settings finds everything done: `model` is the done-set key.
        again = run_flow(sources=[str(tmp_path / "docs")], out=str(out), base_url=emu.base_url,
                         fallback_models=fallback)  # fmt: skip
    rows = results(out)
    assert set(rows.status) == {"ok"} and len(rows) == 2
    assert set(rows.model) == {"google/gemini-2.5-flash"} and set(rows.answered_model) == {"openai/gpt-4o-mini"}
    assert models == {"openai/gpt-4o-mini"} and set(rows.provider) == {"OpenAI"}
    assert rows.cost_usd.sum() == pytest.approx(billed)
    assert again["already_done"] == 2 and again["requests_sent"] == 0


def _ask(emu: Emulator, **extra: object) -> httpx.Response:
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **extra}
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    return httpx.post(f"{emu.base_url}/chat/completions", json=body, headers=headers, timeout=30)


@pytest.mark.slow
def test_the_emulator_answers_as_the_provider_the_preferences_pick_and_refuses_bad_ones() -> None:
    with Emulator(seed=1) as emu:
        sorts = ("price", "throughput", "latency")
        by = {sort: _ask(emu, provider={"sort": sort}).json()["provider"] for sort in sorts}
        ordered = _ask(emu, provider={"order": ["unknown-host", "deepinfra"]}).json()["provider"]
        plain = _ask(emu).json()["provider"]
        strict = _ask(emu, provider={"order": ["unknown-host"], "allow_fallbacks": False})
        unknown_key = _ask(emu, provider={"cheapest": True})
        bad_collection = _ask(emu, provider={"data_collection": "never"})
    assert by == {"price": "DeepInfra", "throughput": "Together", "latency": "OpenAI"}
    assert (ordered, plain) == ("DeepInfra", "OpenAI")
    assert strict.status_code == 404
    assert unknown_key.status_code == 400 and "cheapest" in unknown_key.json()["error"]["message"]
    assert bad_collection.status_code == 400
