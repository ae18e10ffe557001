"""``icsflow reconcile``: where an extract and what icsflow holds disagree, changing nothing.

For each case the extract names (definition and reference), events are paired by name in time
order (the extract's second ``hold`` with icsflow's second ``hold``). Four kinds of
difference, each a line a manager can act on:

``different_date``      both have the event, on different dates (Europe/London)
``missing_in_icsflow``  the extract has an event icsflow lacks (or the whole case)
``missing_in_extract``  icsflow has an event (fired by a person) the extract lacks
``verdict_differs``     a deadline's verdict (met, breached, cancelled, live) differs between
                        icsflow and the extract replayed on its own in a scratch database
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TextIO

from icsflow.definitions.model import SYSTEM_ROLE
from icsflow.workflow.engine import Engine
from icsflow.workflow.instance import DeadlineInfo, HistoryEntry, Instance
from icsflow.workflow.transfer.importer import check_rows, until_instant
from icsflow.workflow.transfer.replay import ReplayResult, find_case
from icsflow.workflow.transfer.rows import START, EventRow, sort_rows

KINDS = ("different_date", "missing_in_icsflow", "missing_in_extract", "verdict_differs")
COLUMNS = ("kind", "definition", "ref", "what", "extract", "icsflow", "line", "instance_id")


@dataclass(frozen=True)
class Difference:
    """One disagreement; ``what`` is the event or deadline, the sides its date or verdict."""

    kind: str
    definition: str
    ref: str
    what: str
    extract: str
    icsflow: str
    line: int | None = None
    instance_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "definition": self.definition, "ref": self.ref,
                "what": self.what, "extract": self.extract, "icsflow": self.icsflow,
                "line": self.line, "instance_id": self.instance_id}


def reconcile(engine: Engine, rows: Sequence[EventRow], *,
              until: date | datetime | None = None) -> list[Difference]:
    """Every difference between the extract ``rows`` and the database behind ``engine``."""
    ordered = sort_rows(rows)
    by_case: dict[tuple[str, str], list[EventRow]] = {}
    for row in ordered:
        by_case.setdefault(row.case, []).append(row)
    held: dict[tuple[str, str], Instance] = {}
    found: list[Difference] = []
    for case, case_rows in by_case.items():
        inst = find_case(engine, *case)
        if inst is None:
            found.extend(Difference("missing_in_icsflow", r.definition, r.ref, r.event,
                                    _day(engine, r.at), "", r.line) for r in case_rows)
            continue
        held[case] = inst
        found.extend(_events(engine, case_rows, inst))
    found.extend(_verdicts(engine, ordered, held, until))
    order = {k: i for i, k in enumerate(KINDS)}
    found.sort(key=lambda d: (d.definition, d.ref, order[d.kind], d.line or 0, d.what))
    return found


def _day(engine: Engine, at: datetime) -> str:
    return engine.calendar.local_date(at).isoformat()


def _events(engine: Engine, rows: Sequence[EventRow], inst: Instance) -> list[Difference]:
    ours: dict[str, list[HistoryEntry]] = {}
    for h in inst.history:
        if h.role == SYSTEM_ROLE:  # timers and signals: the replay of the extract does them
            continue
        if h.event == START and h.from_state is None:
            ours.setdefault(START, []).append(h)
        else:
            ours.setdefault(h.event, []).append(h)
    theirs: dict[str, list[EventRow]] = {}
    for r in rows:
        theirs.setdefault(r.event, []).append(r)
    found: list[Difference] = []
    for event in dict.fromkeys([*theirs, *ours]):
        a, b = theirs.get(event, []), ours.get(event, [])
        for r, h in zip(a, b, strict=False):
            if _day(engine, r.at) != _day(engine, h.at):
                found.append(Difference("different_date", inst.definition, inst.ref, event,
                                        _day(engine, r.at), _day(engine, h.at), r.line,
                                        inst.id))
        found.extend(Difference("missing_in_icsflow", inst.definition, inst.ref, event,
                                _day(engine, r.at), "", r.line, inst.id) for r in a[len(b):])
        found.extend(Difference("missing_in_extract", inst.definition, inst.ref, event, "",
                                _day(engine, h.at), None, inst.id) for h in b[len(a):])
    return found


def _verdicts(engine: Engine, rows: list[EventRow], held: Mapping[tuple[str, str], Instance],
              until: date | datetime | None) -> list[Difference]:
    """Replay the extract alone (a scratch database) and compare deadline verdicts."""
    replayed: dict[tuple[str, str], Instance] = {}

    def read(scratch: Engine, result: ReplayResult) -> None:
        for case, iid in result.cases.items():
            if case in held:
                replayed[case] = scratch.get(iid)

    wanted = [r for r in rows if r.case in held]
    if not wanted:
        return []
    check_rows(engine, wanted, {}, until_instant(until, engine), inspect=read, seed=False)
    found: list[Difference] = []
    for case, theirs in replayed.items():
        inst = held[case]
        for name, (a, b) in _paired(theirs.deadline_list, inst.deadline_list).items():
            if a.status is not b.status:
                found.append(Difference("verdict_differs", inst.definition, inst.ref,
                                        f"{name} due {b.due.isoformat()}", a.status.value,
                                        b.status.value, None, inst.id))
    return found


def _paired(theirs: Sequence[DeadlineInfo], ours: Sequence[DeadlineInfo],
            ) -> dict[str, tuple[DeadlineInfo, DeadlineInfo]]:
    """Deadlines matched by name and occurrence (``review_due#2``)."""
    def keyed(infos: Sequence[DeadlineInfo]) -> dict[str, DeadlineInfo]:
        seen: dict[str, int] = {}
        out: dict[str, DeadlineInfo] = {}
        for d in infos:
            seen[d.name] = seen.get(d.name, 0) + 1
            out[d.name if seen[d.name] == 1 else f"{d.name}#{seen[d.name]}"] = d
        return out

    a, b = keyed(theirs), keyed(ours)
    return {k: (a[k], b[k]) for k in a if k in b}


def write_csv(differences: Sequence[Difference], out: TextIO) -> None:
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for d in differences:
        j = d.to_json()
        writer.writerow(["" if j[c] is None else j[c] for c in COLUMNS])


def render_table(differences: Sequence[Difference], source: str) -> str:
    """The text table: one line per difference, aligned."""
    if not differences:
        return "no differences"
    rows = [("KIND", "CASE", "WHAT", "EXTRACT", "ICSFLOW", "LINE")]
    rows += [(d.kind, f"{d.definition} {d.ref}", d.what, d.extract or "-", d.icsflow or "-",
              f"{source}:{d.line}" if d.line else "-") for d in differences]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    return "\n".join(lines) + f"\n{len(differences)} difference(s)"


__all__ = ["Difference", "reconcile", "write_csv", "render_table", "KINDS", "COLUMNS"]
