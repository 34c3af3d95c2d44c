"""`docrouter COMMAND --help`, as a newcomer reads it: every flag that takes a value says its default (or that it
is required), and every command shows examples."""

from __future__ import annotations

import re

import pytest

from test_cli import COMMANDS, docrouter_cli

pytestmark = pytest.mark.slow  # every test runs the console script in a subprocess

FLAG_WITH_VALUE = re.compile(r"^(-\w, )?--[\w-]+ [A-Z{]")  # "--port PORT", "--engine {auto,...}", "-x, --xy N"


def flag_entries(help_text: str) -> list[str]:
    """Each option's entry in argparse's help: its first line and the indented lines after it, joined."""
    entries: list[list[str]] = []
    current: list[str] | None = None
    for line in help_text.splitlines():
        if line.startswith("  -"):
            current = [line]
            entries.append(current)
        elif current is not None and line.startswith("    "):
            current.append(line)
        else:
            current = None
    return [" ".join(" ".join(entry).split()) for entry in entries]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_with_a_value_shows_its_default(command: str) -> None:
    done = docrouter_cli(command, "--help")
    assert done.returncode == 0, done.stderr
    assert len(flag_entries(done.stdout)) >= 3, done.stdout  # the parsing found the flags
    entries = [entry for entry in flag_entries(done.stdout) if FLAG_WITH_VALUE.match(entry)]
    silent = [entry for entry in entries if "default" not in entry and "(required)" not in entry]
    assert silent == [], "\n".join(silent)


@pytest.mark.parametrize("command", [*COMMANDS, None])
def test_every_command_shows_examples_of_itself(command: str | None) -> None:
    done = docrouter_cli(*([command] if command else []), "--help")
    assert done.returncode == 0, done.stderr
    examples = done.stdout.split("\nexamples:\n", 1)[1].splitlines()
    invocations = [line for line in examples if line.startswith(f"  docrouter {command or ''}".rstrip())]
    assert len(invocations) >= 2, done.stdout
