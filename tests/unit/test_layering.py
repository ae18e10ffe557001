"""The rooms of DESIGN section 3 import in one direction only, and never in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("workflow", "definitions", "notifiers", "storage")
# workflow/'s applications: each imports the core, the core imports none of them.
APPLICATIONS = ("cli", "daemon", "transfer", "reports", "web")
# Where the core may reach concrete storage: Engine.open wires the SQL store.
CORE_COMPOSITION_ROOTS = {"workflow/engine.py"}
CONCRETE_CHANNELS = {"SmtpNotifier", "MaildirNotifier", "LogNotifier", "WebhookNotifier"}


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) for every import in the file, function-level ones included, with the
    ``icsflow.`` root taken off (``icsflow.workflow.engine`` -> ``workflow.engine``)."""
    found: list[tuple[str, list[str]]] = []
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(_ours(a.name), []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None or (
                isinstance(node, ast.ImportFrom) and node.level):
            assert isinstance(node, ast.ImportFrom)
            module = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            found.append((_ours(module), [a.name for a in node.names]))
    return found


def _ours(module: str) -> str:
    return module.removeprefix("icsflow.")


def files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("package", ["definitions", "notifiers"])
def test_leaf_rooms_import_nothing_of_ours(package: str) -> None:
    bad = [f"{rel(p)} imports {m}" for p in files(package) for m, _ in imports(p)
           if m.split(".")[0] in OURS and m.split(".")[0] != package]
    assert bad == []


def test_no_generic_top_level_imports_remain() -> None:
    """Installed, only ``icsflow.*`` exists: a bare ``import workflow`` would break."""
    bad = []
    for room in OURS:
        for p in files(room):
            for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module or ""] if isinstance(node, ast.ImportFrom)
                         and node.level == 0 else [])
                bad += [f"{rel(p)} imports {n}" for n in names if n.split(".")[0] in OURS]
    assert bad == []


def test_storage_uses_only_the_cores_ports_values_and_errors() -> None:
    allowed = {"workflow.ports", "workflow.instance", "workflow.errors"}
    bad = [f"{rel(p)} imports {m}" for p in files("storage") for m, _ in imports(p)
           if m.split(".")[0] == "workflow" and m not in allowed]
    assert bad == []


def _application(name: str) -> str | None:
    parts = name.split("/")
    return parts[1] if len(parts) > 2 and parts[1] in APPLICATIONS else None


def test_the_core_imports_no_application() -> None:
    bad = []
    for p in files("workflow"):
        if _application(rel(p)) is not None:
            continue
        for module, _ in imports(p):
            parts = module.split(".")
            if parts[0] == "workflow" and len(parts) > 1 and parts[1] in APPLICATIONS:
                bad.append(f"{rel(p)} imports {module}")
    assert bad == []


def test_only_applications_reach_storage_channels_and_the_scheduler() -> None:
    bad = []
    for p in files("workflow"):
        name = rel(p)
        if name in CORE_COMPOSITION_ROOTS or _application(name) is not None:
            continue
        for module, names in imports(p):
            top = module.split(".")[0]
            if top in ("storage", "apscheduler"):
                bad.append(f"{name} imports {module}")
            if top == "notifiers" and CONCRETE_CHANNELS & set(names):
                bad.append(f"{name} imports a concrete channel from {module}")
    assert bad == []


def test_applications_do_not_import_each_other_in_a_circle() -> None:
    """cli may use daemon and reports; nothing may reach back into cli (or any circle)."""
    edges: dict[str, set[str]] = {}
    for p in files("workflow"):
        app = _application(rel(p))
        if app is None:
            continue
        for module, _ in imports(p):
            parts = module.split(".")
            if parts[0] == "workflow" and len(parts) > 1 and parts[1] in APPLICATIONS \
                    and parts[1] != app:
                edges.setdefault(app, set()).add(parts[1])
    assert "cli" not in {t for targets in edges.values() for t in targets}
    seen: list[str] = []

    def visit(node: str, path: tuple[str, ...]) -> None:
        for nxt in edges.get(node, ()):
            if nxt in path:
                seen.append(" -> ".join((*path, nxt)))
            else:
                visit(nxt, (*path, nxt))

    for start in edges:
        visit(start, (start,))
    assert seen == []


def test_no_module_level_import_cycles_anywhere() -> None:
    """Module-level imports between our modules form no cycle (function-level ones may)."""
    graph: dict[str, set[str]] = {}
    modules = {module_name(p): p for room in OURS for p in files(room)}
    for name, p in modules.items():
        tree = ast.parse(p.read_text(encoding="utf-8"))
        targets: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                base = _ours(node.module)
                targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                            for a in node.names}
            elif isinstance(node, ast.Import):
                targets |= {_ours(a.name) for a in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    cycles: list[str] = []
    state: dict[str, int] = {}

    def dfs(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                # a package __init__ re-exporting its children is not a cycle
                if not nxt.startswith(node + ".") and not node.startswith(nxt + "."):
                    cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                dfs(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            dfs(node, [node])
    assert cycles == []


PURE_PLANNING = ("workflow/planning.py", "workflow/deadlines.py", "workflow/context.py",
                 "workflow/catalogue.py", "workflow/policy.py")


@pytest.mark.parametrize("name", PURE_PLANNING)
def test_planning_imports_no_storage_and_no_unit_of_work(name: str) -> None:
    """Planning is pure: a case and an event in, the change out; it never reaches a database
    (its one read, caseloads, is passed in by the caller)."""
    bad = [m for m, names in imports(ROOT / name)
           if m.split(".")[0] in ("storage", "sqlalchemy", "alembic", "psycopg")
           or m in ("workflow.engine", "workflow.ticking", "workflow.propagation")
           or "UnitOfWork" in names or "Store" in names]
    assert bad == []


def test_the_changes_room_does_not_import_the_engine() -> None:
    """explain, migration and reproject use planning's public names; the engine uses them,
    never the reverse (no circle through function-level imports)."""
    bad = [f"{rel(p)} imports {m}" for p in files("workflow/changes") for m, _ in imports(p)
           if m == "workflow.engine"]
    assert bad == []
