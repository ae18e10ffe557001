"""Planning: a case as read (a ``Snapshot``) and what happens to it -> the ``Change`` to write.

Pure: planning takes the case, the event, the definition (from the catalogue), the calendar and
the time as values, and returns the change (state, data, history, deadlines, timers, outbox
rows, signals). It writes nothing and holds no unit of work, so it can be tested, explained,
migrated and simulated without a database. Its two reads come in as ``Lookups`` the caller
passes: an IRO's caseload for conditions such as ``caseload('iro_id', data.iro_id) < 70``
(which value is counted is known only once the event's data is merged, and counting every
chair's caseload on every event would cost a query each), and the references already taken
when a signal starts a case (``DS-CH-1``, then ``DS-CH-1-2``). Definitions run on their shared
``transitions`` Machine through a short-lived carrier per call, never ``add_model`` per case.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from icsflow.definitions.expressions import evaluate
from icsflow.definitions.machine import fire as machine_fire
from icsflow.definitions.machine import plain_choice
from icsflow.definitions.model import (
    SYSTEM_ROLE,
    Definition,
    Expr,
    Reaction,
    SignalEmit,
    Transition,
)
from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.catalogue import Catalogue
from icsflow.workflow.context import ContextMaker, days_left, deadline_value
from icsflow.workflow.data import convert, require, to_json_value, to_python
from icsflow.workflow.deadlines import BREACH, CaseWork, DeadlinePlanner
from icsflow.workflow.errors import (
    DefinitionError,
    FieldNotSettable,
    InvalidTransition,
    PermissionDenied,
    ValidationError,
)
from icsflow.workflow.instance import SYSTEM_ACTOR, Actor, DeadlineStatus, HistoryEntry
from icsflow.workflow.logging import get_logger
from icsflow.workflow.outbox_queue import queue
from icsflow.workflow.ports import (
    Change,
    DeadlineUpdate,
    InstanceRecord,
    NewOutbox,
    NewTimer,
    Snapshot,
    TimerRecord,
)

log = get_logger("icsflow.engine")


class Lookups(Protocol):
    """The reads planning may make, passed in by its caller (a unit of work satisfies it):
    an IRO's caseload for a condition, and which references a new case may not take."""

    def count_open(self, definition: str, field_name: str, value: object, *,
                   exclude: str | None = None) -> int:
        """Open cases of ``definition`` holding ``value`` in ``field_name``, the case being
        planned excluded."""
        ...

    def refs_in_use(self, ref: str, *, spells: bool = False) -> set[str]:
        """``ref`` if a case has it, and with ``spells`` its numbered spells (``ref-2``...)."""
        ...


class _Carrier:
    """What the shared machine moves for one call: the state, the role and the conditions."""

    def __init__(self, state: str, role: str, context: dict[str, Any]) -> None:
        self.state = state
        self.role = role
        self.context = context
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.exited_states: list[str] = []
        self.entered_states: list[str] = []
        self.taken: Transition | None = None

    def condition_holds(self, expr: Expr) -> bool:
        try:
            ok = bool(evaluate(expr.text, self.context))
        except Exception as exc:  # noqa: BLE001 - reported as a refused transition
            self.errors.append(f"condition {expr.text!r} could not be evaluated: {exc}")
            return False
        if not ok:
            self.failed.append(expr.text)
        return ok

    def exited(self, state: str) -> None:
        self.exited_states.append(state)

    def entered(self, state: str) -> None:
        self.entered_states.append(state)

    def transitioned(self, transition: Transition) -> None:
        self.taken = transition


class Planner:
    """Plans starts, events, timer firings and signal reactions of one engine's definitions."""

    def __init__(self, catalogue: Catalogue, calendar: WorkingCalendar, *,
                 directory: Mapping[str, Sequence[str]] | None = None,
                 admin_address: str | None = None,
                 settings: Mapping[str, Any] | None = None) -> None:
        self.catalogue = catalogue
        self.calendar = calendar
        self.directory: Mapping[str, Sequence[str]] = {
            k: list(v) if not isinstance(v, str) else [v] for k, v in (directory or {}).items()}
        self.admin_address = admin_address
        self.contexts = ContextMaker(calendar, settings)
        self.deadlines = DeadlinePlanner(calendar, self.contexts)

    # -- starts ---------------------------------------------------------------------------------

    def start(self, defn: Definition, *, ref: str, data: dict[str, Any], actor: Actor,
              at: datetime, now: datetime, child: str | None = None, family: str | None = None,
              note: str | None = None) -> Change:
        """A new case of ``defn``; ``data`` already converted (``data.convert``) and checked."""
        rec = InstanceRecord(id=str(uuid.uuid4()), definition=defn.name,
                             definition_version=defn.version, ref=ref,
                             state=defn.initial, data=data, row_version=1,
                             created_at=now, started_at=at, child=child, family=family)
        change = Change(instance_id=rec.id, expected_version=None, new_instance=rec,
                        recorded_at=now)
        work = CaseWork(defn, rec, defn.initial, dict(data), [], [], [], change)
        entry = HistoryEntry("start", None, defn.initial, actor.id, actor.role, at, now, note,
                             dict(data))
        work.history.append(entry)
        change.history.append(entry)
        self.deadlines.enter(work, set(), at, changed=set(), event="start")
        self.deadlines.state_timers(work, defn.initial, at)
        if defn.is_final(defn.initial):
            change.new_instance = replace(rec, closed_at=at)
        if child is not None and defn.start_signals:
            ctx = self.contexts.make(defn, rec, state=defn.initial, previous=None,
                                     data=to_python(defn, data), infos=work.active_infos(),
                                     history=work.history, event="start", at=at, now=now,
                                     actor=actor, note=note)
            change.signals = signals_sent(defn.start_signals, ctx)
            change.origin = rec
        return change

    # -- events ---------------------------------------------------------------------------------

    def event(self, defn: Definition, snap: Snapshot, event: str, actor: Actor,
              data: Mapping[str, Any], *, note: str | None, at: datetime, now: datetime,
              lookups: Lookups | None = None) -> Change:
        """The change ``event`` makes; ``data``: the event's data, already converted to its
        stored form (``data.convert``) and checked."""
        rec = snap.instance
        state = rec.state
        candidates, allowed = self._candidates(defn, rec, event, actor)
        check_settable(rec.id, event, state, data, candidates, actor.role)
        merged = {**rec.data, **data}
        history = list(snap.history)
        infos = [d.info for d in snap.deadlines]
        ctx: dict[str, Any] | None = None

        def condition_context() -> dict[str, Any]:
            """The context of ``when`` and ``record``, built only for a transition that has
            them (most have neither)."""
            nonlocal ctx
            if ctx is None:
                needed = self.contexts.needed(defn)
                extra: dict[str, Any] | None = None
                if lookups is not None and (needed is None or "caseload" in needed):
                    extra = {"caseload": _caseload(lookups, defn.name, rec.id)}
                ctx = self.contexts.make(defn, rec, state=state, previous=rec.state,
                                         data=to_python(defn, merged), infos=infos,
                                         history=history, event=event, at=at, now=now,
                                         actor=actor, note=note, extra=extra)
            return ctx

        t, exited, entered = self._choose(defn, rec.id, state, event, actor.role, candidates,
                                          allowed, condition_context)
        if data and len(candidates) > 1:  # the union was checked; now the one taken
            check_settable(rec.id, event, state, data, (t,), SYSTEM_ROLE)
        for rule in t.set:
            if rule.required and data.get(rule.name) in (None, ""):
                raise ValidationError(f"event {event!r} needs field {rule.name!r}",
                                      field=rule.name, instance_id=rec.id)
        changed = {k for k, v in data.items() if rec.data.get(k) != v}
        for name, expr in t.record:
            rctx = condition_context()
            rctx["data"] = to_python(defn, merged)
            try:
                value = evaluate(expr.text, rctx)
            except Exception as exc:  # noqa: BLE001 - a definition bug: refuse, write nothing
                raise DefinitionError([f"{expr.source}: record {name!r} ({expr.text}) failed: "
                                       f"{type(exc).__name__}: {exc}"]) from exc
            stored = to_json_value(value)
            if merged.get(name) != stored:
                changed.add(name)
            merged[name] = stored
        return self._transition(defn, snap, t, exited, entered, event, actor, merged, changed,
                                note=note, at=at, now=now)

    def _candidates(self, defn: Definition, rec: InstanceRecord, event: str, actor: Actor,
                    ) -> tuple[tuple[Transition, ...], tuple[str, ...]]:
        """The transitions ``event`` may take from the case's state, and the events allowed
        there; refused when the case is closed, the event not allowed, or the role not."""
        state = rec.state
        if rec.closed_at is not None or defn.is_final(state):
            raise InvalidTransition(instance_id=rec.id, event=event, state=state, closed=True)
        allowed = defn.events_from(state)
        candidates = defn.transitions_for(event, state)
        if not candidates:
            raise InvalidTransition(instance_id=rec.id, event=event, state=state,
                                    allowed=allowed, definition=defn.name,
                                    known=event in defn.events)
        if actor.role != SYSTEM_ROLE and not any(actor.role in t.roles for t in candidates):
            raise PermissionDenied(instance_id=rec.id, event=event, role=actor.role, state=state,
                                   allowed_roles=sorted({r for t in candidates
                                                         for r in t.roles}))
        return candidates, allowed

    def _transition(self, defn: Definition, snap: Snapshot, t: Transition, exited: list[str],
                    entered: list[str], event: str, actor: Actor, merged: dict[str, Any],
                    changed: set[str], *, note: str | None, at: datetime,
                    now: datetime) -> Change:
        """The change of transition ``t`` once chosen, its data merged and recorded."""
        rec = snap.instance
        state = rec.state
        history = list(snap.history)
        new_state = t.to if t.to is not None else state
        change = Change(rec.id, rec.row_version, state=new_state, data=merged, recorded_at=now)
        work = CaseWork(defn, rec, new_state, merged, history, list(snap.deadlines),
                        list(snap.timers), change)
        entry = HistoryEntry(event, state, new_state, actor.id, actor.role, at, now, note,
                             {k: merged.get(k) for k in sorted(changed)})
        work.history.append(entry)
        change.history.append(entry)
        planner = self.deadlines
        planner.meet(work, state, event, at)
        if t.to is not None:
            old_live = {d.name for d in defn.deadlines_live_in(state)}
            planner.leave(work, event, at)
            for s in exited:
                planner.cancel_state_timers(work, s)
            planner.enter(work, old_live, at, changed=changed, event=event)
            for s in entered:
                planner.state_timers(work, s, at)
        else:
            planner.enter(work, {d.name for d in defn.deadlines_live_in(state)}, at,
                          changed=changed, event=event)
        if defn.is_final(new_state):
            change.closed_at = at
            change.cancel_timers.extend(x.id for x in work.timers
                                        if x.id not in change.cancel_timers)
        signalling = bool(t.signals) and rec.child is not None
        pydata = to_python(defn, merged) if signalling or t.notify else {}
        if signalling or t.notify:
            ctx = self.contexts.make(defn, rec, state=new_state, previous=state, data=pydata,
                                     infos=work.active_infos(), history=work.history,
                                     event=event, at=at, now=now, actor=actor, note=note)
            if signalling:
                change.signals = signals_sent(t.signals, ctx)
                change.origin = replace(rec, state=new_state, data=merged)
            if t.notify:
                change.outbox.extend(queue(
                    defn, t.notify, dict(ctx), key=f"{rec.id}:v{rec.row_version + 1}",
                    instance_id=rec.id, directory=self.directory,
                    admin_address=self.admin_address))
        return change

    def _choose(self, defn: Definition, instance_id: str, state: str, event: str, role: str,
                candidates: Sequence[Transition], allowed: Sequence[str],
                condition_context: Callable[[], dict[str, Any]],
                ) -> tuple[Transition, list[str], list[str]]:
        """The transition taken, the states it exits and those it enters. With no condition
        to weigh, ``plain_choice`` (what the machine would take, without firing it); else
        the definition's machine, its conditions evaluated on ``condition_context()``."""
        taken = plain_choice(candidates, role)
        if taken is not None:
            return (taken, [state], [taken.to]) if taken.to is not None else (taken, [], [])
        carrier = _Carrier(state, role, condition_context())
        if not machine_fire(self.catalogue.machine(defn), carrier, event) \
                or carrier.taken is None:
            if carrier.errors:
                raise InvalidTransition(carrier.errors[0], instance_id=instance_id,
                                        event=event, state=state, allowed=allowed)
            raise InvalidTransition(instance_id=instance_id, event=event, state=state,
                                    allowed=allowed,
                                    conditions=list(dict.fromkeys(carrier.failed))
                                    or ["its conditions"])
        taken = carrier.taken
        return (taken, carrier.exited_states or [state],
                carrier.entered_states or ([taken.to] if taken.to is not None else []))

    # -- timers ---------------------------------------------------------------------------------

    def timer(self, snap: Snapshot, t: TimerRecord, now: datetime,
              lookups: Lookups | None = None) -> tuple[Change, str]:
        """What timer ``t`` does when it fires (at its own due time): mark its deadline
        breached, notify, fire its event as the system, repeat. The outcome is ``breached``,
        ``fired`` or ``skipped`` (its event is not allowed any more)."""
        rec = snap.instance
        defn = self.catalogue.definition(rec.definition, rec.definition_version)
        if t.kind == BREACH:
            change = Change(rec.id, rec.row_version, bump_version=False)
            for d in snap.deadlines:
                if d.info.name == t.deadline and d.info.status is DeadlineStatus.LIVE:
                    change.deadline_updates.append(DeadlineUpdate(
                        d.id, status=DeadlineStatus.BREACHED,
                        only_if_status=(DeadlineStatus.LIVE,)))
            return change, "breached"
        timer = next((x for x in defn.timers if x.name == t.name), None)
        if timer is None:
            return Change(rec.id, rec.row_version, bump_version=False), "skipped"
        outbox = self._timer_notices(defn, snap, t, timer.notify, now) if timer.notify else []
        outcome = "fired"
        change = Change(rec.id, rec.row_version, bump_version=False)
        alive = True
        if timer.fire:
            try:
                change = self.event(defn, snap, timer.fire, SYSTEM_ACTOR, {},
                                    note=f"timer {t.name}", at=t.due_at, now=now,
                                    lookups=lookups)
                alive = not any(c == t.id for c in change.cancel_timers)
            except (InvalidTransition, PermissionDenied) as exc:
                outcome = "skipped"
                log.info("timer_skipped", timer_id=t.id, instance_id=rec.id, reason=str(exc))
        change.outbox[:0] = outbox
        if alive and timer.repeat_every is not None and (
                timer.repeat_max is None or t.occurrence + 1 < timer.repeat_max):
            k = t.occurrence + 1
            first = t.first_due_at or t.due_at
            due = self.deadlines.repeat_due(first, timer, k)
            change.new_timers.append(NewTimer(t.name, "timer", due, t.action, t.deadline,
                                              t.state, first, k))
        return change, outcome

    def _timer_notices(self, defn: Definition, snap: Snapshot, t: TimerRecord,
                       notifies: Sequence[Any], now: datetime) -> list[NewOutbox]:
        """The timer's own notifications, with ``deadline`` and ``timer`` in their context."""
        rec = snap.instance
        at = t.due_at
        infos = [d.info for d in snap.deadlines]
        extra: dict[str, Any] = {"timer": t.name}
        dl = next((d for d in reversed(infos) if d.name == t.deadline and d.active), None)
        if dl is not None:
            today = self.calendar.local_date(at)
            extra["deadline"] = {"name": dl.name, "due": deadline_value(dl),
                                 "working_days_left": days_left(self.calendar, today, dl.due)}
        ctx = self.contexts.make(defn, rec, state=rec.state, previous=None,
                                 data=to_python(defn, rec.data), infos=infos,
                                 history=list(snap.history), event=None, at=at, now=now,
                                 actor=SYSTEM_ACTOR, note=None, extra=extra)
        return queue(defn, notifies, ctx, key=f"{rec.id}:timer{t.id}", instance_id=rec.id,
                     directory=self.directory, admin_address=self.admin_address)

    # -- signals between one child's cases --------------------------------------------------------

    def hearing(self, signal: str) -> list[tuple[Definition, Reaction]]:
        """The latest definitions' reactions to ``signal``, in name and written order."""
        return [(defn, r) for defn in self.catalogue.latest_all() for r in defn.reactions
                if r.signal == signal]

    def react(self, defn: Definition, reaction: Reaction, signal: str, origin: InstanceRecord,
              snaps: Sequence[Snapshot], *, at: datetime, now: datetime,
              lookups: Lookups | None = None) -> list[Change]:
        """The changes one reaction makes for one signal (none when its conditions fail)."""
        extra = self._signal_names(signal, origin, snaps, at)
        note = f"signal {signal} from {origin.definition} {origin.id}"
        if reaction.start:
            if extra["cases"].get(defn.name):
                return []  # one open case of a process per child
            base = f"{defn.reference_prefix}-{origin.child}"
            taken = lookups.refs_in_use(base, spells=True) if lookups is not None else set()
            return self._react_start(defn, reaction, signal, origin, extra, at, now, note,
                                     own_reference(base, taken))
        changes: list[Change] = []
        for s in snaps:
            rec = s.instance
            if rec.definition != defn.name or rec.id == origin.id or reaction.fire is None:
                continue
            rdefn = self.catalogue.definition(rec.definition, rec.definition_version)
            if not rdefn.transitions_for(reaction.fire, rec.state):
                continue
            ctx = self.contexts.make(rdefn, rec, state=rec.state, previous=None,
                                     data=to_python(rdefn, rec.data),
                                     infos=[d.info for d in s.deadlines],
                                     history=list(s.history), event=reaction.fire, at=at,
                                     now=now, actor=SYSTEM_ACTOR, note=note, extra=extra)
            if not reaction_holds(reaction, ctx):
                continue
            try:
                changes.append(self.event(rdefn, s, reaction.fire, SYSTEM_ACTOR, {}, note=note,
                                          at=at, now=now, lookups=lookups))
            except (InvalidTransition, PermissionDenied) as exc:
                log.info("signal_skipped", signal=signal, instance_id=rec.id,
                         reason=type(exc).__name__)
                continue
            log.info("signal_fired_event", signal=signal, instance_id=rec.id,
                     event_name=reaction.fire)
        return changes

    def _signal_names(self, signal: str, origin: InstanceRecord, snaps: Sequence[Snapshot],
                      at: datetime) -> dict[str, Any]:
        """``signal``, ``sender`` and ``cases`` for a reaction's conditions and data."""
        sender_defn = self.catalogue.definition(origin.definition, origin.definition_version)
        cases: dict[str, list[dict[str, Any]]] = {n: [] for n in self.catalogue.names()}
        for s in snaps:
            sd = self.catalogue.definition(s.instance.definition, s.instance.definition_version)
            cases.setdefault(s.instance.definition, []).append({
                "id": s.instance.id, "ref": s.instance.ref, "state": s.instance.state,
                "data": to_python(sd, s.instance.data),
                "started_on": self.calendar.local_date(s.instance.started_at)})
        return {"signal": {"name": signal, "date": self.calendar.local_date(at), "at": at,
                           "definition": origin.definition, "instance_id": origin.id,
                           "ref": origin.ref},
                "sender": to_python(sender_defn, origin.data), "cases": cases}

    def _react_start(self, defn: Definition, reaction: Reaction, signal: str,
                     origin: InstanceRecord, extra: Mapping[str, Any], at: datetime,
                     now: datetime, note: str, ref: str) -> list[Change]:
        """A case of ``defn`` the signal starts, if the reaction's conditions hold."""
        pseudo = replace(origin, id="", definition=defn.name, data={})
        ctx = self.contexts.make(defn, pseudo, state=defn.initial, previous=None, data={},
                                 infos=[], history=[], event=signal, at=at, now=now,
                                 actor=SYSTEM_ACTOR, note=note, extra=extra)
        if not reaction_holds(reaction, ctx):
            return []
        values: dict[str, Any] = {}
        for fname, expr in reaction.set:
            try:
                values[fname] = evaluate(expr.text, ctx)
            except Exception as exc:  # noqa: BLE001 - a definition bug: refuse
                raise DefinitionError([f"{expr.source}: set {fname!r} ({expr.text}) "
                                       f"failed: {type(exc).__name__}: {exc}"]) from exc
        converted = convert(defn, {k: v for k, v in values.items() if v is not None})
        require(defn, converted, [f.name for f in defn.data if f.required],
                f"to start {defn.name} on signal {signal}")
        log.info("signal_started_case", signal=signal, definition=defn.name,
                 origin_id=origin.id)
        return [self.start(defn, ref=ref, data=converted, actor=SYSTEM_ACTOR, at=at,
                           now=now, child=origin.child, family=origin.family, note=note)]


def signals_sent(emits: Sequence[SignalEmit], ctx: Mapping[str, Any]) -> list[str]:
    """The signals of ``emits`` whose conditions hold in ``ctx``."""
    sent: list[str] = []
    for s in emits:
        if s.when is not None:
            try:
                if not evaluate(s.when.text, ctx):
                    continue
            except Exception as exc:  # noqa: BLE001 - a definition bug: refuse
                raise DefinitionError([f"{s.when.source}: signal {s.name} condition "
                                       f"{s.when.text!r} failed: {exc}"]) from exc
        sent.append(s.name)
    return sent


def reaction_holds(reaction: Reaction, ctx: Mapping[str, Any]) -> bool:
    for expr in reaction.when:
        try:
            if not evaluate(expr.text, ctx):
                return False
        except Exception as exc:  # noqa: BLE001 - a definition bug: refuse
            raise DefinitionError([f"{expr.source}: reaction condition {expr.text!r} "
                                   f"failed: {type(exc).__name__}: {exc}"]) from exc
    return True


def check_settable(instance_id: str, event: str, state: str, given: Mapping[str, Any],
                   candidates: Sequence[Transition], role: str) -> None:
    """An event carries only the fields its transition ``set:``s: any other field given (an
    address, a stage, the concern) is refused before anything is planned, on every door."""
    if not given:
        return
    allowed: dict[str, None] = {}
    for t in candidates:
        if role == SYSTEM_ROLE or role in t.roles:
            allowed.update((rule.name, None) for rule in t.set)
    extra = [name for name in given if name not in allowed]
    if extra:
        raise FieldNotSettable(instance_id=instance_id, event=event, state=state, fields=extra,
                               allowed=list(allowed))


def own_reference(base: str, taken: set[str]) -> str:
    """A case a signal starts gets a reference of its own: ``base`` (``DS-CH-1``), or for a
    later spell the first free ``base-2``, ``base-3`` ... (never the sender's reference, which
    would make that reference name two cases)."""
    if base not in taken:
        return base
    k = 2
    while f"{base}-{k}" in taken:
        k += 1
    return f"{base}-{k}"


def not_before_last(history: Sequence[HistoryEntry], now: datetime) -> datetime:
    """The later of ``now`` and the case's last event: the time of an event given no time."""
    if not history:
        return now
    last = max(h.at for h in history)
    return last if last > now else now


def _caseload(lookups: Lookups, definition: str, instance_id: str,
              ) -> Callable[[str, object], int]:
    """``caseload(FIELD, VALUE)`` in expressions: how many other open cases of the definition
    have that value in that data field (an IRO's caseload: ``caseload('iro_id', data.iro_id)``)."""
    def caseload(field_name: str, value: object) -> int:
        if value in (None, ""):
            return 0
        return lookups.count_open(definition, str(field_name), value, exclude=instance_id)
    return caseload


__all__ = ["Lookups", "Planner", "check_settable", "not_before_last", "own_reference",
           "reaction_holds", "signals_sent"]
