"""Move open deadlines when the working calendar changes (``icsflow calendar reproject``).

A closure day added in the configuration, an extra working day, or a bank holiday a newer
``holidays`` release knows: each live working-day deadline is counted again from its original
anchor (``explain``) on the calendar as it is now; the ones whose date changes move, their
timers with them, and the case's history records the old date, the new date and the reason
("2011-12-28 Christmas shutdown added"). Deadlines already met or breached never move.

The calendar deadlines were last counted on is kept as a baseline (its settings: closures, extra
days, the ``holidays`` release; and their fingerprint): it names the reason of each move, and
lets the daemon notice at start-up, at the cost of one small read, that the calendar changed
(``calendar_check``) and say how many deadlines would move, without moving any.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.changes.explain import compute_basis, work_for
from icsflow.workflow.changes.migration import (
    change_store,
    movable,
    planned_timers,
    replace_timers,
    show_due,
)
from icsflow.workflow.clock import Clock
from icsflow.workflow.deadlines import CaseWork, deadline_info
from icsflow.workflow.instance import SYSTEM_ACTOR, Actor, HistoryEntry
from icsflow.workflow.planning import Planner
from icsflow.workflow.ports import Change, DeadlineUpdate, Snapshot, Store


class CaseEngine(Protocol):
    """What the start-up check needs of an engine: its planner, store and clock."""

    planner: Planner
    store: Store
    clock: Clock

class Warner(Protocol):
    """Where the start-up check reports: a keyword-style logger's ``warning`` (structlog's)."""

    def warning(self, event: str, **pairs: object) -> object: ...


def calendar_settings(calendar: WorkingCalendar) -> dict[str, Any]:
    """What makes the calendar what it is: country, subdivision, timezone, closure days (with
    names), extra working days and the ``holidays`` release. Small, and cheap to compare."""
    import holidays

    return {"country": getattr(calendar, "_country", "GB"),
            "subdiv": getattr(calendar, "_subdiv", "ENG"), "timezone": calendar.tz.key,
            "closures": {d.isoformat(): n for d, n in sorted(calendar.closures.items())},
            "extra_working_days": sorted(d.isoformat() for d in calendar.extra_working_days),
            "holidays": str(getattr(holidays, "__version__", "?"))}


def fingerprint(settings: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def calendar_of(settings: Mapping[str, Any]) -> WorkingCalendar:
    """The calendar recorded as ``settings`` (bank holidays from the installed release)."""
    return WorkingCalendar(
        closures={date.fromisoformat(d): str(n)
                  for d, n in dict(settings.get("closures") or {}).items()},
        extra_working_days=[date.fromisoformat(d)
                            for d in settings.get("extra_working_days") or []],
        country=str(settings.get("country", "GB")), subdiv=str(settings.get("subdiv", "ENG")),
        timezone=str(settings.get("timezone", "Europe/London")))


def default_settings(calendar: WorkingCalendar) -> dict[str, Any]:
    """With no calendar recorded: the bank holidays alone (no closures, no extra days)."""
    return {**calendar_settings(calendar), "closures": {}, "extra_working_days": []}


@dataclass(frozen=True)
class DeadlineShift:
    """One open deadline that moves: ``old`` -> ``new`` because of ``reason``."""

    instance_id: str
    ref: str
    definition: str
    deadline: str
    old: str
    new: str
    reason: str
    breached_now: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"id": self.instance_id, "ref": self.ref, "definition": self.definition,
                "deadline": self.deadline, "old": self.old, "new": self.new,
                "reason": self.reason, "already_breached": self.breached_now}

    def __str__(self) -> str:
        late = "  (would already be breached)" if self.breached_now else ""
        return (f"{self.ref:<14} {self.definition:<16} {self.deadline:<18} {self.old} -> "
                f"{self.new}  {self.reason}{late}")


@dataclass
class _CaseShift:
    instance_id: str
    change: Change
    timers_added: list[str] = field(default_factory=list)
    timers_cancelled: list[str] = field(default_factory=list)
    outcome: str = "planned"


@dataclass
class ReprojectPlan:
    dry_run: bool
    shifts: list[DeadlineShift] = field(default_factory=list)
    cases: list[_CaseShift] = field(default_factory=list)
    baseline_recorded: bool = False  # False: compared with the bank holidays alone

    def to_json(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "deadlines": [s.to_json() for s in self.shifts],
                "cases": len(self.cases),
                "moved": sum(c.outcome == "moved" for c in self.cases),
                "conflicts": sum(c.outcome == "conflict" for c in self.cases),
                "baseline_recorded": self.baseline_recorded}


def reproject(planner: Planner, store: Store, *, now: datetime, dry_run: bool = False,
              actor: Actor = SYSTEM_ACTOR) -> ReprojectPlan:
    """Plan (and unless ``dry_run`` write) the moves of open deadlines the calendar changed;
    after writing, the current calendar becomes the baseline."""
    changes = change_store(store)
    current = calendar_settings(planner.calendar)
    recorded = changes.calendar_baseline()
    settings = recorded[1] if recorded is not None else default_settings(planner.calendar)
    baseline = _Baseline(settings, current)
    plan = ReprojectPlan(dry_run, baseline_recorded=recorded is not None)
    for snap in changes.open_snapshots():
        case = _plan_case(planner, snap, baseline, actor, now, plan)
        if case is not None:
            plan.cases.append(case)
    if dry_run:
        return plan
    written = changes.apply_each([c.change for c in plan.cases])
    for case, ok in zip(plan.cases, written, strict=False):
        case.outcome = "moved" if ok else "conflict"
    if not any(c.outcome == "conflict" for c in plan.cases):
        changes.save_calendar_baseline(fingerprint(current), current, now)
    return plan


class _Baseline:
    """The recorded calendar, built only when a deadline moves (to name the reason)."""

    def __init__(self, settings: Mapping[str, Any], current: Mapping[str, Any]) -> None:
        self.settings = settings
        self.current = current
        self._calendar: WorkingCalendar | None = None

    def describe(self, calendar: WorkingCalendar, start: date, end: date) -> str:
        if self._calendar is None:
            self._calendar = calendar_of(self.settings)
        said = describe(self._calendar, calendar, start, end)
        if said:
            return said
        before, after = self.settings.get("holidays"), self.current.get("holidays")
        if before != after:
            return f"bank holidays updated (holidays {before} -> {after})"
        return "calendar changed"


def _plan_case(planner: Planner, snap: Snapshot, baseline: _Baseline, actor: Actor,
               now: datetime, plan: ReprojectPlan) -> _CaseShift | None:
    rec = snap.instance
    calendar = planner.calendar
    work = work_for(planner, snap)
    change = Change(rec.id, rec.row_version, recorded_at=now)
    work.change = change
    case = _CaseShift(rec.id, change)
    active = {d.info.name: d for d in snap.deadlines if d.info.active}
    moved: dict[str, dict[str, str]] = {}
    for spec in work.defn.deadlines:
        existing = active.get(spec.name)
        if existing is None or not movable(existing.info, now):
            continue  # met, cancelled or breached (by a tick or by time alone): never moves
        basis = compute_basis(planner, work, spec)
        if basis is None or not (basis.calendar_dependent or spec.name in _chained(work)):
            continue
        info = deadline_info(spec.name, basis.due, calendar, marker=spec.marker)
        work.new_deadlines[spec.name] = info
        if (existing.info.due, existing.info.due_at) == (info.due, info.due_at):
            continue
        start, _ = basis.window(calendar)
        end = max(existing.info.due, info.due)
        reason = baseline.describe(calendar, start, end)
        change.deadline_updates.append(DeadlineUpdate(existing.id, due=info.due,
                                                      due_at=info.due_at))
        pending = [t for t in snap.timers if t.deadline == spec.name]
        replace_timers(change, case, pending, planned_timers(planner, work, info, pending, now))
        old, new = show_due(existing.info), show_due(info)
        moved[spec.name] = {"old": old, "new": new, "reason": reason}
        plan.shifts.append(DeadlineShift(rec.id, rec.ref, rec.definition, spec.name, old, new,
                                         reason, info.due_at <= now))
    if not moved:
        return None
    note = "; ".join(dict.fromkeys(m["reason"] for m in moved.values()))
    change.history.append(HistoryEntry("reprojected", rec.state, rec.state, actor.id,
                                       actor.role, now, now, f"calendar changed: {note}",
                                       {"deadlines": moved}))
    return case


def _chained(work: CaseWork) -> set[str]:
    """Deadlines anchored on another deadline: they move when that one moves."""
    return {d.name for d in work.defn.deadlines
            if any(r.anchor.kind.value == "deadline" and r.anchor.ref in work.new_deadlines
                   for r in d.rules)}


def describe(before: WorkingCalendar, after: WorkingCalendar, start: date, end: date) -> str:
    """The calendar changes inside (start, end], in words: "2011-12-28 Christmas shutdown
    added", "2012-06-04 Spring Bank Holiday removed", "2012-06-09 made a working day"."""
    words = []
    day = start + timedelta(days=1)
    while day <= end:
        was, now = before.reason(day), after.reason(day)
        if was != now:
            key = day.isoformat()
            if now is None:
                words.append(f"{key} made a working day" if was in ("Saturday", "Sunday")
                             else f"{key} {was} removed")
            elif was is None:
                words.append(f"{key} {now} added")
            else:
                words.append(f"{key} {was} now {now}")
        day += timedelta(days=1)
    return ", ".join(words)


def calendar_check(engine: CaseEngine) -> int | None:
    """At daemon start-up: how many open deadlines a changed calendar would move (0 when it
    is unchanged, None when the store cannot tell). Never moves any: an unchanged outcome
    (nothing would move) is recorded as the new baseline, anything else waits for
    ``icsflow calendar reproject``."""
    store = engine.store.changes
    if store is None:
        return None
    current = calendar_settings(engine.planner.calendar)
    recorded = store.calendar_baseline()
    if recorded is not None and recorded[0] == fingerprint(current):
        return 0
    count = len(reproject(engine.planner, engine.store, now=engine.clock.now(),
                          dry_run=True).shifts)
    if count == 0:
        store.save_calendar_baseline(fingerprint(current), current, engine.clock.now())
    return count


def warn_if_calendar_changed(engine: CaseEngine, log: Warner) -> int | None:
    """The daemon's start-up check: log how many open deadlines a changed calendar would move
    and ask for the command; never moves them. A failure here never stops the daemon."""
    try:
        count = calendar_check(engine)
    except Exception as exc:  # noqa: BLE001 - a check, not a job: report and go on
        log.warning("calendar_check_failed", error=type(exc).__name__)
        return None
    if count:
        log.warning("calendar_changed", open_deadlines_to_move=count,
                    action="run `icsflow calendar reproject --dry-run` to see them, then "
                           "`icsflow calendar reproject` to move them")
    return count


__all__ = ["CaseEngine", "DeadlineShift", "ReprojectPlan", "calendar_check", "calendar_of",
           "calendar_settings", "describe", "fingerprint", "reproject",
           "warn_if_calendar_changed"]
