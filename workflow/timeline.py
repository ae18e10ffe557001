"""A child's timeline: every process of one child, its state, live deadlines and last events.

Pure: built from the child's ``Instance`` values and a date, so the CLI (``icsflow child``), the
web page and reports show the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.context import days_left
from icsflow.workflow.instance import DeadlineInfo, HistoryEntry, Instance


@dataclass(frozen=True)
class TimelineEvent:
    """One history row of one of the child's cases."""

    instance_id: str
    definition: str
    ref: str
    entry: HistoryEntry

    def to_json(self) -> dict[str, Any]:
        return {"instance_id": self.instance_id, "definition": self.definition,
                "ref": self.ref, **self.entry.to_json()}


@dataclass(frozen=True)
class ChildTimeline:
    """Cases newest-started first; events newest first; deadlines still counting."""

    child: str
    today: date
    cases: tuple[Instance, ...]
    events: tuple[TimelineEvent, ...]
    calendar: WorkingCalendar

    @property
    def families(self) -> tuple[str, ...]:
        return tuple(sorted({c.family for c in self.cases if c.family}))

    def live_deadlines(self, inst: Instance) -> list[DeadlineInfo]:
        return sorted((d for d in inst.deadline_list if d.active), key=lambda d: d.due_at)

    def days_left(self, d: DeadlineInfo) -> int:
        return days_left(self.calendar, self.today, d.due)

    def to_json(self, last: int | None = None) -> dict[str, Any]:
        events = self.events if last is None else self.events[:last]
        return {
            "child": self.child, "families": list(self.families),
            "as_of": self.today.isoformat(),
            "cases": [{
                "id": c.id, "definition": c.definition, "version": c.version, "ref": c.ref,
                "family": c.family, "state": c.state, "closed": c.closed,
                "started_at": c.started_at.isoformat() if c.started_at else None,
                "closed_at": c.closed_at.isoformat() if c.closed_at else None,
                "deadlines": [{**d.to_json(), "working_days_left": self.days_left(d)}
                              for d in self.live_deadlines(c)],
                "timers": [t.to_json() for t in c.timers],
            } for c in self.cases],
            "events": [e.to_json() for e in events],
        }


def child_timeline(child: str, cases: Sequence[Instance], now: datetime,
                   calendar: WorkingCalendar) -> ChildTimeline:
    """Open cases before closed ones, each group newest first; all events newest first."""
    def started(c: Instance) -> datetime:
        return c.started_at or c.created_at or now

    ordered = sorted(cases, key=started, reverse=True)
    ordered.sort(key=lambda c: c.closed)  # stable: open first, each group newest first
    events = [TimelineEvent(c.id, c.definition, c.ref, h) for c in cases for h in c.history]
    events.sort(key=lambda e: (e.entry.at, e.entry.recorded_at))  # stable: history order kept
    return ChildTimeline(child, calendar.local_date(now), tuple(ordered), tuple(reversed(events)),
                         calendar)


__all__ = ["ChildTimeline", "TimelineEvent", "child_timeline"]
