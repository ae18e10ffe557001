"""Planning a case's deadlines and timers: pure, from the case as a transition leaves it.

A deadline is live while the case is in its ``live_in`` states. Entering that set computes its
due date (the first rule whose condition holds, counted from its anchor on the working-day
calendar) with a breach timer and the definition's reminders; leaving it meets it, on time or
late, or cancels it (``cancelled_by``, or any way but ``met_by`` for deadlines only their own
events meet). Whether it was met or breached is decided by logical time alone: when the answer
happened against the breach instant, whoever's timer fired first. ``explain``, migration and
calendar re-projection use ``choose_rule`` and the timer planners below, so they can never
disagree with what the engine planned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from icsflow.definitions.durations import Duration
from icsflow.definitions.expressions import evaluate
from icsflow.definitions.model import (
    AnchorKind,
    Deadline,
    DeadlineRule,
    Definition,
    Timer,
    TimerPosition,
)
from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.context import ContextMaker, deadline_value
from icsflow.workflow.data import to_python
from icsflow.workflow.durations import Roll as DurationRoll
from icsflow.workflow.durations import Unit, apply_duration
from icsflow.workflow.errors import DefinitionError
from icsflow.workflow.instance import (
    SYSTEM_ACTOR,
    DeadlineInfo,
    DeadlineStatus,
    HistoryEntry,
)
from icsflow.workflow.ports import (
    Change,
    DeadlineRecord,
    DeadlineUpdate,
    InstanceRecord,
    NewTimer,
    TimerRecord,
)

BREACH = "breach"  # kind of the internal timer that marks a deadline breached


def midnight(d: date, calendar: WorkingCalendar) -> datetime:
    """00:00 local of ``d``: when day-based timers fire."""
    return datetime.combine(d, time(0), tzinfo=calendar.tz)


def breach_instant(due: date | datetime, calendar: WorkingCalendar) -> datetime:
    """A date deadline is met any time on its date: breached from the next local midnight."""
    if isinstance(due, datetime):
        return due
    return midnight(due + timedelta(days=1), calendar)


def as_datetime(value: date | datetime, calendar: WorkingCalendar) -> datetime:
    """Day-based results fire at 00:00 local of the resulting date."""
    return value if isinstance(value, datetime) else midnight(value, calendar)


def verdict(info: DeadlineInfo, at: datetime) -> DeadlineStatus:
    """Met or breached: a function of when the answer happened against the breach instant."""
    return DeadlineStatus.MET if at < info.due_at else DeadlineStatus.BREACHED


def closing(rec: DeadlineRecord, at: datetime, *, met: bool) -> DeadlineUpdate:
    """The update that closes an active deadline at ``at``, by logical time alone: answered
    (``met``) it is met or breached by ``at`` against its breach instant; ended any other way
    (cancelled, superseded, the case closed) it is breached if its due instant had passed by
    then, and cancelled only if it was still in the future. Whether a tick ran in between (and
    marked it breached already) changes nothing. A marker is a date tracked, never due: it is
    only closed."""
    info = rec.info
    if info.status is DeadlineStatus.MARKER:
        return DeadlineUpdate(rec.id, met_at=at)
    if met or at >= info.due_at:
        return DeadlineUpdate(rec.id, status=verdict(info, at), met_at=at)
    return DeadlineUpdate(rec.id, status=DeadlineStatus.CANCELLED, met_at=None)


def deadline_info(name: str, due: date | datetime, calendar: WorkingCalendar, *,
                  marker: bool = False) -> DeadlineInfo:
    """A live deadline (or a marker) due on ``due`` (a date, or an exact instant for hour
    deadlines)."""
    exact = isinstance(due, datetime)
    due_date = calendar.local_date(due) if isinstance(due, datetime) else due
    status = DeadlineStatus.MARKER if marker else DeadlineStatus.LIVE
    return DeadlineInfo(name, due_date, breach_instant(due, calendar), status, exact)


@dataclass
class CaseWork:
    """The case as a transition is being planned (mutable, thrown away on error): the state
    and data it will have, its history with the new entry, its deadlines and pending timers as
    read, and the ``change`` being built."""

    defn: Definition
    rec: InstanceRecord
    state: str
    data: dict[str, Any]
    history: list[HistoryEntry]
    deadlines: list[DeadlineRecord]
    timers: list[TimerRecord]
    change: Change
    new_deadlines: dict[str, DeadlineInfo] = field(default_factory=dict)

    def active_infos(self) -> list[DeadlineInfo]:
        """Every deadline's latest computation (the context's ``deadlines``), new ones last."""
        infos = {r.info.name: r.info for r in self.deadlines}
        infos.update(self.new_deadlines)
        return list(infos.values())

    def with_change(self, change: Change) -> CaseWork:
        """The same case planning into another change (a scratch one, to read its timers)."""
        return replace(self, change=change)


class DeadlinePlanner:
    """Deadlines and timers of a transition, counted on one working-day calendar."""

    def __init__(self, calendar: WorkingCalendar, contexts: ContextMaker) -> None:
        self.calendar = calendar
        self.contexts = contexts

    # -- a transition's effect on deadlines ----------------------------------------------------

    def meet(self, work: CaseWork, state: str, event: str, at: datetime) -> None:
        """Deadlines live in ``state`` that ``event`` meets (``met_by``) are met (or closed
        late) here, even if the case stays in their live set; a later change of their anchor
        field starts the next one."""
        met: dict[int, DeadlineRecord] = {}
        for rec in work.deadlines:
            spec = work.defn.deadline_map.get(rec.info.name)
            if (not rec.info.active or spec is None or event not in spec.met_by
                    or state not in spec.live_in):
                continue
            upd = closing(rec, at, met=True)  # late even if no breach timer fired yet
            work.change.deadline_updates.append(upd)
            self.cancel_deadline_timers(work, rec.info.name)
            met[rec.id] = DeadlineRecord(rec.id, replace(rec.info, status=upd.status or
                                                         rec.info.status, met_at=at))
        if met:
            work.deadlines = [met.get(r.id, r) for r in work.deadlines]

    def leave(self, work: CaseWork, event: str, at: datetime) -> None:
        """Deadlines no longer live in the new state are met, or ended by an event in their
        ``cancelled_by`` (a case that ends early never counts as met). One with ``met_by`` is
        met only by those events: leaving its live states otherwise ends it. An ended deadline
        whose due instant had passed is breached, one still in the future cancelled; met or
        breached is a function of ``at`` against the breach instant (``closing``), whether or
        not a worker fired the breach timer first."""
        live = {d.name for d in work.defn.deadlines_live_in(work.state)}
        for rec in work.deadlines:
            info = rec.info
            if not info.active or info.name in live:
                continue
            spec = work.defn.deadline_map.get(info.name)
            ends = spec is not None and (event in spec.cancelled_by
                                         or bool(spec.met_by and event not in spec.met_by))
            work.change.deadline_updates.append(closing(rec, at, met=not ends))
            self.cancel_deadline_timers(work, info.name)

    def enter(self, work: CaseWork, old_live: set[str], at: datetime, *, changed: set[str],
              event: str) -> None:
        """Compute deadlines entering the live set, and recompute live ones whose anchor field
        changed, or whose anchor deadline was just computed (deadlines come in written order,
        so a chain follows its first link); each gets its breach timer and the definition's
        timers."""
        active = {r.info.name: r for r in work.deadlines if r.info.active}
        for spec in work.defn.deadlines_live_in(work.state):
            existing = active.get(spec.name)
            fields = {r.anchor.ref for r in spec.rules if r.anchor.kind is AnchorKind.FIELD}
            chained = {r.anchor.ref for r in spec.rules if r.anchor.kind is AnchorKind.DEADLINE}
            entering = spec.name not in old_live
            if not entering and not (fields & changed) and not (chained & set(work.new_deadlines)):
                continue  # live and unmoved, or not computed (no anchor yet) and still not
            due = self.compute_due(work, spec, at, event)
            if due is None:
                continue
            info = deadline_info(spec.name, due, self.calendar, marker=spec.marker)
            if existing is not None and not entering and spec.met_by:
                # A deadline met only by its events (minutes) whose anchor moved (a new
                # meeting): the old one stays as it was (breached, or cancelled if still
                # live) and the new one is a row of its own.
                if existing.info.due == info.due and existing.info.due_at == info.due_at:
                    continue
                work.change.deadline_updates.append(closing(existing, at, met=False))
                self.cancel_deadline_timers(work, spec.name)
                existing = None
            elif existing is not None and not entering:
                if existing.info.due == info.due and existing.info.due_at == info.due_at:
                    continue
                work.change.deadline_updates.append(DeadlineUpdate(
                    existing.id, status=info.status, due=info.due, due_at=info.due_at))
                self.cancel_deadline_timers(work, spec.name)
            elif existing is not None and entering:  # stale row (defensive): close it
                work.change.deadline_updates.append(closing(existing, at, met=False))
                self.cancel_deadline_timers(work, spec.name)
            if existing is None or entering:
                work.change.new_deadlines.append(info)
            work.new_deadlines[spec.name] = info
            self.deadline_timers(work, info)

    @staticmethod
    def cancel_deadline_timers(work: CaseWork, name: str) -> None:
        for t in work.timers:
            if t.deadline == name and t.id not in work.change.cancel_timers:
                work.change.cancel_timers.append(t.id)

    @staticmethod
    def cancel_state_timers(work: CaseWork, state: str) -> None:
        for t in work.timers:
            if t.state == state and t.kind == "timer" and t.id not in work.change.cancel_timers:
                work.change.cancel_timers.append(t.id)

    # -- due dates ------------------------------------------------------------------------------

    def compute_due(self, work: CaseWork, spec: Deadline, at: datetime,
                    event: str) -> date | datetime | None:
        chosen = self.choose_rule(work, spec, at, event)
        if chosen is None:
            return None
        rule, anchor = chosen
        roll = DurationRoll(spec.roll.value) if spec.roll is not None else None
        return apply_duration(anchor, rule.offset, self.calendar, sign=rule.sign, roll=roll)

    def choose_rule(self, work: CaseWork, spec: Deadline, at: datetime,
                    event: str) -> tuple[DeadlineRule, date | datetime] | None:
        """The first rule of ``spec`` whose condition holds, with its anchor (or None): one
        choice for planning and for ``explain``, so the two can never disagree."""
        defn = work.defn
        pydata = to_python(defn, work.data)
        ctx: dict[str, Any] | None = None
        for rule in spec.rules:
            if rule.when is not None:
                if ctx is None:
                    ctx = self.contexts.make(defn, work.rec, state=work.state, previous=None,
                                             data=pydata, infos=work.active_infos(),
                                             history=work.history, event=event, at=at, now=at,
                                             actor=SYSTEM_ACTOR, note=None)
                try:
                    if not evaluate(rule.when.text, ctx):
                        continue
                except Exception as exc:  # noqa: BLE001
                    raise DefinitionError([f"{rule.when.source}: deadline {spec.name} condition "
                                           f"{rule.when.text!r} failed: {exc}"]) from exc
            anchor = self._anchor(work, rule.anchor.kind, rule.anchor.ref, at, pydata)
            if anchor is None:
                return None
            return rule, anchor
        return None

    @staticmethod
    def _anchor(work: CaseWork, kind: AnchorKind, ref: str | None, at: datetime,
                pydata: Mapping[str, Any]) -> date | datetime | None:
        if kind is AnchorKind.ENTRY:
            return at
        if kind is AnchorKind.START:
            return work.rec.started_at
        if kind is AnchorKind.STATE:
            return next((h.at for h in reversed(work.history) if h.to_state == ref
                         and (h.from_state != ref or h.event == "start")), None)
        if kind is AnchorKind.EVENT:
            return next((h.at for h in reversed(work.history) if h.event == ref), None)
        if kind is AnchorKind.FIELD:
            value = pydata.get(ref or "")
            return value if isinstance(value, (date, datetime)) else None
        if kind is AnchorKind.DEADLINE:
            if ref in work.new_deadlines:
                return deadline_value(work.new_deadlines[ref])
            return next((deadline_value(r.info) for r in reversed(work.deadlines)
                         if r.info.name == ref), None)
        return None

    # -- timers ---------------------------------------------------------------------------------

    def deadline_timers(self, work: CaseWork, info: DeadlineInfo) -> None:
        """The deadline's breach timer (a marker has none: it is never due) and the
        definition's timers on it, into the change."""
        if info.status is not DeadlineStatus.MARKER:
            work.change.new_timers.append(NewTimer(f"{info.name}:breach", BREACH, info.due_at,
                                                   f"breach:{info.name}", deadline=info.name))
        anchor: date | datetime = info.due_at if info.exact else info.due
        for timer in work.defn.timers_of_deadline(info.name):
            if timer.position is TimerPosition.BREACH:
                due = info.due_at
            elif timer.position is TimerPosition.DUE:
                due = midnight(info.due, self.calendar)
            else:
                if timer.offset is None:
                    continue
                sign = -1 if timer.position is TimerPosition.BEFORE else 1
                due = as_datetime(apply_duration(anchor, timer.offset, self.calendar,
                                                 sign=sign), self.calendar)
            work.change.new_timers.append(NewTimer(timer.name, "timer", due, timer.action,
                                                   deadline=info.name, first_due_at=due))

    def state_timers(self, work: CaseWork, state: str, at: datetime) -> None:
        """The timers of ``state``, anchored on entering it at ``at``, into the change."""
        for timer in work.defn.timers_of_state(state):
            due = at if timer.offset is None else as_datetime(
                apply_duration(at, timer.offset, self.calendar), self.calendar)
            work.change.new_timers.append(NewTimer(timer.name, "timer", due, timer.action,
                                                   state=state, first_due_at=due))

    def repeat_due(self, first: datetime, timer: Timer, k: int) -> datetime:
        """The ``k``-th repeat of ``timer`` counted from its first firing."""
        every = timer.repeat_every
        if every is None:
            raise ValueError(f"timer {timer.name} does not repeat")
        total = Duration(every.amount * k, every.unit)
        if every.unit is Unit.HOURS:
            return as_datetime(apply_duration(first, total, self.calendar), self.calendar)
        anchor = self.calendar.local_date(first)
        return as_datetime(apply_duration(anchor, total, self.calendar), self.calendar)


__all__ = ["BREACH", "CaseWork", "DeadlinePlanner", "as_datetime", "breach_instant",
           "deadline_info", "midnight", "verdict"]
