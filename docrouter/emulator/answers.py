"""The emulator's answers: deterministic, and honest that they are emulated (an extractive summary)."""

from __future__ import annotations

import re

from docrouter.emulator.intake import ImageInput

SUMMARY_SENTENCES = 5
SUMMARY_CHARS = 1200
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def extractive_summary(text: str) -> str:
    """The first sentences of `text` (whitespace folded), or a note that there was nothing to read."""
    flat = " ".join(text.split())
    if not flat:
        return "No readable text was provided."
    summary = ""
    for sentence in _SENTENCE_END.split(flat)[:SUMMARY_SENTENCES]:
        candidate = f"{summary} {sentence}".strip()
        if len(candidate) > SUMMARY_CHARS:
            return summary or candidate[:SUMMARY_CHARS]
        summary = candidate
    return summary


def describe_image(image: ImageInput) -> str:
    """What the emulator can honestly say about an image: its format and size."""
    kind = image.mime.split("/")[-1].upper()
    return f"A {kind} image of {image.width}x{image.height} pixels."


def compose(model_id: str, sources: list[str], max_tokens: int | None) -> tuple[str, str]:
    """(content, finish_reason): the summary, cut to max_tokens * 4 characters ("length") if needed."""
    summaries = [extractive_summary(source) for source in sources] or [extractive_summary("")]
    content = f"[emulated answer by {model_id}] " + " ".join(summaries)
    limit = max_tokens * 4 if max_tokens is not None else None
    if limit is not None and len(content) > limit:
        return content[:limit], "length"
    return content, "stop"
