"""How long an answer is expected to be: learned from answers already paid for, else a stated prior.

The prior depends on the prompt and --max-tokens: a prompt that asks for the whole text (transcribe,
verbatim, extract all, markdown) expects three quarters of --max-tokens; any other prompt (a summary,
a few fields) expects 256 tokens, never more than --max-tokens. Observed answers, from --out and from a
small per-user history under the cache directory (keyed by model and prompt), pull the figure towards
what was billed; the prior counts as PRIOR_WEIGHT answers, so a handful of observations decide.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from docrouter.catalogue import cache_dir

PRIOR_WEIGHT = 2  # the prior counts as this many observed answers
SHORT_ANSWER_TOKENS = 256
WHOLE_TEXT = re.compile(r"transcri|verbatim|full text|all (of )?the text|extract all|markdown", re.IGNORECASE)
HISTORY_FILE = "answer-lengths.json"


@dataclass(frozen=True)
class AnswerLength:
    """The expected answer length in tokens, and where it comes from (for the plan and the report)."""

    tokens: int
    observed: int  # answers it learned from (0: the prior alone)

    @property
    def source(self) -> str:
        return f"learned from {self.observed} answers" if self.observed else "prior"


def prior_tokens(prompt: str, max_tokens: int) -> int:
    """The stated prior (see the module docstring)."""
    if WHOLE_TEXT.search(prompt):
        return max(1, max_tokens * 3 // 4)
    return min(max_tokens, SHORT_ANSWER_TOKENS)


def expected_answer(
    prompt: str, max_tokens: int, observed: Sequence[int], user: tuple[int, int] = (0, 0)
) -> AnswerLength:
    """The prior blended with the answers observed in DIR, else with the user's (count, token sum) history
    (which already holds DIR's answers when this user paid for them: never both, or they would count twice)."""
    count, total = (len(observed), sum(observed)) if observed else user
    blended = (total + PRIOR_WEIGHT * prior_tokens(prompt, max_tokens)) / (count + PRIOR_WEIGHT)
    return AnswerLength(max(1, min(max_tokens, round(blended))), count)


def _history_path() -> Path:
    return cache_dir() / HISTORY_FILE


def _history_key(model: str, prompt_sha256: str) -> str:
    return f"{model}|{prompt_sha256}"


def read_user_history(model: str, prompt_sha256: str) -> tuple[int, int]:
    """(answers, completion tokens) seen by earlier runs of this user for the model and prompt."""
    try:
        entry = json.loads(_history_path().read_text()).get(_history_key(model, prompt_sha256))
    except (OSError, ValueError, AttributeError):
        return (0, 0)  # no history yet, or a damaged file: the prior and DIR decide
    if not isinstance(entry, list) or len(entry) != 2 or not all(isinstance(v, int) for v in entry):
        return (0, 0)
    return (entry[0], entry[1])


def remember_answers(model: str, prompt_sha256: str, tokens: Sequence[int]) -> None:
    """Add a run's paid answers to the user's history (best effort: a cache, never worth failing a run)."""
    if not tokens:
        return
    path = _history_path()
    try:
        data = json.loads(path.read_text()) if path.exists() else {}
        if not isinstance(data, dict):
            data = {}
        count, total = read_user_history(model, prompt_sha256)
        data[_history_key(model, prompt_sha256)] = [count + len(tokens), total + sum(tokens)]
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(f".{os.getpid()}.tmp")
        temp.write_text(json.dumps(data, sort_keys=True))
        os.replace(temp, path)
    except (OSError, ValueError):
        return
