"""Reasoning models: how many reasoning tokens a request spends, by the model's knob and the request.

As on the real API (reference/openrouter-api.md, "reasoning tokens are completion tokens"): reasoning
comes out of max_tokens first, the answer gets what is left (nothing left: content "" with
finish_reason "length"), and usage.completion_tokens_details.reasoning_tokens reports it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

EFFORT_SCALE = {"minimal": 0.25, "low": 0.5, "medium": 1.0, "high": 2.0}  # of the default tokens
MANDATORY_MESSAGE = "Reasoning is mandatory for this endpoint and cannot be disabled."


class ReasoningRefused(ValueError):
    """The request turns reasoning off on a model that always reasons (a 400)."""


@dataclass(frozen=True)
class ReasoningKnob:
    """A model that reasons: `tokens` at its default effort (no `reasoning` parameter, or medium)."""

    tokens: int
    mandatory: bool = False
    efforts: Mapping[str, int] = field(default_factory=dict)  # tokens at an effort; else tokens x EFFORT_SCALE

    def __post_init__(self) -> None:
        if self.tokens < 0 or any(n < 0 for n in self.efforts.values()):
            raise ValueError("reasoning tokens cannot be negative")
        unknown = set(self.efforts) - set(EFFORT_SCALE)
        if unknown:
            raise ValueError(f"unknown reasoning effort(s) {sorted(unknown)}; known: {', '.join(EFFORT_SCALE)}")

    def spent(self, parameter: Any) -> int:
        """Reasoning tokens the request asks for (before max_tokens cuts them); ReasoningRefused for off."""
        asked = parameter if isinstance(parameter, dict) else {}
        off = asked.get("enabled") is False or asked.get("effort") == "none"
        if off:
            if self.mandatory:
                raise ReasoningRefused(MANDATORY_MESSAGE)
            return 0
        effort = asked.get("effort")
        if effort in EFFORT_SCALE:
            return self.efforts.get(effort, round(self.tokens * EFFORT_SCALE[effort]))
        budget = asked.get("max_tokens")
        if isinstance(budget, int) and not isinstance(budget, bool) and budget >= 0:
            return min(budget, self.tokens)
        return self.tokens


def parse_knob(text: str) -> tuple[str, ReasoningKnob]:
    """`MODEL=TOKENS[,mandatory][,low=N]...` (the CLI's --reasoning-model) as a model id and its knob."""
    model, sep, rest = text.partition("=")
    fields = [f.strip() for f in rest.split(",") if f.strip()]
    if not sep or not model.strip() or not fields:
        raise ValueError(f"--reasoning-model {text!r}: expected MODEL=TOKENS[,mandatory][,low=N]")
    try:
        tokens = int(fields[0])
        efforts = {k.strip(): int(v) for k, _, v in (f.partition("=") for f in fields[1:] if "=" in f)}
        flags = {f for f in fields[1:] if "=" not in f}
        if flags - {"mandatory"}:
            raise ValueError(f"unknown option(s) {sorted(flags - {'mandatory'})}")
        return model.strip(), ReasoningKnob(tokens, "mandatory" in flags, efforts)
    except ValueError as exc:
        raise ValueError(f"--reasoning-model {text!r}: {exc}") from None


def listed(raw: dict[str, Any], knob: ReasoningKnob) -> dict[str, Any]:
    """The /models object of a model with this knob: `reasoning` and its supported parameters, as the API lists them."""
    updated = copy.deepcopy(raw)
    updated["reasoning"] = {"mandatory": knob.mandatory, "default_enabled": True}
    parameters = list(updated.get("supported_parameters") or [])
    added = [name for name in ("include_reasoning", "reasoning") if name not in parameters]
    updated["supported_parameters"] = parameters + added
    return updated


def split_output(reasoning: int, max_tokens: int | None) -> tuple[int, int | None]:
    """(reasoning tokens spent, tokens left for the answer): reasoning comes out of max_tokens first."""
    if max_tokens is None:
        return reasoning, None
    spent = min(reasoning, max_tokens)
    return spent, max_tokens - spent
