"""How ``icsflow list`` sees cases: now, or as they were at the end of a past day.

``list --as-at DATE`` answers from what is stored, without re-running anything:

- a case is listed if it had started before the end of DATE (its start entry's time);
- its state is the ``to`` state of its last history entry before the end of DATE, and it is
  closed if it had closed by then;
- a deadline counts if its row had been written by then (the time of the transition that
  wrote it), the case was in one of the deadline's ``live_in`` states, and it had not been met
  by then; it is overdue if its due day was before DATE.

What history does not keep is said plainly in docs: a deadline recomputed later because an
anchor field changed shows its latest due day, not the one it had on DATE.
"""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.csv_cells import safe_cell
from icsflow.workflow.instance import Instance

CSV_COLUMNS = ("id", "ref", "definition", "version", "state", "closed", "deadline", "due",
               "working_days_overdue")


@dataclass(frozen=True)
class DeadlineView:
    """A deadline still counting at the moment asked about."""

    name: str
    due: date
    due_at: datetime

    def overdue_days(self, on: date, calendar: WorkingCalendar) -> int:
        """Working days past the due day, counting ``on`` itself; 0 when not overdue."""
        return max(calendar.working_days_between(self.due, on), 0) if self.due < on else 0


@dataclass(frozen=True)
class CaseView:
    """One line of ``list``: a case's state and counting deadlines at one moment."""

    id: str
    ref: str
    definition: str
    version: int
    state: str
    closed: bool
    deadlines: tuple[DeadlineView, ...]

    def next_deadline(self) -> DeadlineView | None:
        return min(self.deadlines, key=lambda d: (d.due_at, d.name), default=None)

    def worst_overdue(self, moment: datetime) -> DeadlineView | None:
        late = [d for d in self.deadlines if d.due_at < moment]
        return min(late, key=lambda d: (d.due_at, d.name), default=None)


def end_of_day(day: date, calendar: WorkingCalendar) -> datetime:
    """The instant DATE ends in the service's time zone (events of DATE are before it)."""
    return datetime.combine(day + timedelta(days=1), time(0, 0), calendar.tz)


def current_view(inst: Instance) -> CaseView:
    deadlines = tuple(DeadlineView(d.name, d.due, d.due_at) for d in inst.deadline_list
                      if d.active and not d.marker)  # a tracked date is never due
    return CaseView(inst.id, inst.ref, inst.definition, inst.version, inst.state, inst.closed,
                    deadlines)


def view_as_at(inst: Instance, moment: datetime, rows: Sequence[Any],
               live_in: Mapping[str, tuple[str, ...]]) -> CaseView | None:
    """The case as it stood just before ``moment``; None if it had not started.

    ``rows`` are the case's deadline rows (``storage.reads.deadline_rows``), ``live_in`` maps
    each deadline of its definition version to the states it counts in.
    """
    before = sorted((h for h in inst.history if h.at < moment), key=lambda h: h.at)
    if not before:
        return None
    state = before[-1].to_state
    closed = inst.closed_at is not None and inst.closed_at < moment
    # A deadline row is written in the same transaction as a history entry (same recorded_at):
    # that entry's ``at`` is when the deadline really began to count (events can be backdated).
    happened = {h.recorded_at: h.at for h in inst.history}
    latest: dict[str, Any] = {}
    for row in sorted(rows, key=lambda r: r.id):
        began = happened.get(row.created_at, row.created_at)
        if began < moment:
            latest[row.name] = row
    deadlines = []
    for name, row in latest.items():
        if closed or state not in live_in.get(name, ()):
            continue
        if row.met_at is not None and row.met_at < moment:
            continue
        if row.status == "marker":  # a tracked date (prolonged from, a birthday): never due
            continue
        deadlines.append(DeadlineView(name, row.due, row.due_at))
    return CaseView(inst.id, inst.ref, inst.definition, inst.version, state, closed,
                    tuple(sorted(deadlines, key=lambda d: (d.due_at, d.name))))


def overdue_first(views: Iterable[CaseView], moment: datetime) -> list[CaseView]:
    """Cases with a deadline past due at ``moment``, the longest overdue first."""
    late = [(v.worst_overdue(moment), v) for v in views]
    kept = [(d, v) for d, v in late if d is not None]
    return [v for d, v in sorted(kept, key=lambda dv: (dv[0].due_at, dv[1].ref, dv[1].id))]


def rows_for(views: Sequence[CaseView], moment: datetime, today: date,
             calendar: WorkingCalendar, overdue: bool) -> list[dict[str, Any]]:
    """One flat row per case (CSV and ``--as-at --json``): the overdue deadline when listing
    overdue cases, otherwise the next one."""
    out = []
    for v in views:
        d = v.worst_overdue(moment) if overdue else v.next_deadline()
        out.append({
            "id": v.id, "ref": v.ref, "definition": v.definition, "version": v.version,
            "state": v.state, "closed": v.closed, "deadline": d.name if d else "",
            "due": d.due.isoformat() if d else "",
            "working_days_overdue": d.overdue_days(today, calendar) if d else 0,
        })
    return out


def csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: safe_cell(str(row[k]).lower() if isinstance(row[k], bool)
                                      else row[k]) for k in CSV_COLUMNS})
    return buffer.getvalue()


def unknown_choice(what: str, given: str, known: Iterable[str]) -> str | None:
    """None if ``given`` is known, else one line naming the nearest known names."""
    names = sorted(set(known))
    if given in names:
        return None
    close = difflib.get_close_matches(given, names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown {what} '{given}' (known: {', '.join(names) or 'none'}){hint}"


__all__ = ["CaseView", "DeadlineView", "CSV_COLUMNS", "end_of_day", "current_view",
           "view_as_at", "overdue_first", "rows_for", "csv_text", "unknown_choice"]
