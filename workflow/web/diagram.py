"""A definition drawn as SVG on the server: no script, no network, readable printed.

The layout is grandalf's Sugiyama layered layout (a pure-Python implementation of the method
Graphviz's ``dot`` uses): stages in layers from the first one down, crossings reduced, edges
going back routed around. Each edge's label is laid out as a node of its own in the middle of
the edge, so the engine keeps labels apart from each other and from the stages (as ``dot``
does) instead of this module guessing where they fit. Transitions written "from any open
state" (``from_any``) are collapsed into one dashed box with one edge per target, so the
Alert ladder is not buried under a fan of identical edges. The ``viewBox`` holds every box,
label and edge; the page scales the drawing to its width. Presentation is by class names the
page's stylesheet colours (the Content-Security-Policy forbids inline styles).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from html import escape
from typing import Any

from grandalf.graphs import Edge as GEdge
from grandalf.graphs import Graph, Vertex, graph_core
from grandalf.layouts import SugiyamaLayout
from grandalf.routing import EdgeViewer, route_with_lines

from icsflow.definitions.model import Definition

ANY = "__any__"
ANY_TEXT = "from any open state"
CHAR_W, EDGE_CHAR_W, LINE_H, LOOP_H = 7.2, 6.1, 16, 14  # 13 px stage text, 11 px edges
STATE_WRAP, EDGE_WRAP = 22, 28
MARGIN = 16


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str
    timer: bool


class _Box:
    """What grandalf lays out: a width and height; it sets ``xy`` (the centre)."""

    def __init__(self, lines: list[str], pad_w: float, pad_h: float, char_w: float) -> None:
        self.lines = lines
        self.w = max((len(t) for t in lines), default=0) * char_w + pad_w
        self.h = len(lines) * LINE_H + pad_h
        self.xy: tuple[float, float] = (0.0, 0.0)
        self.loop: list[str] = []  # events that keep a stage where it is, shown inside it


def _edges(defn: Definition) -> list[Edge]:
    """One edge per (source, target), labels joined; ``from_any`` sources become ``ANY``."""
    merged: dict[tuple[str, str], list[str]] = {}
    timed: set[tuple[str, str]] = set()
    timer_events = {t.fire for t in defn.timers if t.fire}
    for tr in defn.transitions:
        roles = ", ".join(defn.label_for("role", r) for r in tr.roles)
        label = defn.label_for("event", tr.event) + (f" ({roles})" if roles else "")
        sources = (ANY,) if tr.from_any else tr.sources
        for src in sources:
            key = (src, tr.to or src)
            if label not in merged.setdefault(key, []):
                merged[key].append(label)
            if tr.event in timer_events:
                timed.add(key)
    return [Edge(s, t, "; ".join(labels), (s, t) in timed) for (s, t), labels in merged.items()]


@dataclass
class Layout:
    """Positions from the layout engine: boxes by state (and ``ANY``), each edge's label box
    and its route (points from the source's border through the label to the target's)."""

    boxes: dict[str, _Box]
    labels: list[_Box]
    routes: list[list[tuple[float, float]]]
    width: float
    height: float


def _route(edge: GEdge) -> list[tuple[float, float]]:
    view: Any = edge.view
    return [(float(x), float(y)) for x, y in getattr(view, "_pts", [])]


def layout(defn: Definition) -> Layout:
    """Lay the definition out with grandalf: stage boxes and edge-label boxes as vertices,
    each edge split at its label; an event that keeps the stage is written inside its box
    (a loop would only crowd it); components side by side; everything shifted into view."""
    edges = [e for e in _edges(defn) if e.source != e.target]
    loops = {e.source: e.label for e in _edges(defn) if e.source == e.target}
    names = [s.name for s in defn.states] + ([ANY] if any(e.source == ANY for e in edges)
                                             else [])
    boxes = {n: _state_box(defn, n, loops.get(n)) for n in names}
    vertices = {n: Vertex(n) for n in names}
    for n, v in vertices.items():
        v.view = boxes[n]
    label_boxes: list[_Box] = []
    halves: list[tuple[GEdge, GEdge]] = []
    for k, e in enumerate(edges):
        box = _Box(textwrap.wrap(e.label, EDGE_WRAP), 8, 4, EDGE_CHAR_W)
        middle = Vertex(f"label-{k}")
        middle.view = box
        first, second = GEdge(vertices[e.source], middle), GEdge(middle, vertices[e.target])
        first.view, second.view = EdgeViewer(), EdgeViewer()
        label_boxes.append(box)
        halves.append((first, second))
    graph = Graph(list(vertices.values()) + [h.v[1] for h, _ in halves],
                  [half for pair in halves for half in pair])
    x_offset = 0.0
    for component in graph.C:
        sug = SugiyamaLayout(component)
        sug.xspace, sug.yspace = 24, 28
        sug.dw, sug.dh = 6, 6  # the bends of long edges: narrow, not a median box wide
        sug.route_edge = route_with_lines
        roots = [v for v in component.sV if v.data == defn.initial] or None
        sug.init_all(roots=roots, optimize=True)
        sug.draw(N=3)
        x_offset = _place(component, x_offset)
    routes = [_route(first) + _route(second)[1:] for first, second in halves]
    return _framed(boxes, label_boxes, routes)


def _state_box(defn: Definition, name: str, loop: str | None) -> _Box:
    """A stage's box: its label, wrapped; events that keep it at this stage below, marked."""
    lines = textwrap.wrap(ANY_TEXT if name == ANY else defn.label_for("state", name),
                          STATE_WRAP)
    box = _Box(lines, 24, 14, CHAR_W)
    if loop:
        box.loop = textwrap.wrap("\u21bb " + loop, EDGE_WRAP)
        box.w = max(box.w, max(len(t) for t in box.loop) * EDGE_CHAR_W + 16)
        box.h += len(box.loop) * LOOP_H
    return box


def _place(component: graph_core, x_offset: float) -> float:
    """Shift a component right of the ones before it; the x where the next may start."""
    views = [v.view for v in component.sV]
    left = min(b.xy[0] - b.w / 2 for b in views)
    for b in views:
        b.xy = (b.xy[0] - left + x_offset, b.xy[1])
    for e in component.sE:
        pts = getattr(e.view, "_pts", None)
        if pts:
            e.view._pts = [(x - left + x_offset, y) for x, y in pts]
    return float(max(b.xy[0] + b.w / 2 for b in views)) + 40


def _framed(boxes: dict[str, _Box], labels: list[_Box],
            routes: list[list[tuple[float, float]]]) -> Layout:
    """Everything moved so the drawing starts at ``MARGIN``; its size holds every box and
    every point of every route."""
    every = list(boxes.values()) + labels
    xs = [b.xy[0] - b.w / 2 for b in every] + [x for r in routes for x, _ in r]
    ys = [b.xy[1] - b.h / 2 for b in every] + [y for r in routes for _, y in r]
    dx, dy = MARGIN - min(xs), MARGIN - min(ys)
    for b in every:
        b.xy = (b.xy[0] + dx, b.xy[1] + dy)
    moved = [[(x + dx, y + dy) for x, y in r] for r in routes]
    right = max([b.xy[0] + b.w / 2 for b in every] + [x for r in moved for x, _ in r])
    bottom = max([b.xy[1] + b.h / 2 for b in every] + [y for r in moved for _, y in r])
    return Layout(boxes, labels, moved, right + MARGIN, bottom + MARGIN)


def _text(box: _Box, cls: str) -> str:
    """The box's lines centred in it; a stage's loop events below its name."""
    x, y = box.xy
    top = y - (len(box.lines) - 1) * LINE_H / 2 + 4 - len(box.loop) * LOOP_H / 2
    out = [f'<text x="{x:.1f}" y="{top + i * LINE_H:.1f}" class="{cls}">{escape(line)}</text>'
           for i, line in enumerate(box.lines)]
    below = top + (len(box.lines) - 1) * LINE_H + LOOP_H + 2
    out += [f'<text x="{x:.1f}" y="{below + i * LOOP_H:.1f}" class="loop-label">'
            f"{escape(line)}</text>" for i, line in enumerate(box.loop)]
    return "".join(out)


def _path(points: list[tuple[float, float]]) -> str:
    return "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in points)


def diagram_svg(defn: Definition) -> str:
    """The definition as one ``<svg>`` element with a title for screen readers."""
    edges = _edges(defn)
    drawn = layout(defn)
    finals = {s.name for s in defn.states if s.final}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="diagram" role="img" '
           f'viewBox="0 0 {drawn.width:.0f} {drawn.height:.0f}" width="{drawn.width:.0f}" '
           f'height="{drawn.height:.0f}" aria-labelledby="t-{escape(defn.name)}">'
           f'<title id="t-{escape(defn.name)}">{escape(defn.label)}: stages and the events '
           f'that move between them</title>'
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
           'class="arrowhead"/></marker></defs>']
    drawn_edges = [e for e in edges if e.source != e.target]
    for e, route in zip(drawn_edges, drawn.routes, strict=True):
        cls = "edge" + (" timer" if e.timer else "") + (" any" if e.source == ANY else "")
        out.append(f'<path d="{_path(route)}" class="{cls}" marker-end="url(#arrow)">'
                   f"<title>{escape(e.label)}</title></path>")
    for label in drawn.labels:  # after every edge: a label's ground hides lines under it
        x, y = label.xy[0] - label.w / 2, label.xy[1] - label.h / 2
        out.append(f'<g class="edge-group"><rect x="{x:.1f}" y="{y:.1f}" '
                   f'width="{label.w:.1f}" height="{label.h:.1f}" class="edge-label-bg"/>'
                   + _text(label, "edge-label") + "</g>")
    for name, box in drawn.boxes.items():
        x, y = box.xy[0] - box.w / 2, box.xy[1] - box.h / 2
        if name == ANY:
            out.append(f'<g id="state-any"><rect x="{x:.1f}" y="{y:.1f}" width="{box.w:.1f}" '
                       f'height="{box.h:.1f}" rx="8" class="state any"/>'
                       + _text(box, "state-label") + "</g>")
            continue
        cls = "state final" if name in finals else "state"
        if name == defn.initial:
            cls += " initial"
        out.append(f'<g id="state-{escape(name)}"><rect x="{x:.1f}" y="{y:.1f}" '
                   f'width="{box.w:.1f}" height="{box.h:.1f}" rx="8" class="{cls}"/>'
                   + _text(box, "state-label") + "</g>")
    out.append("</svg>")
    return "".join(out)


def transition_rows(defn: Definition) -> list[tuple[str, str, str, str, bool]]:
    """(from, to, event, roles, timer) per transition, "any open state" collapsed: the table
    beside the diagram that names every edge."""
    timer_events = {t.fire for t in defn.timers if t.fire}
    rows = []
    for tr in defn.transitions:
        source = "Any open stage" if tr.from_any else ", ".join(
            defn.label_for("state", s) for s in tr.sources)
        rows.append((source, defn.label_for("state", tr.to) if tr.to else "(stays)",
                     defn.label_for("event", tr.event),
                     ", ".join(defn.label_for("role", r) for r in tr.roles) or "Timer only",
                     tr.event in timer_events))
    return rows


__all__ = ["diagram_svg", "transition_rows", "layout", "Layout"]
