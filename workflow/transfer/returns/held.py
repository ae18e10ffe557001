"""What icsflow already holds of a child, in the returns' own terms: each looked-after review
case as a period of care with its reviews, each conference case as an enquiry with its
conference and plan.

Read through the engine's public reads (``Engine.list_cases``, each case's history), once per
import, reconcile or export: a return is compared fact by fact with these, so that what icsflow
already holds (imported before, or recorded by hand) is never applied twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from icsflow.definitions.model import SYSTEM_ROLE
from icsflow.workflow.data import stored_date
from icsflow.workflow.engine import Engine
from icsflow.workflow.instance import Instance

REVIEW_CASE = "initial_review"
CONFERENCE_CASE = "conference"
CP_CASE = "cp_conference"


@dataclass(frozen=True)
class HeldPeriod:
    """An ``initial_review`` case: the period of care icsflow holds."""

    id: str
    ref: str
    child: str
    start: date
    end: date | None  # the day it was cancelled (the child stopped being looked after)
    reviews: tuple[tuple[date, str | None], ...]  # (held_on, participation)
    state: str
    closed: bool
    last_event: datetime | None
    short_breaks: bool
    data: dict[str, Any]
    changes: tuple[date, ...] = ()  # changed_on of each change of placement or legal status


@dataclass(frozen=True)
class HeldConference:
    """A ``cp_conference`` case: the enquiry, its initial conference, and the plan."""

    id: str
    ref: str
    child: str
    enquiry: date  # strategy_discussion_on: the Section 47 start
    icpc: date | None
    plan_made: bool
    reviews: tuple[date, ...]
    plan_end: date | None
    state: str
    closed: bool
    last_event: datetime | None

    @property
    def plan_start(self) -> date | None:
        return self.icpc if self.plan_made else None

    def enquiry_in(self, first: date, last: date) -> bool:
        """Whether the census of [first, last] holds its Section47: the conference was held in
        the year, or the enquiry started in it and no conference was held by its end."""
        icpc = self.icpc if self.icpc is not None and self.icpc <= last else None
        return (icpc is not None and icpc >= first) or (
            icpc is None and first <= self.enquiry <= last)

    def plan_in(self, first: date, last: date) -> bool:
        """Whether the plan was open at some time in [first, last]."""
        start = self.plan_start
        return start is not None and start <= last and (self.plan_end is None
                                                        or self.plan_end >= first)


@dataclass
class Held:
    """Every child's periods and conferences."""

    periods: dict[str, list[HeldPeriod]]
    conferences: dict[str, list[HeldConference]]

    def last_event(self, child: str) -> datetime | None:
        """The latest event a person (or an import) recorded on any of the child's cases."""
        times = [c.last_event for c in [*self.periods.get(child, ()),
                                        *self.conferences.get(child, ())] if c.last_event]
        return max(times) if times else None


def _local(engine: Engine, at: datetime) -> date:
    return engine.calendar.local_date(at)


def _last(inst: Instance) -> datetime | None:
    times = [h.at for h in inst.history if h.role != SYSTEM_ROLE]
    return max(times) if times else None


REVIEWS_HELD = ("hold", "record_review")  # a review booked and held; one recorded after it
PERIOD_ENDS = ("cancel", "reach_eighteen")  # by hand; by itself on the 18th birthday


def _period(engine: Engine, inst: Instance) -> HeldPeriod:
    reviews: list[tuple[date, str | None]] = []
    changes: list[date] = []
    end: date | None = None
    data: dict[str, Any] = {}  # a history row keeps only the fields its event changed
    for h in inst.history:
        data.update(h.changes)
        if h.event in PERIOD_ENDS:
            end = _local(engine, h.at)
        if h.role == SYSTEM_ROLE:
            continue
        if h.event in REVIEWS_HELD:
            held = stored_date(data.get("held_on")) or _local(engine, h.at)
            reviews.append((held, data.get("participation")))
        elif h.event == "record_change":
            changes.append(stored_date(data.get("changed_on")) or _local(engine, h.at))
    start = stored_date(inst.data.get("looked_after_on")) or _local(engine, inst.history[0].at)
    return HeldPeriod(inst.id, inst.ref, inst.child or "", start, end, tuple(reviews),
                      inst.state, inst.closed_at is not None, _last(inst),
                      bool(inst.data.get("short_breaks")), dict(inst.data), tuple(changes))


def _conference(engine: Engine, inst: Instance) -> HeldConference:
    icpc: date | None = None
    plan_made = False
    reviews: list[date] = []
    end: date | None = None
    data: dict[str, Any] = {}
    for h in inst.history:
        data.update(h.changes)
        if h.role == SYSTEM_ROLE:
            continue
        held = stored_date(data.get("held_at"))
        if h.event in ("hold_icpc", "record_icpc"):
            icpc = held or _local(engine, h.at)
            plan_made = bool(data.get("plan_made"))
        elif h.event in ("hold_review", "record_review_conference"):
            reviews.append(held or _local(engine, h.at))
            if data.get("plan_continues") is False:
                end = reviews[-1]
        elif h.event == "end_plan":
            end = _local(engine, h.at)
    enquiry = stored_date(inst.data.get("strategy_discussion_on")) or _local(engine,
                                                                          inst.history[0].at)
    return HeldConference(inst.id, inst.ref, inst.child or "", enquiry, icpc, plan_made,
                          tuple(reviews), end, inst.state, inst.closed_at is not None,
                          _last(inst))


def read_held(engine: Engine, children: Iterable[str] | None = None) -> Held:
    """The periods and conferences icsflow holds, for ``children`` (every child if None)."""
    wanted = set(children) if children is not None else None
    periods: dict[str, list[HeldPeriod]] = {}
    conferences: dict[str, list[HeldConference]] = {}
    names = set(engine.definitions.names())
    for inst in engine.list_cases(REVIEW_CASE) if REVIEW_CASE in names else []:
        if inst.child and (wanted is None or inst.child in wanted):
            periods.setdefault(inst.child, []).append(_period(engine, inst))
    for inst in engine.list_cases(CP_CASE) if CP_CASE in names else []:
        if inst.child and (wanted is None or inst.child in wanted):
            conferences.setdefault(inst.child, []).append(_conference(engine, inst))
    for found in periods.values():
        found.sort(key=lambda p: p.start)
    for held in conferences.values():
        held.sort(key=lambda c: c.enquiry)
    return Held(periods, conferences)


__all__ = ["Held", "HeldPeriod", "HeldConference", "read_held", "REVIEW_CASE",
           "CP_CASE"]
