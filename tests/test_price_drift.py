"""The budget holds when the server bills more than the model list says (emulator billing multipliers).

Tokens are capped by provider.max_price (the server refuses a provider above it); the OCR page fee,
which max_price cannot cap, is learned from the bills. Each test prints billed vs budget.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from docrouter.emulator import Emulator
from pipeline import results, run_flow, write_corpus

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api_url")]

BUDGETS = (0.015, 0.2)  # less than one request at the real price, and several requests
CASES = {
    # prices x10 over /models; a headroom of 10 lets the tokens through at up to 11x, so both mechanisms
    # work at once: token reservations at the max price, and the OCR fee learned from the bills
    "tokens+ocr": {"price_multiplier": 10.0, "ocr_fee_multiplier": 10.0, "price_headroom": 10.0},
    # only the OCR fee moved: max_price cannot see it, only the bills can
    "ocr alone": {"price_multiplier": 1.0, "ocr_fee_multiplier": 10.0, "price_headroom": 0.25},
}


def chat_bills(emu: Emulator) -> list[float]:
    return [r.billed_usd for r in emu.records if r.path.endswith("/chat/completions")]


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("concurrency", [1, 8, 32])
@pytest.mark.parametrize("case", list(CASES))
def test_a_tenfold_price_costs_at_most_one_request_over_the_budget(
    case: str, concurrency: int, budget: float, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    knobs = dict(CASES[case])
    headroom = knobs.pop("price_headroom")
    write_corpus(tmp_path / "docs", scans=24)
    with Emulator(seed=5, **knobs) as emu:
        monkeypatch.setenv("OPENROUTER_API_KEY", emu.api_key)
        summary = run_flow(
            sources=[str(tmp_path / "docs")],
            out=str(tmp_path / "out"),
            base_url=emu.base_url,
            engine="mistral-ocr",
            budget=budget,
            concurrency=concurrency,
            price_headroom=headroom,
            max_tokens=256,
        )
        billed, bills = emu.billed_usd, chat_bills(emu)
    largest = max(bills)
    rows = results(tmp_path / "out")
    print(
        f"\nprice drift x10 ({case}), concurrency {concurrency}: billed ${billed:.4f} of a ${budget:.3f} budget "
        f"(largest request ${largest:.4f}; {len([b for b in bills if b])} billed requests; "
        f"ok {int((rows.status == 'ok').sum())}, over_budget {int((rows.status == 'over_budget').sum())})"
    )
    assert billed <= budget + largest
    assert rows.cost_usd.sum() == pytest.approx(billed, abs=1e-9)
    assert summary["spent_usd"] == pytest.approx(billed, abs=1e-6)
    assert summary["fee_ratios"]["ocr"] == pytest.approx(10.0)
    assert any("10.00x" in note for note in summary["price_notes"])
    assert {"ok", "over_budget"} <= set(rows.status)


def test_token_prices_above_the_max_price_are_refused_by_the_server_not_billed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_corpus(tmp_path / "docs", text=2, scans=2)
    with Emulator(seed=5, price_multiplier=10.0) as emu:
        monkeypatch.setenv("OPENROUTER_API_KEY", emu.api_key)
        summary = run_flow(sources=[str(tmp_path / "docs")], out=str(tmp_path / "out"), base_url=emu.base_url)
        billed = emu.billed_usd
        sent = [r for r in emu.records if r.path.endswith("/chat/completions")]
    rows = results(tmp_path / "out")
    assert billed == 0.0 and all(r.status == 404 for r in sent)
    assert len(sent) == 4  # one attempt each: the same max price would be refused again
    assert set(rows.error_type) == {"price"} and set(rows.status) == {"failed"}
    assert "--refresh-models" in rows.error_message.iloc[0] and "--price-headroom" in rows.error_message.iloc[0]
    assert summary["failures"] == {"price": 4}

    from docrouter_commands.cli import render_summary

    assert "--refresh-models" in render_summary(summary) and "--price-headroom" in render_summary(summary)


def test_every_request_tells_the_server_the_most_it_will_pay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_corpus(tmp_path / "docs", text=1)
    with Emulator(seed=5) as emu:
        monkeypatch.setenv("OPENROUTER_API_KEY", emu.api_key)
        model = emu.state.models["google/gemini-2.5-flash"].info
        run_flow(
            sources=[str(tmp_path / "docs")],
            out=str(tmp_path / "out"),
            base_url=emu.base_url,
            price_headroom=0.5,
            engine="local-text",
        )
        seen = [r for r in emu.records if r.path.endswith("/chat/completions")]
    assert len(seen) == 1 and seen[0].status == 200
    assert seen[0].max_price == {
        "prompt": pytest.approx(model.prompt_price * 1.5e6),
        "completion": pytest.approx(model.completion_price * 1.5e6),
    }


def test_byok_bills_count_the_upstream_cost_and_the_budget_bounds_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_corpus(tmp_path / "docs", text=6, scans=6)
    budget = 0.01
    with Emulator(seed=5, byok=True) as emu:
        monkeypatch.setenv("OPENROUTER_API_KEY", emu.api_key)
        summary = run_flow(
            sources=[str(tmp_path / "docs")], out=str(tmp_path / "out"), base_url=emu.base_url, budget=budget,
            engine="mistral-ocr",
        )  # fmt: skip
        billed = emu.billed_usd
    rows = results(tmp_path / "out")
    assert billed > 0 and billed <= budget
    assert rows.cost_usd.sum() == pytest.approx(billed, abs=1e-9)  # not just OpenRouter's share in usage.cost
    assert summary["spent_usd"] == pytest.approx(billed, abs=1e-6)


def test_an_answer_lost_after_billing_settles_to_what_get_generation_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dropped body stays reserved until GET /generation (which lags) tells its cost: spent == billed."""
    from docrouter.emulator import Faults

    write_corpus(tmp_path / "docs", text=4, scans=4)
    with Emulator(seed=9) as emu:
        emu.set_faults(Faults(rate_drop_after_billing=0.3, generation_404_seconds=0.3))
        monkeypatch.setenv("OPENROUTER_API_KEY", emu.api_key)
        summary = run_flow(sources=[str(tmp_path / "docs")], out=str(tmp_path / "out"), base_url=emu.base_url)
        billed = emu.billed_usd
        lookups = [r for r in emu.records if r.path.endswith("/generation")]
        dropped = [r for r in emu.records if r.fault == "drop_after_billing"]
    rows = results(tmp_path / "out")
    assert dropped and lookups  # the fault happened, and its cost was asked for
    assert summary["spent_usd"] == pytest.approx(billed, abs=1e-6)  # not the reservations of the lost answers
    assert rows.cost_usd.sum() == pytest.approx(billed, abs=1e-9)
    assert "ok" in set(rows.status)
