"""Large texts (a prompt, a system prompt) reach a flow run by reference: a content-addressed file under DIR.

A flow run's parameters live in Prefect's database, are shown in its UI and sent on every API call about the
run; a 1 MB prompt has no place there. The CLI stores such a text once as DIR/_inputs/<sha256>.txt and passes
its path (`prompt_file`, `system_prompt_file`); the flow reads it back. DIR is shared with a deployment's
workers, so they read the same file; its name is its hash, so rewriting it never changes what a run asked.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from docrouter.discover.urls import is_url

INLINE_TEXT_CHARS = 16_384  # a longer prompt or system prompt is passed by reference, as a larger schema is
INPUTS_DIR = "_inputs"
# flow parameter holding the text -> the parameter holding its path instead
REFERENCED = {"prompt": "prompt_file", "system_prompt": "system_prompt_file"}


def portable(parameters: dict[str, Any]) -> dict[str, Any]:
    """A flow run's parameters as they should be stored: local paths absolute (the run's working folder is gone
    once it ends, and a worker has another), large texts by reference."""
    moved = dict(parameters)
    moved["sources"] = [s if is_url(s) else os.path.abspath(s) for s in parameters["sources"]]
    moved["urls"] = [os.path.abspath(u) for u in parameters.get("urls") or ()]
    moved["out"] = os.path.abspath(parameters["out"])
    return by_reference(moved, moved["out"])


def by_reference(parameters: dict[str, Any], out: str) -> dict[str, Any]:
    """`parameters` with every text over INLINE_TEXT_CHARS replaced by the path of its stored copy."""
    moved = dict(parameters)
    for name, file_name in REFERENCED.items():
        text = moved.get(name)
        if isinstance(text, str) and len(text) > INLINE_TEXT_CHARS:
            moved[file_name] = stash_text(Path(out), text)
            del moved[name]  # the flow's default stands in; prompt_file beats it
    return moved


def stash_text(out: Path, text: str) -> str:
    """The absolute path of DIR/_inputs/<sha256>.txt holding `text` (written atomically once, then reused)."""
    data = text.encode("utf-8")
    folder = out.absolute() / INPUTS_DIR
    path = folder / f"{hashlib.sha256(data).hexdigest()}.txt"
    if path.is_file() and path.stat().st_size == len(data):
        return str(path)
    folder.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return str(path)
