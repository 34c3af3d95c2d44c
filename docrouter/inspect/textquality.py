"""Per-page text metrics (pdf-heuristics.md §3.3 stage 2): is extracted text words, junk, or glyph soup?"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from dataclasses import dataclass

# Thresholds from pdf-heuristics.md §3.3.
GARBLED_SHARE = 0.05  # U+FFFD or control characters
GLYPHNAME_SHARE = 0.2
MIN_SCRIPT_SHARE = 0.7
MIN_SCRIPT_LETTERS = 20  # fewer letters than this say nothing about scripts
MAX_MIXED_SCRIPT = 0.2  # letters in words that mix scripts (mojibake); multilingual text keeps words whole
MIN_WORD_RATIO = 0.45
DEGRADED_SHARE = 0.01
DEGRADED_WORD_RATIO = 0.7
GOOD_OCR_WORD_RATIO = 0.85
GOOD_OCR_TOKEN_LEN = 3.0

_GLYPH_NAMES = re.compile(r"/(?:g|G|glyph)\d+|/uni[0-9A-Fa-f]{4,6}|\(cid:\d+\)")
_PUNCTUATION = string.punctuation + "«»“”‘’„‹›–—…·•¡¿"
_INNER = str.maketrans("", "", "-'’.,/")  # hyphenated words, contractions, numbers like 1,000.50
_SINGLE_LETTER_WORDS = frozenset("aAIiOoyYwWzZeEuUàÀ")
_EAST_ASIAN = frozenset({"CJK", "HIRAGANA", "KATAKANA", "HANGUL", "KANGXI", "IDEOGRAPHIC", "HALFWIDTH", "BOPOMOFO"})
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class TextQuality:
    """Shape of one page's extracted text."""

    chars: int = 0  # non-whitespace characters
    length: int = 0  # characters with whitespace runs collapsed: what a text engine would send
    tokens: int = 0
    fffd_share: float = 0.0
    ctrl_share: float = 0.0
    glyphname_share: float = 0.0
    word_ratio: float = 1.0
    mean_token_len: float = 0.0
    dominant_script_share: float = 1.0
    mixed_script_share: float = 0.0  # letters in tokens whose letters come from two or more scripts

    @property
    def garbled(self) -> bool:
        """The text decodes to garbage: replacement/control characters, glyph names, mixed scripts, non-words.

        Several scripts alone are not garbage (a multilingual page); scripts mixed inside words, or next to
        few real words, are.
        """
        if not self.chars:
            return False
        return (
            self.fffd_share > GARBLED_SHARE
            or self.ctrl_share > GARBLED_SHARE
            or self.glyphname_share > GLYPHNAME_SHARE
            or self.mixed_script_share > MAX_MIXED_SCRIPT
            or (self.dominant_script_share < MIN_SCRIPT_SHARE and self.word_ratio < DEGRADED_WORD_RATIO)
            or (self.tokens >= 5 and self.word_ratio < MIN_WORD_RATIO)
        )

    @property
    def degraded(self) -> bool:
        """Usable for summaries, but flagged."""
        return (
            self.fffd_share > DEGRADED_SHARE
            or self.ctrl_share > DEGRADED_SHARE
            or self.word_ratio < DEGRADED_WORD_RATIO
        )

    @property
    def good_ocr(self) -> bool:
        """An OCR layer worth trusting: mostly real words of ordinary length, no mild flags."""
        return (
            self.word_ratio >= GOOD_OCR_WORD_RATIO
            and self.mean_token_len >= GOOD_OCR_TOKEN_LEN
            and not self.degraded
            and not self.garbled
        )


def measure_text(text: str) -> TextQuality:
    """The metrics of one page's text (an empty text gives chars == 0)."""
    visible = [c for c in text if not c.isspace()]
    chars = len(visible)
    if not chars:
        return TextQuality()
    tokens = text.split()
    dominant, mixed = _script_shares(tokens)
    return TextQuality(
        chars=chars,
        length=len(_WHITESPACE.sub(" ", text).strip()),
        tokens=len(tokens),
        fffd_share=text.count("\ufffd") / chars,
        ctrl_share=sum(_is_control(c) for c in visible) / chars,
        glyphname_share=sum(len(m) for m in _GLYPH_NAMES.findall(text)) / chars,
        word_ratio=sum(_is_word(t) for t in tokens) / len(tokens),
        mean_token_len=sum(len(t) for t in tokens) / len(tokens),
        dominant_script_share=dominant,
        mixed_script_share=mixed,
    )


def _is_control(c: str) -> bool:
    return unicodedata.category(c) in ("Cc", "Co", "Cn")  # whitespace (\t\n\r) never reaches here


def _is_word(token: str) -> bool:
    """Alphabetic of length >= 2 (or a one-letter word), or a number, once punctuation is stripped."""
    core = token.strip(_PUNCTUATION)
    if not core:
        return False
    if len(core) == 1:
        return core in _SINGLE_LETTER_WORDS or core.isdigit()
    joined = core.translate(_INNER)
    return bool(joined) and (joined.isalpha() or joined.isdigit())


def _script_shares(tokens: list[str]) -> tuple[float, float]:
    """(share of letters in the most common script, share of letters in tokens mixing scripts)."""
    scripts: Counter[str] = Counter()
    mixed = 0
    for token in tokens:
        own = [_script(c) for c in token if c.isalpha()]
        scripts.update(own)
        if len(set(own)) > 1:
            mixed += len(own)
    total = sum(scripts.values())
    if total < MIN_SCRIPT_LETTERS:
        return 1.0, 0.0
    return scripts.most_common(1)[0][1] / total, mixed / total


def _script(c: str) -> str:
    if c.isascii():
        return "LATIN"
    word = unicodedata.name(c, "UNKNOWN").split(" ", 1)[0]
    return "CJK" if word in _EAST_ASIAN else word
