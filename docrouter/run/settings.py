"""Run settings described once: each RunConfig field carries a Setting naming its flag, flow parameter and help.

The command line builds its flags from these (docrouter_commands.cli), the flows take their defaults from
`defaults()`, and the range checks read `bounds` here; tests/test_settings_source.py checks that the
flows, prefect.yaml and the README agree with them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import MISSING, dataclass
from typing import Any, Literal

KEY = "docrouter.setting"  # the field metadata key
# How the command line reads a value: as typed, a number, a whole number, a byte count (2G), a switch
# (store_true), a repeatable flag (a list), or one comma-separated list (A,B).
Kind = Literal["text", "number", "whole", "size", "switch", "repeat", "commas"]


@dataclass(frozen=True)
class Setting:
    """One run setting: a flow parameter, and a flag of `run` (and `plan`, unless run_only) when it has help."""

    help: str | None = None  # the flag's help ({default}, {low}, {high} filled in); None: a flow parameter only
    parameter: str | None = None  # the flow parameter's name (the flag's, with dashes) when not the field's
    kind: Kind = "text"
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    run_only: bool = False  # `plan` has no such flag
    bounds: tuple[float, float] | None = None  # (low, high): RunConfig checks it is finite and within them
    from_file: tuple[str, str] | None = None  # (flag, help) of the one-or-other flag that reads the text from a file

    @property
    def is_flag(self) -> bool:
        return self.help is not None

    @property
    def is_list(self) -> bool:
        return self.kind in ("repeat", "commas")


def setting(default: Any, help: str | None = None, **how: Any) -> Any:
    """A RunConfig field with its default and its Setting (how the flag, the flows and the docs name it)."""
    return dataclasses.field(default=default, metadata=parameter(help, **how))


def parameter(help: str | None = None, **how: Any) -> dict[str, Setting]:
    """The field metadata of a setting (for a required field: `field(metadata=parameter())`)."""
    return {KEY: Setting(help, **how)}


@dataclass(frozen=True)
class Described:
    """A field that has a Setting: its name, its flow parameter's name and its default (MISSING: required)."""

    field: str
    parameter: str
    default: Any
    setting: Setting

    @property
    def flag(self) -> str:
        """The flag (--ocr-fee), or the parameter's own name for a setting that is not a flag (shards)."""
        return f"--{self.parameter.replace('_', '-')}" if self.setting.is_flag else self.parameter


def described(cls: type) -> Iterator[Described]:
    """The fields of dataclass `cls` that carry a Setting, in field order."""
    for f in dataclasses.fields(cls):
        if KEY in f.metadata:
            how: Setting = f.metadata[KEY]
            yield Described(f.name, how.parameter or f.name, f.default, how)


def defaults(cls: type) -> dict[str, Any]:
    """Every setting's default by flow parameter name (required ones left out): what the flows default to."""
    return {d.parameter: d.default for d in described(cls) if d.default is not MISSING}
