"""Diagrams show states, events, deadlines on states and timers on the edges they fire."""

from __future__ import annotations

from pathlib import Path

import pytest

from icsflow.definitions.graph import graph_text
from icsflow.definitions.loader import load_file

EXAMPLES = Path(__file__).resolve().parents[2] / "definitions" / "examples"


@pytest.fixture(scope="module")
def alert():
    return load_file(EXAMPLES / "alert_example.yaml")


def test_mermaid_starts_with_state_diagram_and_marks_initial_and_final(alert):
    text = graph_text(alert)
    assert text.startswith("stateDiagram-v2\n")
    assert "[*] --> s_alert" in text
    assert "s_resolved --> [*]" in text


def test_mermaid_labels_deadlines_and_timer_edges(alert):
    text = graph_text(alert)
    assert "note right of s_alert" in text
    assert "response_due - 10 working days after entry" in text
    assert "s_alert --> s_escalated: no_response [timer - response_due breached]" in text


def test_dot_has_every_state_and_dashed_timer_edges(alert):
    text = graph_text(alert, "dot")
    assert text.startswith('digraph "alert_example" {') and text.rstrip().endswith("}")
    for st in alert.states:
        assert f'"{st.name}" [label=' in text
    assert "style=dashed" in text


def test_repeating_timer_is_described():
    dual = load_file(EXAMPLES / "dual_example.yaml")
    assert "every 1 month (max 12)" in graph_text(dual)


def test_unknown_format_is_refused(alert):
    with pytest.raises(ValueError, match="known: mermaid, dot"):
        graph_text(alert, "svg")


def test_a_repeating_timer_at_a_due_date_shows_its_repeat() -> None:
    from icsflow.definitions.registry import load_default

    text = graph_text(load_default().latest("dual_status"), "mermaid")
    assert "mark_prolonged [timer - prolonged_from due, every 1 month (max 216)]" in text
