"""`docrouter ask`: a follow-up question about one answered document, reusing its stored parse.

The work is docrouter.run.asking's; this module parses and prints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from docrouter.run.asking import Question, ask


def ask_command(args: argparse.Namespace) -> int:
    """Print the answer to stdout and what it cost to stderr."""
    question = Question(
        out=Path(args.dir),
        doc=args.doc,
        question=args.question,
        model=args.model,
        max_tokens=args.max_tokens,
        offline=args.offline,
        base_url=args.base_url,
    )
    asked = ask(question)
    attempted = asked.attempted
    if attempted.completion is None:
        assert attempted.error is not None
        print(f"docrouter: error: {attempted.error.error_type}: {attempted.error.message}", file=sys.stderr)
        return 1
    completion = attempted.completion
    if completion.truncated:  # reasoning tokens come out of max_tokens first; say so rather than print a stub
        cut = f"cut by the length limit ({completion.reasoning_tokens} tokens spent reasoning)"
        print(f"docrouter: the answer was {cut}; ask again with a larger --max-tokens", file=sys.stderr)
        if not completion.content.strip():
            return 1
    print(completion.content)
    reused = " (stored parse reused: no parse fee)" if asked.reused_parse else ""
    print(f"docrouter: {asked.row['path']}: ${attempted.cost_usd:.6f}{reused}", file=sys.stderr)
    return 0
