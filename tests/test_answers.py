"""The expected answer length: a stated prior, pulled towards the answers already paid for."""

from __future__ import annotations

from pathlib import Path

import pytest

from docrouter.route.answers import (
    PRIOR_WEIGHT,
    SHORT_ANSWER_TOKENS,
    expected_answer,
    prior_tokens,
    read_user_history,
    remember_answers,
)
from docrouter.run.config import DEFAULT_PROMPT


def test_the_prior_depends_on_the_prompt_and_max_tokens() -> None:
    assert prior_tokens(DEFAULT_PROMPT, 1024) == SHORT_ANSWER_TOKENS
    assert prior_tokens(DEFAULT_PROMPT, 100) == 100  # never more than --max-tokens
    assert prior_tokens("Transcribe this page as Markdown.", 4000) == 3000


def test_observed_answers_outweigh_the_prior_after_a_few() -> None:
    alone = expected_answer(DEFAULT_PROMPT, 1024, [])
    assert (alone.tokens, alone.observed, alone.source) == (SHORT_ANSWER_TOKENS, 0, "prior")
    learned = expected_answer(DEFAULT_PROMPT, 1024, [60] * 18)
    assert learned.tokens == round((18 * 60 + PRIOR_WEIGHT * SHORT_ANSWER_TOKENS) / 20)
    assert learned.source == "learned from 18 answers"
    assert expected_answer(DEFAULT_PROMPT, 50, [900] * 10).tokens == 50  # capped by --max-tokens


def test_the_user_history_counts_only_when_dir_has_no_answers() -> None:
    assert expected_answer(DEFAULT_PROMPT, 1024, [], user=(8, 800)).tokens == round((800 + 2 * 256) / 10)
    assert expected_answer(DEFAULT_PROMPT, 1024, [100] * 8, user=(1000, 10**6)).tokens == round((800 + 512) / 10)


def test_the_user_history_is_kept_per_model_and_prompt_under_the_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert read_user_history("m", "p") == (0, 0)
    remember_answers("m", "p", [10, 20])
    remember_answers("m", "p", [30])
    remember_answers("other", "p", [5])
    assert read_user_history("m", "p") == (3, 60)
    assert read_user_history("other", "p") == (1, 5)
    (tmp_path / "docrouter" / "answer-lengths.json").write_text("not json")
    assert read_user_history("m", "p") == (0, 0)  # a damaged cache is no history, not an error
