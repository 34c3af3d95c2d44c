"""The prompt's size against the model's context, checked before a run starts (not per document, after it)."""

from __future__ import annotations

from docrouter.catalogue import ModelInfo
from docrouter.errors import ConfigError
from docrouter.route import reasoning
from docrouter.route.pricing import PriceBook
from docrouter.run.config import RunConfig


def check_prompt_room(config: RunConfig, model: ModelInfo) -> None:
    """A one-line ConfigError when the instructions (prompt, schema, system prompt) and the request's max_tokens
    fill the model's context: every document would be too_large, found only after Prefect's start-up."""
    context = model.usable_context
    if not context:
        return
    chars = config.instruction_chars + len(config.system_prompt or "")
    prompt_tokens = PriceBook().tokens(chars)
    answer = reasoning.resolve(config.reasoning, model, config.max_tokens).max_tokens(config.max_tokens)
    if prompt_tokens + answer >= context:
        raise ConfigError(
            f"the prompt is too long for {model.id}: about {prompt_tokens:,} tokens (estimated at characters / 4) "
            f"plus max_tokens {answer:,} leave no room for a document in its {context:,}-token context; "
            "shorten the prompt, schema or system prompt, or lower --max-tokens"
        )
