"""No module of the web package imports a module that imports it back, even from inside a
function: ``create_app`` (``app.py``) imports the route modules, and they reach what they
share through ``context.py``, never through ``app.py``."""

from __future__ import annotations

import ast
from pathlib import Path

WEB = Path(__file__).parents[2] / "workflow" / "web"
PACKAGE = "icsflow.workflow.web"


def _imports(path: Path) -> set[str]:
    """The web modules a module imports, at its top or inside any function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == PACKAGE:
                found |= {a.name for a in node.names}
            elif node.module.startswith(PACKAGE + "."):
                found.add(node.module[len(PACKAGE) + 1:].split(".")[0])
        elif isinstance(node, ast.Import):
            found |= {a.name[len(PACKAGE) + 1:].split(".")[0] for a in node.names
                      if a.name.startswith(PACKAGE + ".")}
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == path[0]:
                cycles.append([*path, nxt])
            elif nxt not in path and nxt > path[0]:  # each cycle once, from its least module
                walk(nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, [start])
    return cycles


def test_the_check_finds_a_cycle() -> None:
    assert _cycles({"app": {"pages"}, "pages": {"app"}}) == [["app", "pages", "app"]]


def test_no_web_module_imports_one_that_imports_it_back() -> None:
    graph = {p.stem: _imports(p) - {p.stem} for p in WEB.glob("*.py") if p.stem != "__init__"}
    assert graph["app"] >= {"pages", "api", "context"}  # the walk sees real imports
    assert _cycles(graph) == []
