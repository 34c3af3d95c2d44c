"""The `--reasoning` setting: what to send as OpenRouter's `reasoning` parameter, and the tokens it may take.

Reasoning tokens are completion tokens: they come out of `max_tokens` before the answer does. So a
request that reasons is sent with `max_tokens` = the answer cap plus a reasoning budget, and its cost
bound counts both. `auto` asks for no reasoning where the model allows it off, else the lowest effort.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from docrouter.catalogue import ModelInfo
from docrouter.errors import ConfigError

EFFORTS = ("minimal", "low", "medium", "high")
SETTINGS = ("auto", "off", *EFFORTS)
# Reasoning tokens reserved per effort, on top of the answer cap (OpenRouter turns an effort into a budget
# of 10-80% of max_tokens on budget-based models; these leave the answer at least its own cap).
BUDGET_TOKENS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384}
AUTO_EFFORT = "low"  # the lowest effort every effort-taking model accepts (minimal is OpenAI-only)


@dataclass(frozen=True)
class Reasoning:
    """The reasoning a run's requests ask for: the parameter sent and the tokens reserved for it."""

    setting: str  # as asked: auto, off or an effort
    effort: str | None  # None: reasoning off (or a model that does not reason)
    budget_tokens: int  # reasoning tokens counted on top of the answer cap
    parameter: dict[str, Any] | None  # the request's `reasoning` object; None: not sent

    def max_tokens(self, answer_cap: int) -> int:
        """The request's max_tokens: room for the reasoning, then the answer."""
        return answer_cap + self.budget_tokens


def check_setting(setting: str) -> None:
    """A ConfigError for a value that is not one of SETTINGS."""
    if setting not in SETTINGS:
        raise ConfigError(f"--reasoning must be one of {', '.join(SETTINGS)}, not {setting!r}")


def resolve(setting: str, model: ModelInfo, answer_cap: int) -> Reasoning:
    """What `setting` means for `model`; a one-line ConfigError when the model cannot do it."""
    check_setting(setting)
    if not model.reasoning:
        if setting in EFFORTS:
            raise ConfigError(f"model {model.id} does not support reasoning; drop --reasoning {setting} or use auto")
        return Reasoning(setting, None, 0, None)
    if setting == "off" and model.reasoning_mandatory:
        raise ConfigError(f"model {model.id} always reasons (its reasoning is mandatory); use auto or an effort")
    if setting == "off" or (setting == "auto" and not model.reasoning_mandatory):
        return Reasoning(setting, None, 0, {"enabled": False})
    effort = AUTO_EFFORT if setting == "auto" else setting
    return Reasoning(setting, effort, _budget(effort, model, answer_cap), {"effort": effort})


def _budget(effort: str, model: ModelInfo, answer_cap: int) -> int:
    """The effort's budget, kept within the model's completion limit (the answer cap comes first)."""
    budget = BUDGET_TOKENS[effort]
    if model.max_completion_tokens:
        budget = min(budget, max(0, model.max_completion_tokens - answer_cap))
    return budget
