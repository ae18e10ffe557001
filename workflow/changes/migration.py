"""Move open cases to another version of their definition (``icsflow migrate``).

Each case keeps its state, or takes the state a ``--map OLD=NEW`` names; a case whose state the
new version lacks, with no mapping, refuses the whole run before anything is written. Its live
deadlines are counted again under the new rules from their original anchors (``explain``),
deadlines the new version adds are started, ones it drops are cancelled, and timers are replaced
where their times changed. One case is one transaction and gets one ``migrated`` history entry
naming both versions and every deadline that moved. A dry run plans the same and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from icsflow.definitions.model import Definition
from icsflow.workflow.changes.explain import compute_basis, entry_index
from icsflow.workflow.changes.store import ChangeStore
from icsflow.workflow.clock import LONDON
from icsflow.workflow.deadlines import CaseWork, closing
from icsflow.workflow.deadlines import deadline_info as planned_info
from icsflow.workflow.errors import ValidationError, WorkflowError
from icsflow.workflow.instance import (
    SYSTEM_ACTOR,
    Actor,
    DeadlineInfo,
    DeadlineStatus,
    HistoryEntry,
)
from icsflow.workflow.planning import Planner
from icsflow.workflow.ports import (
    Change,
    DeadlineRecord,
    DeadlineUpdate,
    NewTimer,
    Snapshot,
    Store,
    TimerRecord,
)


class MigrationRefused(WorkflowError):
    """The run would need a state mapping (or names one that does not exist): nothing written."""

    def __init__(self, message: str, cases: Sequence[tuple[str, str, str]] = ()) -> None:
        super().__init__(message)
        self.cases = list(cases)  # (instance id, ref, state)


@dataclass(frozen=True)
class DeadlineMove:
    """One deadline of a case: ``action`` moved, added, cancelled (or unchanged, timers only)."""

    name: str
    action: str
    old: str | None
    new: str | None
    breached_now: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "action": self.action, "old": self.old, "new": self.new,
                "already_breached": self.breached_now}

    def __str__(self) -> str:
        late = "  (would already be breached)" if self.breached_now else ""
        if self.action == "added":
            return f"{self.name}: added, due {self.new}{late}"
        if self.action == "cancelled":
            return f"{self.name}: cancelled (was due {self.old})"
        if self.action.startswith("now "):
            return f"{self.name}: {self.new}, {self.action}"
        return f"{self.name}: {self.old} -> {self.new}{late}"


@dataclass
class CasePlan:
    """What moving one case means; ``change`` is what ``apply`` writes."""

    instance_id: str
    ref: str
    from_version: int
    to_version: int
    from_state: str
    to_state: str
    deadlines: list[DeadlineMove] = field(default_factory=list)
    timers_added: list[str] = field(default_factory=list)
    timers_cancelled: list[str] = field(default_factory=list)
    change: Change | None = None
    outcome: str = "planned"  # planned, migrated, conflict

    def to_json(self) -> dict[str, Any]:
        return {"id": self.instance_id, "ref": self.ref, "from_version": self.from_version,
                "to_version": self.to_version, "from_state": self.from_state,
                "to_state": self.to_state, "deadlines": [d.to_json() for d in self.deadlines],
                "timers_added": self.timers_added, "timers_cancelled": self.timers_cancelled,
                "outcome": self.outcome}


@dataclass
class MigrationPlan:
    definition: str
    to_version: int
    dry_run: bool
    cases: list[CasePlan] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"definition": self.definition, "to_version": self.to_version,
                "dry_run": self.dry_run, "cases": [c.to_json() for c in self.cases],
                "migrated": sum(c.outcome == "migrated" for c in self.cases),
                "conflicts": sum(c.outcome == "conflict" for c in self.cases)}


def change_store(store: Store) -> ChangeStore:
    """The store's side of moving running cases (``store.changes``)."""
    changes = store.changes
    if changes is None:
        raise WorkflowError("this store cannot move running cases (no change store)")
    return changes


def migrate(planner: Planner, store: Store, name: str, to_version: int, *, now: datetime,
            where: Sequence[str] = (), mapping: Mapping[str, str] | None = None,
            dry_run: bool = False, actor: Actor = SYSTEM_ACTOR) -> MigrationPlan:
    """Plan (and unless ``dry_run`` apply) moving the open cases of ``name`` to ``to_version``.

    Raises ``MigrationRefused`` (nothing written) when a case's state has no counterpart."""
    target = planner.catalogue.definition(name, to_version)
    renames = dict(mapping or {})
    bad = sorted(new for new in renames.values() if new not in target.state_map)
    if bad:
        raise MigrationRefused(f"--map names state(s) {', '.join(bad)} that {name} v{to_version} "
                               f"does not have; its states: {', '.join(target.state_map)}")
    changes = change_store(store)
    snaps = [s for s in changes.open_snapshots(name)
             if s.instance.definition_version != to_version
             and (not where or s.instance.state in where)]
    unmapped = [(s.instance.id, s.instance.ref, s.instance.state) for s in snaps
                if renames.get(s.instance.state, s.instance.state) not in target.state_map]
    if unmapped:
        states = sorted({st for _, _, st in unmapped})
        listing = ", ".join(f"{ref} ({iid}) in {st}" for iid, ref, st in unmapped)
        raise MigrationRefused(
            f"{name} v{to_version} has no state {', '.join(states)}: give --map "
            f"{states[0]}=NEW_STATE for it; nothing was migrated. Cases: {listing}", unmapped)
    plan = MigrationPlan(name, to_version, dry_run)
    for snap in snaps:
        plan.cases.append(plan_case(planner, snap, target, renames, actor, now))
    if dry_run:
        return plan
    written = changes.apply_each([c.change for c in plan.cases if c.change is not None],
                                 definition_version=to_version)
    for case, ok in zip(plan.cases, written, strict=False):
        case.outcome = "migrated" if ok else "conflict"  # conflict: run the command again
    return plan


def plan_case(planner: Planner, snap: Snapshot, target: Definition,
              renames: Mapping[str, str], actor: Actor, now: datetime) -> CasePlan:
    """One case under ``target``: its state, deadlines recounted, timers replaced."""
    rec = snap.instance
    state = renames.get(rec.state, rec.state)
    change = Change(rec.id, rec.row_version, state=state, recorded_at=now)
    work = CaseWork(target, rec, state, dict(rec.data), list(snap.history),
                    list(snap.deadlines), list(snap.timers), change)
    plan = CasePlan(rec.id, rec.ref, rec.definition_version, target.version, rec.state, state)
    state_map = {rec.state: state} if state != rec.state else {}
    active = _latest_active(snap.deadlines)
    live = {d.name for d in target.deadlines_live_in(state)}
    for spec in target.deadlines_live_in(state):
        existing = active.get(spec.name)
        if existing is not None and not movable(existing.info, now):
            continue  # breached (by a tick, or by time alone) and not yet met: it stays
        basis = compute_basis(planner, work, spec, state_map)
        if basis is None:
            continue
        info = planned_info(spec.name, basis.due, planner.calendar, marker=spec.marker)
        work.new_deadlines[spec.name] = info
        pending = [t for t in snap.timers if t.deadline == spec.name]
        planned = planned_timers(planner, work, info, pending, now)
        if existing is None:
            change.new_deadlines.append(info)
            plan.deadlines.append(DeadlineMove(spec.name, "added", None, show_due(info),
                                               info.due_at <= now))
        elif (existing.info.due, existing.info.due_at) != (info.due, info.due_at):
            change.deadline_updates.append(DeadlineUpdate(
                existing.id, due=info.due, due_at=info.due_at,
                status=info.status if existing.info.marker != spec.marker else None))
            plan.deadlines.append(DeadlineMove(spec.name, "moved", show_due(existing.info),
                                               show_due(info), info.due_at <= now))
        elif existing.info.marker != spec.marker:  # a deadline that became a marker, or back
            change.deadline_updates.append(DeadlineUpdate(existing.id, status=info.status))
            plan.deadlines.append(DeadlineMove(
                spec.name, "now a tracked date" if spec.marker else "now a deadline",
                show_due(existing.info), show_due(info)))
        elif same_timers(pending, planned):
            continue
        replace_timers(change, plan, pending, planned)
    for name, existing in active.items():
        if name in live:
            continue
        change.deadline_updates.append(closing(existing, now, met=False))
        plan.deadlines.append(DeadlineMove(name, "cancelled", show_due(existing.info), None))
        replace_timers(change, plan, [t for t in snap.timers if t.deadline == name], [])
    _state_timers(planner, work, snap.timers, plan, now)
    moved = {d.name: {"old": d.old, "new": d.new, "action": d.action} for d in plan.deadlines}
    note = f"definition {target.name} v{rec.definition_version} -> v{target.version}"
    if state_map:
        note += f"; state {rec.state} -> {state}"
    entry = HistoryEntry("migrated", rec.state, state, actor.id, actor.role, now, now, note,
                         {"from_version": rec.definition_version, "to_version": target.version,
                          "state_map": state_map, "deadlines": moved})
    change.history.append(entry)
    plan.change = change
    return plan


def _latest_active(deadlines: Sequence[DeadlineRecord]) -> dict[str, DeadlineRecord]:
    out: dict[str, DeadlineRecord] = {}
    for d in deadlines:
        if d.info.active:
            out[d.info.name] = d
    return out


def movable(info: DeadlineInfo, now: datetime) -> bool:
    """A deadline a migration or a re-projection may recount: live and not yet past its due
    instant (one past it is breached by time alone, tick or no tick), or a marker."""
    return info.marker or (info.status is DeadlineStatus.LIVE and info.due_at > now)


def show_due(info: DeadlineInfo) -> str:
    return info.due_at.isoformat(timespec="minutes") if info.exact else info.due.isoformat()


def planned_timers(planner: Planner, work: CaseWork, info: DeadlineInfo,
                   pending: Sequence[TimerRecord], now: datetime) -> list[NewTimer]:
    """The deadline's timers under ``work``'s definition, as the engine would create them; a
    reminder whose time has passed is only kept if it had not fired yet (still pending)."""
    scratch = Change(work.rec.id, None)
    planner.deadlines.deadline_timers(work.with_change(scratch), info)
    waiting = {t.name for t in pending}
    return [t for t in scratch.new_timers
            if t.kind != "timer" or t.due_at > now or t.name in waiting]


def same_timers(pending: Sequence[TimerRecord], planned: Sequence[NewTimer]) -> bool:
    return sorted((t.name, t.kind, t.due_at) for t in pending) == sorted(
        (t.name, t.kind, t.due_at) for t in planned)


class TimerNotes(Protocol):
    """Where a dry run lists the timers a change cancels and adds (a migrated case's
    ``CasePlan``, a reprojected case's shift)."""

    timers_added: list[str]
    timers_cancelled: list[str]


def replace_timers(change: Change, plan: TimerNotes, pending: Sequence[TimerRecord],
                   planned: Sequence[NewTimer]) -> None:
    """Cancel ``pending`` and create ``planned``, noting both for the dry run (breach markers,
    internal, are not listed)."""
    for t in pending:
        if t.id not in change.cancel_timers:
            change.cancel_timers.append(t.id)
            if t.kind == "timer":
                plan.timers_cancelled.append(f"{t.name} {_when(t.due_at)}")
    for n in planned:
        change.new_timers.append(n)
        if n.kind == "timer":
            plan.timers_added.append(f"{n.name} {_when(n.due_at)}")


def _when(moment: datetime) -> str:
    return moment.astimezone(LONDON).strftime("%Y-%m-%d %H:%M")


def _state_timers(planner: Planner, work: CaseWork, timers: Sequence[TimerRecord],
                  plan: CasePlan, now: datetime) -> None:
    """Timers of the (new) state, anchored on entering it, replaced when their times differ."""
    pending = [t for t in timers if t.state is not None and t.kind == "timer"]
    scratch = Change(work.rec.id, None)
    idx = entry_index(work.history, (work.state,), {plan.from_state: plan.to_state})
    if work.defn.timers_of_state(work.state):
        at = work.history[idx].at if idx is not None else work.rec.started_at
        planner.deadlines.state_timers(work.with_change(scratch), work.state, at)
    waiting = {t.name for t in pending}
    planned = [t for t in scratch.new_timers if t.due_at > now or t.name in waiting]
    if not same_timers(pending, planned):
        replace_timers(work.change, plan, pending, planned)


def parse_mapping(pairs: Sequence[str]) -> dict[str, str]:
    """``OLD=NEW`` pairs; a malformed one is a ValidationError naming it."""
    out: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise ValidationError(f"--map {pair!r}: expected OLD_STATE=NEW_STATE", field="map")
        out[old.strip()] = new.strip()
    return out


__all__ = ["CasePlan", "DeadlineMove", "MigrationPlan", "MigrationRefused", "migrate",
           "parse_mapping", "plan_case"]
