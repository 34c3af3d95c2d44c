"""Reasoning models and context windows against the emulator: what is sent, what is billed, what the rows say."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

import samples
from docrouter.call.client import parse_completion
from docrouter.catalogue import parse_models
from docrouter.emulator import Emulator, Faults, ReasoningKnob
from docrouter.emulator.thinking import parse_knob
from docrouter.errors import ConfigError
from docrouter.route.reasoning import BUDGET_TOKENS, resolve
from docrouter.run.config import RunConfig
from emulator_fixtures import text_body
from pipeline import results, run_flow, write_corpus

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
MODEL = "google/gemini-2.5-flash"  # the default model; data/models.json lists `reasoning` for it
MODELS_JSON = Path(__file__).resolve().parents[1] / "data" / "models.json"


def models() -> dict:
    return parse_models(json.loads(MODELS_JSON.read_text()))


# --- what --reasoning means per model -------------------------------------------------------------------


def test_auto_turns_reasoning_off_where_allowed_and_asks_low_effort_where_mandatory() -> None:
    flash = models()[MODEL]
    off = resolve("auto", flash, 1024)
    assert (off.parameter, off.max_tokens(1024)) == ({"enabled": False}, 1024)
    mandatory = resolve("auto", flash.__class__(**{**flash.__dict__, "reasoning_mandatory": True}), 1024)
    assert mandatory.parameter == {"effort": "low"}
    assert mandatory.max_tokens(1024) == 1024 + BUDGET_TOKENS["low"]  # room for the reasoning, then the answer
    high = resolve("high", flash, 1024)
    assert (high.parameter, high.budget_tokens) == ({"effort": "high"}, BUDGET_TOKENS["high"])


def test_impossible_settings_are_one_line_errors_before_any_work() -> None:
    catalogue = models()
    flash = catalogue[MODEL]
    with pytest.raises(ConfigError, match="does not support reasoning"):
        resolve("low", catalogue["openai/gpt-4o-mini"], 1024)
    assert resolve("auto", catalogue["openai/gpt-4o-mini"], 1024).parameter is None  # nothing sent
    with pytest.raises(ConfigError, match="mandatory"):
        resolve("off", flash.__class__(**{**flash.__dict__, "reasoning_mandatory": True}), 1024)
    with pytest.raises(ConfigError, match="--reasoning must be one of"):
        RunConfig(sources=("x",), out="o", reasoning="extreme")


def test_the_reasoning_setting_is_part_of_prompt_sha256_and_the_default_keeps_the_old_hash() -> None:
    import hashlib

    default = RunConfig(sources=("x",), out="o", prompt="Summarise.")
    assert default.prompt_sha256 == hashlib.sha256(b"Summarise.").hexdigest()  # older results stay done
    hashes = {RunConfig(sources=("x",), out="o", prompt="Summarise.", reasoning=r).prompt_sha256 for r in
              ("auto", "off", "low", "high")}  # fmt: skip
    assert len(hashes) == 4


def test_a_cut_empty_answer_is_a_truncated_completion_with_its_reasoning_tokens() -> None:
    body = {
        "id": "gen-1",
        "model": MODEL,
        "choices": [{"finish_reason": "length", "message": {"role": "assistant", "content": ""}}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 362, "cost": 0.0009,
                  "completion_tokens_details": {"reasoning_tokens": 356, "image_tokens": 0}},
    }  # fmt: skip
    completion = parse_completion(body, httpx.Headers())
    assert (completion.content, completion.truncated, completion.reasoning_tokens) == ("", True, 356)


# --- the emulator's reasoning knob and context refusals ---------------------------------------------------


@pytest.fixture
def thinking() -> Iterator[tuple[Emulator, httpx.Client]]:
    knobs = {MODEL: ReasoningKnob(1100), "anthropic/claude-haiku-4.5": ReasoningKnob(1800, True, {"low": 900})}
    with Emulator(reasoning=knobs) as emu:
        headers = {"Authorization": f"Bearer {emu.api_key}"}
        with httpx.Client(base_url=emu.base_url, headers=headers, timeout=30.0) as client:
            yield emu, client


def _ask(client: httpx.Client, model: str, max_tokens: int, reasoning: dict | None = None) -> httpx.Response:
    body = text_body("A long enough text to summarise. " * 40, model=model, max_tokens=max_tokens)
    if reasoning is not None:
        body["reasoning"] = reasoning
    return client.post("/chat/completions", json=body)


@pytest.mark.slow
def test_reasoning_comes_out_of_max_tokens_first_and_is_reported_as_the_api_does(thinking) -> None:
    emu, client = thinking
    listed = {m["id"]: m for m in client.get("/models").json()["data"]}
    assert listed[MODEL]["reasoning"] == {"mandatory": False, "default_enabled": True}
    assert "reasoning" in listed[MODEL]["supported_parameters"]
    cut = _ask(client, MODEL, 1024).json()  # reasons 1,100 tokens by default: nothing left for the answer
    assert (cut["choices"][0]["message"]["content"], cut["choices"][0]["finish_reason"]) == ("", "length")
    assert cut["usage"]["completion_tokens_details"]["reasoning_tokens"] == 1024
    assert cut["usage"]["completion_tokens"] == 1024 and cut["usage"]["cost"] > 0
    roomy = _ask(client, MODEL, 4096).json()
    assert roomy["choices"][0]["finish_reason"] == "stop" and roomy["choices"][0]["message"]["content"]
    assert roomy["usage"]["completion_tokens_details"]["reasoning_tokens"] == 1100
    assert "1100" in roomy["choices"][0]["message"]["reasoning"]  # the reasoning text, as the API returns it
    off = _ask(client, MODEL, 1024, {"enabled": False}).json()
    assert off["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0
    assert off["choices"][0]["message"]["reasoning"] is None


@pytest.mark.slow
def test_mandatory_reasoning_cannot_be_turned_off_and_spends_by_effort(thinking) -> None:
    emu, client = thinking
    refused = _ask(client, "anthropic/claude-haiku-4.5", 1024, {"enabled": False})
    assert refused.status_code == 400 and "mandatory" in refused.json()["error"]["message"]
    low = _ask(client, "anthropic/claude-haiku-4.5", 4000, {"effort": "low"}).json()
    assert low["usage"]["completion_tokens_details"]["reasoning_tokens"] == 900
    assert parse_knob("x/y=1800,mandatory,low=900") == ("x/y", ReasoningKnob(1800, True, {"low": 900}))
    with pytest.raises(ValueError, match="expected MODEL=TOKENS"):
        parse_knob("x/y")


@pytest.mark.slow
def test_context_refusal_uses_the_served_context_and_can_bill_the_ocr_it_did(tmp_path: Path) -> None:
    models_path = _models_with_small_context(tmp_path, context=4096)
    with Emulator(models_path=models_path) as emu:
        headers = {"Authorization": f"Bearer {emu.api_key}"}
        pdf = samples.scanned_pdf(3)
        from emulator_fixtures import pdf_body

        body = pdf_body(pdf, model="test/context-small", engine="mistral-ocr", max_tokens=4096)
        with httpx.Client(base_url=emu.base_url, headers=headers, timeout=30.0) as client:
            free = client.post("/chat/completions", json=body)
            emu.set_faults(Faults(context_refusal_bills_ocr=True))
            billed = client.post("/chat/completions", json=body)
    assert free.status_code == billed.status_code == 400
    assert "maximum context length is 4096 tokens" in free.json()["error"]["message"]
    assert [r.billed_usd for r in emu.records if r.path.endswith("/chat/completions")] == [0.0, 3 * 0.002]


@pytest.mark.slow
def test_a_context_refusal_that_billed_ocr_is_settled_at_the_ocr_fee(tmp_path: Path) -> None:
    import asyncio
    import random

    from docrouter.budget import Budget
    from docrouter.call.client import OpenRouterClient
    from docrouter.call.dispatch import Dispatcher
    from docrouter.call.limits import AdaptiveLimiter, RetryPolicy
    from docrouter.call.payloads import RequestOptions, pdf_request
    from docrouter.errors import ContextExceeded

    options = RequestOptions(model="test/context-small", prompt="Summarise.", max_tokens=4096)
    body = pdf_request(options, samples.scanned_pdf(3), "scan.pdf", "mistral-ocr")

    async def send(emu: Emulator, budget: Budget) -> object:
        async with httpx.AsyncClient(timeout=30.0) as http:
            client = OpenRouterClient(http, base_url=emu.base_url, api_key=emu.api_key)
            dispatcher = Dispatcher(client, AdaptiveLimiter(1), budget, RetryPolicy(), rng=random.Random(1))
            return await dispatcher.send(lambda _: body, max_usd=lambda _: 0.05, failure_charge_usd=lambda _: 0.006)

    budget = Budget(1.0)
    faults = Faults(context_refusal_bills_ocr=True)
    with Emulator(models_path=_models_with_small_context(tmp_path, context=4096), faults=faults) as emu:
        attempted = asyncio.run(send(emu, budget))
    assert isinstance(attempted.error, ContextExceeded) and attempted.attempts == 1  # terminal: not retried
    assert attempted.cost_usd == budget.spent_usd == emu.billed_usd == pytest.approx(3 * 0.002)


# --- whole runs: the issue's figures ------------------------------------------------------------------------


def _models_with_small_context(folder: Path, context: int, listed: int = 131072) -> Path:
    """data/models.json plus test/context-small: gpt-4o-mini whose provider serves only `context` tokens."""
    data = json.loads(MODELS_JSON.read_text())
    model = copy.deepcopy(next(m for m in data["data"] if m["id"] == "openai/gpt-4o-mini"))
    model.update(id="test/context-small", canonical_slug="test/context-small", context_length=listed)
    model["top_provider"]["context_length"] = context
    data["data"].append(model)
    path = folder / "models.json"
    path.write_text(json.dumps(data))
    return path


def _chat_records(emu: Emulator) -> list:
    return [r for r in emu.records if r.path.endswith("/chat/completions")]


def _figures(rows: pd.DataFrame, emu: Emulator) -> dict[str, float]:
    """What the issue asks of a run: empty ok answers, truncated share, retried share, money accounted."""
    ok = rows[rows.status == "ok"]
    sent = rows[rows.attempts > 0]
    expected = sent.parts.where(sent.parts == 1, sent.parts + 1)  # a split document adds its combining request
    return {
        "empty_ok": int((ok.content.fillna("").str.strip() == "").sum()),
        "truncated_share": float(rows.truncated.fillna(False).sum()) / len(rows),
        "retried_share": float((sent.attempts > expected).sum()) / len(rows),
        "unaccounted_usd": round(emu.billed_usd - float(rows.cost_usd.sum()), 9),
        "billed_requests": sum(1 for r in _chat_records(emu) if r.billed_usd > 0),
        "row_attempts": int(sent.attempts.sum()),
    }


@pytest.mark.usefixtures("prefect_api_url")
@pytest.mark.parametrize(
    ("knob", "per_request"),
    [(ReasoningKnob(1100), 0), (ReasoningKnob(1800, True, {"low": 900}), 900)],
    ids=["reasons-1100-by-default", "mandatory-900-at-low"],
)
@pytest.mark.slow
def test_samples_with_a_reasoning_model_and_default_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, knob: ReasoningKnob, per_request: int
) -> None:
    with Emulator(reasoning={MODEL: knob}) as emu:
        monkeypatch.setenv("OPENROUTER_API_KEY", emu.api_key)
        summary = run_flow(sources=[str(SAMPLES)], out=str(tmp_path / "out"), base_url=emu.base_url)
        rows = results(tmp_path / "out")
        figures = _figures(rows, emu)
    print(f"{knob}: {figures}")
    assert figures["empty_ok"] == 0
    assert figures["truncated_share"] <= 0.10 and figures["retried_share"] <= 0.10
    assert (rows.truncated == (rows.finish_reason == "length")).all()  # every cut answer is flagged
    assert figures["unaccounted_usd"] == 0 and figures["billed_requests"] == figures["row_attempts"]
    assert (rows.status == "ok").sum() == 14
    sent = rows[rows.attempts > 0]  # auto: reasoning off where allowed, effort low where it is mandatory
    assert (sent.reasoning_tokens == sent.attempts * per_request).all()
    expected = ({"effort": "low"}, 1024 + 2048) if knob.mandatory else ({"enabled": False}, 1024)
    assert (summary["reasoning"], summary["reasoning_sent"], summary["request_max_tokens"]) == ("auto", *expected)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_api_url")
def test_cut_answers_are_flagged_retried_once_and_answered_again_by_a_rerun_with_more_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_corpus(tmp_path / "docs", text=3)
    write_corpus(tmp_path / "hopeless", text=1)
    # Mandatory reasoning: 3,060 tokens at low effort, of 1,024 + 2,048 sent: 12 tokens of answer are left.
    knobs = {MODEL: ReasoningKnob(5000, True, {"low": 3060}), "anthropic/claude-haiku-4.5": ReasoningKnob(10**6, True)}
    with Emulator(reasoning=knobs) as emu:
        monkeypatch.setenv("OPENROUTER_API_KEY", emu.api_key)
        out = tmp_path / "out"
        run_flow(sources=[str(tmp_path / "docs")], out=str(out), base_url=emu.base_url)
        first = results(out)
        run_flow(sources=[str(tmp_path / "docs")], out=str(out), base_url=emu.base_url)  # same cap: answered again
        run_flow(sources=[str(tmp_path / "docs")], out=str(out), base_url=emu.base_url, max_tokens=4096)
        rerun = results(out)
        run_flow(sources=[str(tmp_path / "docs")], out=str(out), base_url=emu.base_url, max_tokens=4096)
        settled = results(out)
        # A model that reasons past any cap: the cut empty answer goes once more, then fails as truncated.
        hopeless_out = tmp_path / "hopeless_out"
        before = len(_chat_records(emu))
        run_flow(sources=[str(tmp_path / "hopeless")], out=str(hopeless_out), base_url=emu.base_url,
                 model="anthropic/claude-haiku-4.5")  # fmt: skip
        hopeless = results(hopeless_out)
        hopeless_requests = _chat_records(emu)[before:]
        # With a budget that the first request nearly uses up, no larger cap fits: no second request.
        run_flow(sources=[str(tmp_path / "hopeless")], out=str(tmp_path / "poor"), base_url=emu.base_url,
                 model="anthropic/claude-haiku-4.5", budget=0.02)  # fmt: skip
        poor = results(tmp_path / "poor").iloc[0]
    assert first.truncated.all() and (first.status == "ok").all() and (first.content.str.len() > 0).all()
    assert (first.reasoning_tokens == 3060).all()
    # The larger cap answered them in full. The last run's rows by time, not by file order: part files are named
    # by run id, and two runs started in the same second sort by their random suffix.
    last = rerun.sort_values("finished_at").tail(3)
    assert len(rerun) == 9 and last.truncated.eq(False).all()
    assert len(settled) == 9  # done now: a fourth run sends nothing
    row = hopeless.iloc[0]
    assert (row.status, row.error_type, row.attempts) == ("failed", "truncated", 2)
    assert len(hopeless_requests) == 2 and row.cost_usd == pytest.approx(sum(r.billed_usd for r in hopeless_requests))
    assert (poor.status, poor.error_type, poor.attempts) == ("failed", "truncated", 1)
    assert "no larger cap fits" in poor.error_message and 0 < poor.cost_usd <= 0.02


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_api_url")
def test_long_text_pdfs_through_a_16k_context_model_are_split_by_tokens_and_never_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for pages in (120, 40):  # ~600 tokens a page: 72k and 24k tokens, both over a 16k context
        pdf = samples.new_pdf()
        for n in range(pages):
            pdf.page(samples._text_ops(samples._lines(" ".join(samples.page_text(n + k) for k in range(4)))))
        (docs / f"dense_{pages}.pdf").write_bytes(pdf.build(producer="test"))
    (docs / "one_huge_page.pdf").write_bytes(samples.text_pdf(1, text="word " * 20000))
    with Emulator(models_path=_models_with_small_context(tmp_path, 16384)) as emu:
        monkeypatch.setenv("OPENROUTER_API_KEY", emu.api_key)
        run_flow(sources=[str(docs)], out=str(tmp_path / "out"), base_url=emu.base_url, model="test/context-small")
        rows = results(tmp_path / "out").set_index("path")
        statuses = [r.status for r in _chat_records(emu)]
    print(f"16k context: {rows[['status', 'parts', 'attempts', 'prompt_tokens']].to_dict('index')}")
    assert rows.loc["dense_120.pdf"].status == rows.loc["dense_40.pdf"].status == "ok"
    assert rows.loc["dense_120.pdf"].parts > 1 and rows.loc["dense_40.pdf"].parts > 1
    assert statuses and set(statuses) == {200}  # zero context refusals
    huge = rows.loc["one_huge_page.pdf"]
    assert (huge.status, huge.error_type, huge.cost_usd, huge.attempts) == ("failed", "too_large", 0.0, 0)
