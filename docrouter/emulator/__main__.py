"""`python -m docrouter.emulator`: the emulator as a process (what `docrouter emulator` runs)."""

from __future__ import annotations

import sys

from docrouter.emulator.cli import main_emulator

if __name__ == "__main__":
    sys.exit(main_emulator())
