"""docs/processes.md shows the current diagram of every shipped definition."""

from pathlib import Path

import pytest

from icsflow.definitions.graph import graph_text
from icsflow.definitions.registry import load_default

DOC = Path(__file__).resolve().parents[2] / "docs" / "processes.md"
SHIPPED = ["alert_dispute", "initial_review", "dual_status", "cp_conference",
           "cp_transfer_in", "strategy_meeting"]


@pytest.mark.parametrize("name", SHIPPED)
def test_processes_doc_has_the_current_diagram(name: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    diagram = graph_text(load_default().latest(name), "mermaid").rstrip("\n")
    assert f"```mermaid\n{diagram}\n```" in text, (
        f"docs/processes.md is out of date for {name}: paste `icsflow graph {name}` into it")
