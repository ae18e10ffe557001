"""Where each value a check may refuse was written: its own line and column.

The model keeps one ``source`` per owner (a transition, timer, deadline, role, template or the
definition); validation refusing one value of an owner (the third state of a ``from`` list, a
template's ``{{ name }}`` on line 12 of its body) looks its place up here instead of pointing
at the owner's first line.
"""

from __future__ import annotations

from collections.abc import Iterable

from icsflow.definitions.errors import Places
from icsflow.definitions.model import Source
from icsflow.definitions.yaml_nodes import Node


def _note_values(places: Places, owner: Source, mapping: dict[str, Node],
                 keys: Iterable[str]) -> None:
    """Note ``owner``'s values under ``keys``: the value node itself (looked up with value
    ``""``) and, for names, each name (one or a list) at its own place."""
    for key in keys:
        node = mapping.get(key)
        if node is None:
            continue
        places.note(owner, key, "", node.source)
        items = node.value if isinstance(node.value, list) else [node]
        for item in items:
            if isinstance(item, Node) and isinstance(item.value, str | int) \
                    and not isinstance(item.value, bool):
                places.note(owner, key, item.value, item.source)
                if key == "anchor" and isinstance(item.value, str):  # "state NAME": the NAME
                    places.note(owner, key, item.value.split()[-1], item.source)


def _entries(node: Node | None) -> list[tuple[Source, dict[str, Node]]]:
    """A mapping of name -> options as (source of the name, options mapping)."""
    if node is None or not isinstance(node.value, dict):
        return []
    return [((node.key_sources or {}).get(k, v.source), v.value)
            for k, v in node.value.items() if isinstance(v.value, dict)]


def _list(node: Node | None) -> list[tuple[Source, dict[str, Node]]]:
    if node is None or not isinstance(node.value, list):
        return []
    return [(item.source, item.value) for item in node.value if isinstance(item.value, dict)]


def note_places(root: Node) -> Places:
    """Every value's place, keyed by the source the model gives its owner (the ``source`` of
    the transition, timer, notify, deadline, rule, role, template or definition)."""
    places = Places()
    if not isinstance(root.value, dict):
        return places
    top: dict[str, Node] = root.value
    _note_values(places, root.source, top, ("initial", "start_roles"))
    for owner, m in _entries(top.get("roles")):
        _note_values(places, owner, m, ("address",))
    for owner, m in _entries(top.get("templates")):
        _note_values(places, owner, m, ("subject", "body"))
        for part in ("subject", "body"):
            node = m.get(part)
            if node is not None and node.literal:  # its text's line 1 is the next line
                places.note(owner, f"{part} text", "", Source(node.source.file,
                                                               node.source.line + 1,
                                                               node.literal))
    for owner, m in _list(top.get("transitions")):
        _note_values(places, owner, m, ("event", "from", "to", "roles"))
        record = m.get("record")
        if record is not None and record.key_sources:  # the field name a value is recorded in
            for fname, key_source in record.key_sources.items():
                places.note(owner, "record", fname, key_source)
        for n_owner, n in _list(m.get("notify")):
            _note_values(places, n_owner, n, ("to", "template"))
    for owner, m in _entries(top.get("deadlines")):
        _note_values(places, owner, m, ("live_in", "cancelled_by", "anchor", "after", "before"))
        for r_owner, r in _list(m.get("rules")):
            _note_values(places, r_owner, r, ("anchor", "after", "before"))
    for owner, m in _list(top.get("timers")):
        _note_values(places, owner, m, ("name", "deadline", "state", "fire", "before", "after"))
        for n_owner, n in _list(m.get("notify")):
            _note_values(places, n_owner, n, ("to", "template"))
    return places


__all__ = ["note_places"]
