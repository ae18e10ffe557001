"""A child's timeline: every process of one child, its state, live deadlines and last events.

Pure: built from the child's ``Instance`` values and a date, so the CLI (``icsflow child``), the
web page and reports show the same thing. Deadlines still counting are listed apart from the
dates a case only tracks (markers: a birthday, "dual since 3 months"), which are never due.

The timeline also **flags** what the law asks for and no deadline can hold, because it is about
what did *not* happen before something else did (Care Planning, Placement and Case Review
(England) Regulations 2010):

- **reg. 32(2)**: a significant change to the care plan (most placement moves, a change of
  legal status) recorded (``record_change``) with no review before it that could have
  considered it;
- **reg. 39**: a child aged 16 or 17 who stopped being looked after (``cancel``, other than
  opened in error) with no review before it.

A review counts as "before it" when it is the latest review held on or before the day of the
change (or the ending) and it was either held within ``REVIEW_WINDOW`` working days before that
day (local practice: the window of a first review), or it was the review an early review was
asked for with the matching reason (``significant_change``, ``before_ceasing_accommodation``:
the first review held on or after that request) and, for a change, no other change was
recorded between that review and this one. Each flag is a ``Flag`` in ``flags`` and an entry
of its own in the events (event ``flag: reg 32(2)``), so every view of the timeline shows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.context import days_left
from icsflow.workflow.data import stored_date
from icsflow.workflow.instance import DeadlineInfo, HistoryEntry, Instance

REVIEW_WINDOW = 20  # working days before a change or an ending in which a review counts
REVIEWS = ("hold", "record_review")
CHANGE_WORDS = {"placement_move": "a placement move", "care_plan_change": "a change of care plan",
                "legal_status_change": "a change of legal status"}


def birthday(dob: date, years: int) -> date:
    """The day a child born on ``dob`` reaches ``years``: the anniversary, and for a 29 February
    birthday in a year without one, 1 March (as ``initial_review`` counts it)."""
    try:
        return dob.replace(year=dob.year + years)
    except ValueError:
        return date(dob.year + years, 3, 1)


@dataclass(frozen=True)
class Flag:
    """Something the regulations expect that did not happen first, on one case."""

    instance_id: str
    definition: str
    ref: str
    at: datetime
    rule: str
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"instance_id": self.instance_id, "definition": self.definition,
                "ref": self.ref, "at": self.at.isoformat(), "rule": self.rule,
                "text": self.text}


@dataclass(frozen=True)
class TimelineEvent:
    """One history row of one of the child's cases, or a flag (``flag`` set: its entry is the
    flag shown as an event, actor ``icsflow``, at the time of the event that raised it)."""

    instance_id: str
    definition: str
    ref: str
    entry: HistoryEntry
    flag: Flag | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"instance_id": self.instance_id, "definition": self.definition,
               "ref": self.ref, **self.entry.to_json()}
        if self.flag is not None:
            out["flag"] = self.flag.to_json()
        return out


@dataclass(frozen=True)
class ChildTimeline:
    """Cases newest-started first; events newest first; deadlines still counting."""

    child: str
    today: date
    cases: tuple[Instance, ...]
    events: tuple[TimelineEvent, ...]
    calendar: WorkingCalendar
    flags: tuple[Flag, ...] = field(default=())

    @property
    def families(self) -> tuple[str, ...]:
        return tuple(sorted({c.family for c in self.cases if c.family}))

    def live_deadlines(self, inst: Instance) -> list[DeadlineInfo]:
        """Deadlines still counting (due, or overdue): never a marker."""
        return sorted((d for d in inst.deadline_list if d.active and not d.marker),
                      key=lambda d: d.due_at)

    def tracked_dates(self, inst: Instance) -> list[DeadlineInfo]:
        """Dates the case tracks (markers: birthdays, "dual since 3 months"): never due."""
        return sorted((d for d in inst.deadline_list if d.active and d.marker),
                      key=lambda d: d.due_at)

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
                "tracked_dates": [d.to_json() for d in self.tracked_dates(c)],
                "timers": [t.to_json() for t in c.timers],
            } for c in self.cases],
            "flags": [f.to_json() for f in self.flags],
            "events": [e.to_json() for e in events],
        }


def child_timeline(child: str, cases: Sequence[Instance], now: datetime,
                   calendar: WorkingCalendar) -> ChildTimeline:
    """Open cases before closed ones, each group newest first; all events newest first, each
    flag beside the event that raised it."""
    def started(c: Instance) -> datetime:
        return c.started_at or c.created_at or now

    ordered = sorted(cases, key=started, reverse=True)
    ordered.sort(key=lambda c: c.closed)  # stable: open first, each group newest first
    events = [TimelineEvent(c.id, c.definition, c.ref, h) for c in cases for h in c.history]
    flags = [f for c in cases for f in case_flags(c, calendar)]
    events += [TimelineEvent(f.instance_id, f.definition, f.ref, _flag_entry(f), f)
               for f in flags]
    events.sort(key=lambda e: (e.entry.at, e.entry.recorded_at, e.flag is not None))
    return ChildTimeline(child, calendar.local_date(now), tuple(ordered), tuple(reversed(events)),
                         calendar, tuple(sorted(flags, key=lambda f: f.at)))


def _flag_entry(f: Flag) -> HistoryEntry:
    return HistoryEntry(f"flag: {f.rule}", None, "flagged", "icsflow", "system", f.at, f.at,
                        f.text)


# -- flags ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    """One history row with the case's data as it stood after it."""

    entry: HistoryEntry
    data: Mapping[str, Any]


def _steps(inst: Instance) -> list[_Step]:
    data: dict[str, Any] = {}  # a history row keeps only the fields its event changed
    out = []
    for h in inst.history:
        data = {**data, **dict(h.changes)}
        out.append(_Step(h, data))
    return out


def case_flags(inst: Instance, calendar: WorkingCalendar) -> list[Flag]:
    """The reg. 32(2) and reg. 39 flags of one looked-after review case (none for a case of
    another process, or of a version without the events they read)."""
    steps = _steps(inst)
    reviews = [(d, s) for s in steps if s.entry.event in REVIEWS
               for d in [stored_date(s.data.get("held_on"))] if d is not None]
    if not any(s.entry.event in ("record_change", "cancel") for s in steps):
        return []
    flags: list[Flag] = []
    changes = [s for s in steps if s.entry.event == "record_change"]
    for k, s in enumerate(changes):
        day = stored_date(s.data.get("changed_on")) or calendar.local_date(s.entry.at)
        others = [stored_date(c.data.get("changed_on")) for c in changes[:k]]
        if _reviewed(day, reviews, _asked(steps, "significant_change", reviews), calendar,
                     [d for d in others if d is not None]):
            continue
        what = CHANGE_WORDS.get(str(s.data.get("change_kind")), "a significant change")
        last = _last_review(day, reviews)
        since = f"the last review was held on {last.isoformat()}" if last else "no review held"
        flags.append(Flag(inst.id, inst.definition, inst.ref, s.entry.at, "reg 32(2)",
                          f"{what[0].upper()}{what[1:]} on {day.isoformat()} with no review "
                          f"before it (reg. 32(2): a significant change to the care plan is "
                          f"considered at a review first); {since}"))
    flags.extend(_ceasing_flags(inst, steps, reviews, calendar))
    return flags


def _ceasing_flags(inst: Instance, steps: Sequence[_Step],
                   reviews: Sequence[tuple[date, _Step]],
                   calendar: WorkingCalendar) -> list[Flag]:
    """Reg. 39: a child of 16 or 17 who stopped being looked after with no review first."""
    out: list[Flag] = []
    for s in steps:
        if s.entry.event != "cancel" or s.data.get("cancel_reason") == "opened_in_error":
            continue
        dob = stored_date(s.data.get("date_of_birth"))
        day = calendar.local_date(s.entry.at)
        if dob is None or not birthday(dob, 16) <= day < birthday(dob, 18):
            continue
        if _reviewed(day, reviews, _asked(steps, "before_ceasing_accommodation", reviews),
                     calendar, []):
            continue
        last = _last_review(day, reviews)
        since = f"the last review was held on {last.isoformat()}" if last else "no review held"
        out.append(Flag(inst.id, inst.definition, inst.ref, s.entry.at, "reg 39",
                        f"Stopped being looked after on {day.isoformat()}, aged 16 or 17, with "
                        f"no review before it (reg. 39: a review before ceasing to look after "
                        f"a child of 16 or 17); {since}"))
    return out


def _asked(steps: Sequence[_Step], reason: str,
           reviews: Sequence[tuple[date, _Step]]) -> set[date]:
    """The reviews held in answer to an early review asked for with ``reason``: for each such
    request, the first review held on or after it."""
    answered: set[date] = set()
    for s in steps:
        if s.entry.event != "request_early_review" or s.data.get("reason") != reason:
            continue
        asked = stored_date(s.data.get("early_review_requested_on")) or s.entry.at.date()
        first = min((d for d, _ in reviews if d >= asked), default=None)
        if first is not None:
            answered.add(first)
    return answered


def _last_review(day: date, reviews: Sequence[tuple[date, _Step]]) -> date | None:
    return max((d for d, _ in reviews if d <= day), default=None)


def _reviewed(day: date, reviews: Sequence[tuple[date, _Step]], asked: set[date],
              calendar: WorkingCalendar, other_changes: Sequence[date]) -> bool:
    """Whether the latest review on or before ``day`` could have considered what happened on
    it: held in the window before it, or asked for it with no other change in between."""
    last = _last_review(day, reviews)
    if last is None:
        return False
    if calendar.working_days_between(last, day) <= REVIEW_WINDOW:
        return True
    return last in asked and not any(last <= d < day for d in other_changes)


__all__ = ["ChildTimeline", "Flag", "TimelineEvent", "birthday", "case_flags", "child_timeline",
           "REVIEW_WINDOW"]
