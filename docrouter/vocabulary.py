"""docrouter's closed vocabularies: the names of engines, statuses and error types every stage shares.

Imports nothing from docrouter: every stage, the store and the emulator may import it.
"""

from __future__ import annotations

# Engines that return a reusable parse (file annotations): resending it skips the parse fee.
PARSING_ENGINES = frozenset({"pdf-text", "mistral-ocr"})
