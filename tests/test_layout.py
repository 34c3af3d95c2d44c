"""The import contract: the package listing is SPEC §1's diagram, and every arrow points one way.

Every import statement counts, wherever it is (module top, inside a function, under TYPE_CHECKING), and so
does `importlib.import_module("...")` with a literal name. A stage imports only the vocabulary, the shared
parts and the stages before it; nothing in the library imports prefect, the flows, the tasks or the
commands; the emulator imports only the vocabulary, the model catalogue and the PDF readers.
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import docrouter

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {
    "docrouter": REPO / "docrouter",
    "docrouter_tasks": REPO / "tasks" / "docrouter_tasks",
    "docrouter_flows": REPO / "flows" / "docrouter_flows",
    "docrouter_commands": REPO / "commands" / "docrouter_commands",
}

# The library's layers, lowest first: a module may import its own layer and the layers below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("docrouter", "docrouter.errors", "docrouter.results", "docrouter.vocabulary", "docrouter.budget",
     "docrouter.redaction"),  # the vocabulary: imported by every stage
    ("docrouter.catalogue", "docrouter.pdf"),  # shared: the model catalogue and the PDF readers
    ("docrouter.discover",),
    ("docrouter.inspect",),
    ("docrouter.route",),
    ("docrouter.call",),
    ("docrouter.store",),
    ("docrouter.run",),  # the composition root: the session and its parts
)  # fmt: skip
EMULATOR_MAY_IMPORT = ("docrouter", "docrouter.errors", "docrouter.vocabulary", "docrouter.catalogue", "docrouter.pdf")
OUTSIDE = {  # what the packages outside the library may import of each other (all may import docrouter)
    "docrouter_tasks": {"docrouter_tasks"},
    "docrouter_flows": {"docrouter_flows", "docrouter_tasks"},
    "docrouter_commands": {"docrouter_commands", "docrouter_flows", "docrouter_tasks"},
}
OURS = ("docrouter", *OUTSIDE)


def modules() -> Iterator[tuple[str, Path]]:
    """(dotted name, file) for every module of the four packages."""
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


def imported(name: str, path: Path) -> Iterator[str]:
    """Every module name `path` imports, lazily or not, resolved to absolute names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
        elif isinstance(node, ast.Call) and _literal_import(node):
            yield node.args[0].value  # type: ignore[attr-defined]


def _literal_import(call: ast.Call) -> bool:
    """`importlib.import_module("name")` or `__import__("name")` with a literal name."""
    named = getattr(call.func, "attr", getattr(call.func, "id", "")) in ("import_module", "__import__")
    return named and bool(call.args) and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)


def within(name: str, prefixes: tuple[str, ...] | set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def layer(name: str) -> int | None:
    """The layer of a library module (None for the emulator and for names that are not modules)."""
    found = [i for i, group in enumerate(LAYERS) for p in group if name == p or name.startswith(p + ".")]
    return max(found, default=None) if not within(name, ("docrouter.emulator",)) else None


def violations() -> list[str]:
    found = []
    for name, path in modules():
        top = name.split(".")[0]
        for target in set(imported(name, path)):
            if not within(target, (*OURS, "prefect", "flows", "tasks")):
                continue
            if top != "docrouter":
                if not within(target, ("docrouter", *OUTSIDE[top], "prefect")):
                    found.append(f"{name} -> {target}")
            elif within(target, ("prefect", "flows", "tasks", *OUTSIDE)):
                found.append(f"{name} -> {target} (the library never reaches up)")
            elif within(name, ("docrouter.emulator",)):
                if not within(target, (*EMULATOR_MAY_IMPORT, "docrouter.emulator")) and target != "docrouter":
                    found.append(f"{name} -> {target} (the emulator is not a client of docrouter)")
            else:
                mine, theirs = layer(name), layer(target)
                if theirs is None and within(target, ("docrouter.emulator",)):
                    if mine is not None and mine < len(LAYERS) - 1:
                        found.append(f"{name} -> {target} (only the composition root starts an emulator)")
                elif mine is not None and theirs is not None and theirs > mine:
                    found.append(f"{name} -> {target} (layer {mine} imports layer {theirs})")
    return sorted(found)


def test_every_library_module_has_a_layer() -> None:
    lost = [name for name, _ in modules() if name.startswith("docrouter.") and layer(name) is None]
    assert [n for n in lost if not within(n, ("docrouter.emulator",))] == []


def test_imports_point_one_way_lazy_ones_included() -> None:
    assert violations() == []


def test_the_contract_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import docrouter.errors\n"
        "def f():\n    from docrouter.store import store\n    import importlib\n"
        "    importlib.import_module('docrouter_flows.run')\n"
        "from . import sibling\n"
    )
    names = set(imported("docrouter.call.m", module))
    assert {"docrouter.errors", "docrouter.store.store", "docrouter_flows.run", "docrouter.call.sibling"} <= names


def test_stage_folders_say_what_they_may_import() -> None:
    for stage in ("discover", "inspect", "route", "call", "store", "pdf"):
        doc = ast.get_docstring(ast.parse((REPO / "docrouter" / stage / "__init__.py").read_text())) or ""
        assert "May import" in doc, stage


@pytest.mark.slow
def test_no_library_module_loads_prefect_at_run_time() -> None:
    names = [m.name for m in pkgutil.walk_packages(docrouter.__path__, "docrouter.")]
    names = [name for name in names if not name.endswith("__main__")]  # that one starts a server
    assert "docrouter.run.session" in names and "docrouter.emulator.server" in names
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('prefect', 'docrouter_flows', 'docrouter_tasks')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
