"""The process diagram drawn on the server: every state once, "any open state" collapsed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from icsflow.workflow.engine import load_definitions
from icsflow.workflow.web.diagram import diagram_svg, transition_rows


def _alert():
    return next(d for d in load_definitions(None) if d.name == "alert_dispute")


def test_every_state_is_drawn_once_and_the_svg_is_well_formed() -> None:
    defn = _alert()
    svg = diagram_svg(defn)
    ET.fromstring(svg)  # parses as XML
    for state in defn.states:
        assert svg.count(f'id="state-{state.name}"') == 1


def test_from_any_transitions_are_collapsed_into_one_box() -> None:
    defn = _alert()
    from_any = [t for t in defn.transitions if t.from_any]
    svg = diagram_svg(defn)
    if from_any:
        assert svg.count("from any open state") == 1
        edges_from_any = len(re.findall(r'class="edge[^"]* any"', svg))
        assert edges_from_any == len({t.to for t in from_any if t.to is not None})
    rows = transition_rows(defn)
    assert len(rows) == len(defn.transitions)


def test_no_inline_style_attributes_for_the_content_security_policy() -> None:
    for defn in load_definitions(None):
        assert "style=" not in diagram_svg(defn)
