"""The import layers: the pure analysis layers never reach the web or the database, and no
module-level import cycle exists in ``app``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"
PURE = ("app.conversation", "app.analysis", "app.observer")
FORBIDDEN_FOR_PURE = (
    "fastapi",
    "starlette",
    "sqlalchemy",
    "app.api",
    "app.main",
    "app.analyses",
    "app.health",
    "app.jobs",
    "app.core.database",
    "app.middleware",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from pkg import submodule`` depends on the submodule, not on pkg/__init__
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return found


MODULES = {module_name(p): p for p in APP.rglob("*.py") if "migrations" not in p.parts}


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith(PURE)))
def test_pure_layers_import_nothing_from_the_web_or_the_database(name: str) -> None:
    bad = sorted(
        i
        for i in imports(MODULES[name], top_level_only=False)
        if any(i == f or i.startswith(f + ".") for f in FORBIDDEN_FOR_PURE)
    )
    assert not bad, f"{name} imports {bad}"


def test_no_module_level_import_cycles() -> None:
    graph = {
        name: {i for i in imports(path, top_level_only=True) if i in MODULES and i != name}
        for name, path in MODULES.items()
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
