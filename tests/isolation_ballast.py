"""A module whose import maps 512 MB of address space (never touched: no RSS), like pyarrow's allocator does.

Workers import it when they unpickle their function, before their memory limit is set.
"""

from __future__ import annotations

import mmap

_BALLAST = mmap.mmap(-1, 512 * 2**20)


def allocate(megabytes: int) -> int:
    """Touch `megabytes` of fresh memory; its length when that was allowed."""
    return len(bytearray(megabytes * 2**20))
