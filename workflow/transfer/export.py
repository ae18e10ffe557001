"""``icsflow export``: the history as an extract in the canonical import format.

One row per event a person fired (timer firings and what signals between one child's cases
did are left out: a replay does them again on their own dates). Data columns carry what the
event gave: the fields it changed, less those its transition computes (``record``), plus any
field the transition requires that kept its value. Importing the file into an empty database
reproduces the same states, deadlines and history.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from icsflow.definitions.model import SYSTEM_ROLE, Definition
from icsflow.workflow.clock import LONDON
from icsflow.workflow.csv_cells import safe_cell
from icsflow.workflow.engine import Engine
from icsflow.workflow.instance import HistoryEntry, Instance
from icsflow.workflow.transfer.rows import CANONICAL, START


def export_rows(engine: Engine, *, date_from: date | None = None,
                date_to: date | None = None) -> list[dict[str, str]]:
    """Canonical rows of every case's history with ``at`` (local date) in the range."""
    keyed: list[tuple[Any, int, int, dict[str, str]]] = []
    for order, inst in enumerate(engine.list()):
        defn = engine.definition(inst.definition, inst.version)
        for index, (entry, data) in enumerate(_given(defn, inst.history)):
            day = engine.calendar.local_date(entry.at)
            if (date_from is not None and day < date_from) or (
                    date_to is not None and day > date_to):
                continue
            keyed.append((entry.at, order, index, _row(inst, entry, data, index)))
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    return [k[3] for k in keyed]


def _given(defn: Definition, history: Sequence[HistoryEntry],
           ) -> Iterable[tuple[HistoryEntry, dict[str, Any]]]:
    """Each person-fired entry with the data its event gave."""
    current: dict[str, Any] = {}
    for entry in history:
        changes = dict(entry.changes)
        if entry.event == START and entry.from_state is None:
            current.update(changes)
            if entry.role != SYSTEM_ROLE:  # a case another case's signal started starts again
                yield entry, changes
            continue
        if entry.role == SYSTEM_ROLE:
            current.update(changes)
            continue
        candidates = defn.transitions_for(entry.event, entry.from_state or "")
        recorded = {name for t in candidates for name, _ in t.record}
        given = {k: v for k, v in changes.items() if k not in recorded}
        taken = next((t for t in candidates if t.to == entry.to_state or t.to is None),
                     candidates[0] if candidates else None)
        for rule in taken.set if taken is not None else ():
            if rule.required and rule.name not in given and current.get(rule.name) not in (
                    None, ""):
                given[rule.name] = current[rule.name]
        current.update(changes)
        yield entry, given


def _row(inst: Instance, entry: HistoryEntry, data: Mapping[str, Any],
         index: int) -> dict[str, str]:
    row = {"ref": inst.ref, "definition": inst.definition,
           "event": START if entry.event == START and entry.from_state is None else entry.event,
           "at": entry.at.astimezone(LONDON).isoformat(), "actor": entry.actor, "role": entry.role,
           "child": inst.child or "", "family": inst.family or "", "note": entry.note or "",
           "id": f"icsflow:{inst.id}:{index}"}
    for key, value in data.items():
        row[key] = _cell(value)
    return row


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write_rows(rows: Sequence[Mapping[str, str]], out: TextIO) -> None:
    """Canonical columns first, then every data column in first-seen order."""
    extra: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key not in CANONICAL:
                extra.setdefault(key, None)
    writer = csv.DictWriter(out, fieldnames=[*CANONICAL, *extra], extrasaction="ignore")
    writer.writeheader()
    for row in rows:  # a cell a spreadsheet would run gets an apostrophe the import removes
        writer.writerow({k: safe_cell(v) for k, v in row.items()})


def export_file(engine: Engine, path: str | Path, *, date_from: date | None = None,
                date_to: date | None = None) -> int:
    """Write the export to ``path``; returns the number of rows."""
    rows = export_rows(engine, date_from=date_from, date_to=date_to)
    with Path(path).open("w", encoding="utf-8", newline="") as fh:
        write_rows(rows, fh)
    return len(rows)


__all__ = ["export_rows", "export_file", "write_rows"]
