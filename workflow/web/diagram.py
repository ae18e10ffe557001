"""A definition drawn as SVG on the server: no script, no network, readable printed.

States are laid out in columns by their distance from the initial state (left to right), and
edges are drawn as curves labelled with the event and its roles. Transitions written "from any
open state" (``from_any``) are collapsed into one dashed box with one edge per event, so the
Alert ladder is not buried under a fan of identical edges. Presentation is by class names the
page's stylesheet colours (the Content-Security-Policy forbids inline styles).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from html import escape

from icsflow.definitions.model import Definition

BOX_W, BOX_H = 170, 40
STATE_CHARS = 24  # a state label longer than this is cut (the whole label is its tooltip)
COL_GAP, ROW_GAP = 130, 60
MARGIN = 30
ANY = "__any__"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str
    timer: bool


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


def _layers(defn: Definition, edges: list[Edge]) -> dict[str, int]:
    depth = {defn.initial: 0}
    queue = deque([defn.initial])
    while queue:
        node = queue.popleft()
        for e in edges:
            if e.source == node and e.target not in depth:
                depth[e.target] = depth[node] + 1
                queue.append(e.target)
    deepest = max(depth.values(), default=0)
    for st in defn.states:  # reached only from "any open state": after the others
        depth.setdefault(st.name, deepest + 1)
    any_targets = [depth[e.target] for e in edges if e.source == ANY and e.target in depth]
    if any(e.source == ANY for e in edges):
        # one column before its furthest target, at the bottom: its edges stay short
        depth[ANY] = max(max(any_targets, default=1) - 1, 0)
    return depth


def diagram_svg(defn: Definition) -> str:
    """The definition as one ``<svg>`` element with a title for screen readers."""
    edges = _edges(defn)
    depth = _layers(defn, edges)
    columns: dict[int, list[str]] = {}
    order = [s.name for s in defn.states] + ([ANY] if ANY in depth else [])
    for name in order:
        columns.setdefault(depth[name], []).append(name)
    if ANY in depth:  # the collapsed box sits at the bottom of its column
        col = columns[depth[ANY]]
        col.remove(ANY)
        col.append(ANY)
    pos: dict[str, tuple[float, float]] = {}
    tallest = max(len(c) for c in columns.values())
    for d, names in columns.items():
        offset = (tallest - len(names)) * (BOX_H + ROW_GAP) / 2
        for i, name in enumerate(names):
            pos[name] = (MARGIN + d * (BOX_W + COL_GAP), MARGIN + 20 + offset
                         + i * (BOX_H + ROW_GAP))
    width = MARGIN * 2 + (max(columns) + 1) * (BOX_W + COL_GAP) - COL_GAP
    height = MARGIN * 2 + 20 + tallest * (BOX_H + ROW_GAP)
    finals = {s.name for s in defn.states if s.final}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="diagram" role="img" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
           f'aria-labelledby="t-{escape(defn.name)}">'
           f'<title id="t-{escape(defn.name)}">{escape(defn.label)}: stages and the events '
           f'that move between them</title>'
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
           'class="arrowhead"/></marker></defs>']
    sx, sy = pos[defn.initial]
    out.append(f'<circle cx="{sx - 14:.0f}" cy="{sy + BOX_H / 2:.0f}" r="6" class="start"/>')
    for k, e in enumerate(edges):
        x1, y1 = pos[e.source]
        x2, y2 = pos[e.target]
        cls = "edge timer" if e.timer else "edge"
        if e.source == ANY:
            cls += " any"
        if e.source == e.target:
            path = (f"M{x1 + BOX_W * 0.3:.0f},{y1:.0f} C{x1 + BOX_W * 0.3:.0f},{y1 - 34:.0f} "
                    f"{x1 + BOX_W * 0.7:.0f},{y1 - 34:.0f} {x1 + BOX_W * 0.7:.0f},{y1:.0f}")
            lx, ly = x1 + BOX_W / 2, y1 - 30
        else:
            forward = x2 >= x1 + BOX_W
            ax = x1 + BOX_W if forward else x1
            bx = x2 if forward else x2 + BOX_W
            if abs(x2 - x1) < 1:  # same column: loop out to the right
                ax, bx = x1 + BOX_W, x2 + BOX_W
                bend = 60 + (k % 3) * 15
                path = (f"M{ax:.0f},{y1 + BOX_H / 2:.0f} C{ax + bend:.0f},{y1 + BOX_H / 2:.0f} "
                        f"{bx + bend:.0f},{y2 + BOX_H / 2:.0f} {bx:.0f},{y2 + BOX_H / 2:.0f}")
                lx, ly = ax + bend * 0.8, (y1 + y2) / 2 + BOX_H / 2
            else:
                ay, by = y1 + BOX_H / 2, y2 + BOX_H / 2
                mx = (ax + bx) / 2
                bow = 0 if forward else -40 - (k % 4) * 12
                path = (f"M{ax:.0f},{ay:.0f} C{mx:.0f},{ay + bow:.0f} {mx:.0f},{by + bow:.0f} "
                        f"{bx:.0f},{by:.0f}")
                lx, ly = mx, (ay + by) / 2 + bow * 0.75 - 4
        backward = e.source != e.target and x2 < x1 + 1 and e.source != ANY
        if backward:
            cls += " back"
        out.append(f'<path d="{path}" class="{cls}" marker-end="url(#arrow)">'
                   f"<title>{escape(e.label)}</title></path>")
        if not backward:  # edges going back are many and alike: named in the table below
            short = e.label if len(e.label) <= 34 else e.label[:32] + "…"
            out.append(f'<text x="{lx:.0f}" y="{ly:.0f}" class="edge-label">{escape(short)}'
                       "</text>")
    for name, (x, y) in pos.items():
        if name == ANY:
            out.append(f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="8" '
                       'class="state any"/>'
                       f'<text x="{x + BOX_W / 2:.0f}" y="{y + BOX_H / 2 + 4:.0f}" '
                       'class="state-label">from any open state</text>')
            continue
        cls = "state final" if name in finals else "state"
        if name == defn.initial:
            cls += " initial"
        text = defn.label_for("state", name)
        short = text if len(text) <= STATE_CHARS else text[:STATE_CHARS - 1] + "…"
        out.append(f'<g id="state-{escape(name)}"><title>{escape(text)}</title>'
                   f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" '
                   f'height="{BOX_H}" rx="8" class="{cls}"/>'
                   f'<text x="{x + BOX_W / 2:.0f}" y="{y + BOX_H / 2 + 4:.0f}" '
                   f'class="state-label">{escape(short)}</text></g>')
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


__all__ = ["diagram_svg", "transition_rows"]
