"""How a filesystem path is stored in results: UTF-8 text that leads back to exactly one file.

Linux names are bytes, Parquet strings are UTF-8: valid UTF-8 is kept as it is, every byte that is not UTF-8
becomes %XX (upper-case hex), and so does '%' itself (%25), so that a stored name is never ambiguous.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_ESCAPED = re.compile(r"%([0-9A-Fa-f]{2})")


def escape_name(name: str) -> str:
    """A filesystem path as stored in results: '%' becomes %25 and every byte that is not UTF-8 becomes %XX
    (upper-case hex), the rest stays as it is; distinct names stay distinct and `unescape_name` inverts it."""
    text = os.fsencode(name).decode("utf-8", "surrogateescape").replace("%", "%25")
    return "".join(f"%{ord(c) - 0xDC00:02X}" if "\udc80" <= c <= "\udcff" else c for c in text)


def unescape_name(stored: str) -> str:
    """The filesystem path that `escape_name` stored."""
    raw = b"".join(
        bytes([int(piece, 16)]) if i % 2 else piece.encode("utf-8") for i, piece in enumerate(_ESCAPED.split(stored))
    )
    return os.fsdecode(raw)


def stored_file(source_root: str, path: str) -> Path:
    """The file a results row names (its source_root and path columns)."""
    return Path(unescape_name(source_root)) / unescape_name(path)
