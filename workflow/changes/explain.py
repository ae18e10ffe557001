"""Why a deadline falls on its date: its anchor, its duration, the days it skipped, its moves.

The engine stores a deadline's date, not how it got there. The basis is found again from the
case's history: the moment the case entered the deadline's live set (the anchor of ``entry``
deadlines, and the moment every other anchor is read at), then the first rule whose condition
holds, counted on the calendar. Migration and calendar re-projection use the same basis to
recount a live deadline "from its original anchor" under new rules or a new calendar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from icsflow.definitions.durations import Unit
from icsflow.definitions.model import Deadline, DeadlineRule
from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.deadlines import CaseWork
from icsflow.workflow.durations import Roll as DurationRoll
from icsflow.workflow.durations import apply_duration
from icsflow.workflow.instance import HistoryEntry
from icsflow.workflow.planning import Planner
from icsflow.workflow.ports import Change, Snapshot

MOVES = ("migrated", "reprojected")  # history events that move deadlines by themselves


@dataclass(frozen=True)
class DeadlineBasis:
    """How one deadline is computed now: ``entered_at`` by ``event``, ``rule`` applied to
    ``anchor`` gives ``due`` (a date, or a datetime for hour deadlines)."""

    name: str
    entered_at: datetime
    event: str
    rule: DeadlineRule
    anchor: date | datetime
    due: date | datetime
    rolled: bool = False
    rolled_back: bool = False  # the deadline's ``roll``: back to the working day before
    unrolled: date | datetime | None = None  # the date before it was rolled

    @property
    def calendar_dependent(self) -> bool:
        """True when a change of working days can move it."""
        return self.rule.offset.unit is Unit.WORKING_DAYS or self.rolled

    def window(self, calendar: WorkingCalendar) -> tuple[date, date]:
        """The days counted: (anchor date, due date], as local dates."""
        start = calendar.local_date(self.anchor) if isinstance(self.anchor, datetime) \
            else self.anchor
        end = calendar.local_date(self.due) if isinstance(self.due, datetime) else self.due
        return (start, end) if start <= end else (end, start)


def later_maps(history: Sequence[HistoryEntry]) -> list[dict[str, str]]:
    """For each history entry, the state renames of the migrations recorded after it (so an old
    version's state names read as the current version's)."""
    maps: list[dict[str, str]] = [{} for _ in history]
    composed: dict[str, str] = {}
    for i in range(len(history) - 1, -1, -1):
        maps[i] = dict(composed)
        h = history[i]
        if h.event == "migrated":
            renames = h.changes.get("state_map") or {}
            if isinstance(renames, Mapping):
                composed = {old: composed.get(str(new), str(new)) for old, new in renames.items()
                            } | {k: v for k, v in composed.items() if k not in renames}
    return maps


def entry_index(history: Sequence[HistoryEntry], live_in: Sequence[str],
                extra_map: Mapping[str, str] | None = None) -> int | None:
    """The last history entry that brought the case into ``live_in`` from outside it."""
    live = set(live_in)
    maps = later_maps(history)
    found: int | None = None
    extra = extra_map or {}

    def now_called(state: str, i: int) -> str:
        named = maps[i].get(state, state)  # renamed by later migrations, then by this one
        return extra.get(named, named)

    for i, h in enumerate(history):
        to = now_called(h.to_state, i)
        frm = now_called(h.from_state, i) if h.from_state is not None else None
        if h.event in MOVES:  # a migration or re-projection is never an entry
            continue
        if to in live and (frm is None or frm not in live):
            found = i
    return found


def compute_basis(planner: Planner, work: CaseWork, spec: Deadline,
                  extra_map: Mapping[str, str] | None = None) -> DeadlineBasis | None:
    """Recount ``spec`` for the case in ``work`` (its definition, data, history, other
    deadlines) on the planner's calendar, from the moment the case entered its live set."""
    history = work.history
    idx = entry_index(history, spec.live_in, extra_map)
    if idx is None:
        at, event, upto = work.rec.started_at, "start", history
    else:
        at, event, upto = history[idx].at, history[idx].event, history[:idx + 1]
    sub = replace(work, history=list(upto))
    chosen = planner.deadlines.choose_rule(sub, spec, at, event)
    if chosen is None:
        return None
    rule, anchor = chosen
    roll = DurationRoll(spec.roll.value) if spec.roll is not None else None
    due = apply_duration(anchor, rule.offset, planner.calendar, sign=rule.sign, roll=roll)
    plain = apply_duration(anchor, rule.offset, planner.calendar, sign=rule.sign)
    return DeadlineBasis(spec.name, at, event, rule, anchor, due, rolled=plain != due,
                         rolled_back=roll is DurationRoll.BACKWARD, unrolled=plain)


def work_for(planner: Planner, snap: Snapshot) -> CaseWork:
    """The planner's view of a stored case on its own definition version."""
    rec = snap.instance
    defn = planner.catalogue.definition(rec.definition, rec.definition_version)
    return CaseWork(defn, rec, rec.state, dict(rec.data), list(snap.history),
                    list(snap.deadlines), list(snap.timers), Change(rec.id, rec.row_version))


def _day(value: date | datetime, calendar: WorkingCalendar) -> str:
    if isinstance(value, datetime):
        return value.astimezone(calendar.tz).isoformat(timespec="minutes")
    return value.isoformat()


def explain_basis(basis: DeadlineBasis, calendar: WorkingCalendar,
                  history: Sequence[HistoryEntry] = ()) -> dict[str, Any]:
    """The JSON ``explain`` of one deadline, with a sentence (``text``) for people."""
    rule = basis.rule
    direction = "before" if rule.sign < 0 else "after"
    skipped: list[dict[str, str]] = []
    if rule.offset.unit is Unit.WORKING_DAYS:
        start = calendar.local_date(basis.anchor) if isinstance(basis.anchor, datetime) \
            else basis.anchor
        for s in calendar.explain(start, rule.sign * rule.offset.amount).skipped:
            skipped.append({"day": s.day.isoformat(), "reason": s.reason})
    moves = []
    for h in history:
        if h.event not in MOVES:
            continue
        moved = (h.changes.get("deadlines") or {}).get(basis.name)
        if isinstance(moved, Mapping):
            moves.append({"event": h.event, "at": h.at.isoformat(), "old": moved.get("old"),
                          "new": moved.get("new"), "reason": moved.get("reason") or h.note})
    named = [s for s in skipped if s["reason"] not in ("Saturday", "Sunday")]
    weekend = len(skipped) - len(named)
    text = (f"{rule.offset} {direction} {rule.anchor} ({_day(basis.anchor, calendar)}, "
            f"entered by {basis.event}) = {_day(basis.due, calendar)}")
    passed = [f"{s['day']} {s['reason']}" for s in named]
    if weekend:
        passed.append(f"{weekend} weekend day{'s' if weekend != 1 else ''}")
    if passed:
        text += "; passed over " + ", ".join(passed)
    if basis.rolled:
        way = "back to the working day before" if basis.rolled_back \
            else "on to the next working day"
        day = "the date"
        if basis.unrolled is not None:
            local = calendar.local_date(basis.unrolled) \
                if isinstance(basis.unrolled, datetime) else basis.unrolled
            why = calendar.reason(local)
            day = f"{local.isoformat()}" + (f" ({why})" if why else "")
        text += f"; {day} is not a working day, so rolled {way}"
    for m in moves:
        text += f"; {m['event']} {m['old']} -> {m['new']}" + (
            f" ({m['reason']})" if m.get("reason") else "")
    return {"anchor": {"kind": str(rule.anchor), "at": _day(basis.anchor, calendar),
                       "entered_at": basis.entered_at.isoformat(), "entered_by": basis.event},
            "duration": f"{rule.offset} {direction}", "due": _day(basis.due, calendar),
            "skipped": skipped, "rolled": basis.rolled, "reprojections": moves, "text": text}


def explain_case(planner: Planner, snap: Snapshot) -> dict[str, dict[str, Any]]:
    """``explain`` for each active deadline of a case, by deadline name."""
    work = work_for(planner, snap)
    out: dict[str, dict[str, Any]] = {}
    for rec in snap.deadlines:
        spec = work.defn.deadline_map.get(rec.info.name)
        if not rec.info.active or spec is None:
            continue
        basis = compute_basis(planner, work, spec)
        if basis is not None:
            out[spec.name] = explain_basis(basis, planner.calendar, snap.history)
    return out


__all__ = ["DeadlineBasis", "compute_basis", "entry_index", "explain_basis", "explain_case",
           "later_maps", "work_for"]
