"""The rooms of DESIGN section 3 import in one direction only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("workflow", "definitions", "notifiers", "storage")
# Where workflow/ may reach concrete storage, channels and APScheduler: the composition roots.
COMPOSITION_ROOTS = {"workflow/engine.py", "workflow/daemon.py"}
CONCRETE_CHANNELS = {"SmtpNotifier", "MaildirNotifier", "LogNotifier", "WebhookNotifier"}


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) for every import in the file, function-level ones included."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [a.name for a in node.names]))
    return found


def files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("package", ["definitions", "notifiers"])
def test_leaf_rooms_import_nothing_of_ours(package: str) -> None:
    bad = [f"{rel(p)} imports {m}" for p in files(package) for m, _ in imports(p)
           if m.split(".")[0] in OURS and m.split(".")[0] != package]
    assert bad == []


def test_storage_uses_only_the_cores_ports_values_and_errors() -> None:
    allowed = {"workflow.ports", "workflow.instance", "workflow.errors"}
    bad = [f"{rel(p)} imports {m}" for p in files("storage") for m, _ in imports(p)
           if m.split(".")[0] == "workflow" and m not in allowed]
    assert bad == []


def test_only_composition_roots_reach_storage_channels_and_the_scheduler() -> None:
    bad = []
    for p in files("workflow"):
        name = rel(p)
        if name in COMPOSITION_ROOTS or name.startswith("workflow/cli/"):
            continue
        for module, names in imports(p):
            top = module.split(".")[0]
            if top in ("storage", "apscheduler"):
                bad.append(f"{name} imports {module}")
            if top == "notifiers" and CONCRETE_CHANNELS & set(names):
                bad.append(f"{name} imports a concrete channel from {module}")
    assert bad == []
