"""An OpenRouter-compatible HTTP server: the `--offline` backend and every module's test double.

It follows reference/openrouter-api.md: chat completions with text, image_url and file parts, the
file-parser plugin (mistral-ocr, cloudflare-ai/pdf-text, native) with annotations and their reuse,
full usage with cost, /models, /generation, /key, /credits, and fault knobs driven by a seeded RNG.
"""

from __future__ import annotations

from docrouter.emulator.cli import add_emulator_arguments, main_emulator, run_emulator
from docrouter.emulator.faults import FAULT_KINDS, Faults
from docrouter.emulator.records import RequestRecord
from docrouter.emulator.runner import Emulator
from docrouter.emulator.state import DEFAULT_API_KEY
from docrouter.emulator.thinking import ReasoningKnob

__all__ = [
    "DEFAULT_API_KEY",
    "FAULT_KINDS",
    "Emulator",
    "Faults",
    "ReasoningKnob",
    "RequestRecord",
    "add_emulator_arguments",
    "main_emulator",
    "run_emulator",
]
