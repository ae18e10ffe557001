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
CORE_COMPOSITION_ROOTS = {"workflow/engine.py", "workflow/commands.py"}
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


def _runtime_imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Our modules ``path`` imports when it runs, function-level imports included (an
    ``if TYPE_CHECKING:`` block imports nothing at run time and is left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {_ours(a.name) for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = _ours(node.module or "")
            if node.level:
                base = ".".join([*package[:len(package) - node.level + 1],
                                 *([base] if base else [])])
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                      for a in node.names}
    return {m for m in found if m in modules}


def test_no_import_cycles_even_through_function_level_imports() -> None:
    """No module imports, at any depth and from inside any function, a module that imports it
    back: a function-level import hides a circle from Python, not from the reader. A package
    and its own modules (an ``__init__`` re-exporting them) are not a circle."""
    modules = {module_name(p): p for room in OURS for p in files(room)}
    graph = {name: {m for m in _runtime_imports(p, modules) if m != name
                    and not m.startswith(name + ".") and not name.startswith(m + ".")}
             for name, p in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def strongconnect(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                strongconnect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    assert circles == []
