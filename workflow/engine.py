"""The engine: start cases, fire events, fire due timers; each a single transaction.

A transition is planned in memory from a ``Snapshot`` of the case (row, history, deadlines,
pending timers) into a ``Change``, then written at once by the store, which checks the row's
version (optimistic locking). Definitions run on their shared ``transitions`` Machine through a
short-lived carrier per call, never ``add_model`` per case.
"""

from __future__ import annotations

import builtins
import functools
import heapq
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from icsflow.definitions.expressions import caseload_fields, evaluate
from icsflow.definitions.machine import fire as machine_fire
from icsflow.definitions.machine import plain_choice
from icsflow.definitions.model import (
    SYSTEM_ROLE,
    AnchorKind,
    Deadline,
    Definition,
    Expr,
    Reaction,
    SignalEmit,
    Timer,
    TimerPosition,
    Transition,
)
from icsflow.workflow import limits
from icsflow.workflow.calendar import OutsideCalendar, WorkingCalendar
from icsflow.workflow.clock import Clock, SystemClock
from icsflow.workflow.context import build_context, days_left, deadline_value, names_used
from icsflow.workflow.data import convert, require, to_json_value, to_python
from icsflow.workflow.durations import Roll as DurationRoll
from icsflow.workflow.durations import Unit, apply_duration
from icsflow.workflow.errors import (
    ConcurrencyConflict,
    DefinitionError,
    FieldNotSettable,
    InvalidTransition,
    PermissionDenied,
    ValidationError,
    WorkflowError,
)
from icsflow.workflow.gc_pause import collection_paused
from icsflow.workflow.instance import (
    SYSTEM_ACTOR,
    Actor,
    DeadlineInfo,
    DeadlineStatus,
    HistoryEntry,
    Instance,
    TickResult,
)
from icsflow.workflow.logging import get_logger
from icsflow.workflow.outbox_queue import queue
from icsflow.workflow.ports import (
    Change,
    DeadlineRecord,
    DeadlineUpdate,
    InstanceRecord,
    NewOutbox,
    NewTimer,
    Snapshot,
    Store,
    TimerRecord,
    UnitOfWork,
    default_owner,
)

if TYPE_CHECKING:
    from icsflow.definitions.registry import DefinitionSet

log = get_logger("icsflow.engine")

BREACH = "breach"  # kind of the internal timer that marks a deadline breached
# How long a claimed timer stays leased to its worker. Short, and renewed while a long tick
# works (every third of it), so a dead worker's claims come back within a minute.
TIMER_LEASE = timedelta(seconds=30)
DefinitionsArg = Any  # None | path | list of paths | DefinitionSet | Definition | list of them


def _midnight(d: date, calendar: WorkingCalendar) -> datetime:
    return datetime.combine(d, time(0), tzinfo=calendar.tz)


def breach_instant(due: date | datetime, calendar: WorkingCalendar) -> datetime:
    """A date deadline is met any time on its date: breached from the next local midnight."""
    if isinstance(due, datetime):
        return due
    return _midnight(due + timedelta(days=1), calendar)


_F = TypeVar("_F", bound=Callable[..., Any])


def _dates_door(method: _F) -> _F:
    """A deadline or timer counted past the calendar's range (a long duration from a late
    anchor) refuses the command in one line instead of escaping as a traceback."""
    @functools.wraps(method)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except (OutsideCalendar, OverflowError) as exc:
            raise ValidationError(f"a deadline or timer of this case would fall outside the "
                                  f"supported dates ({limits.RANGE}): {exc}") from None
    return cast(_F, guarded)


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


@dataclass
class _Work:
    """The case as a transition is being planned (mutable, thrown away on error)."""

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


class Engine:
    """Start, fire, read and tick cases of the loaded definitions on one store."""

    def __init__(self, store: Store, definitions: DefinitionSet, *, clock: Clock | None = None,
                 calendar: WorkingCalendar | None = None,
                 directory: Mapping[str, Sequence[str]] | None = None,
                 admin_address: str | None = None, sender: str | None = None,
                 settings: Mapping[str, Any] | None = None, register: bool = True,
                 timer_lease: timedelta = TIMER_LEASE) -> None:
        self.store = store
        # The council's settings definitions may read (``settings.allocation_weekday``).
        self.settings: dict[str, Any] = dict(settings or {})
        self.definitions = definitions
        self.clock: Clock = clock or SystemClock()
        self.calendar = calendar or WorkingCalendar()
        self.directory: Mapping[str, Sequence[str]] = {
            k: list(v) if not isinstance(v, str) else [v] for k, v in (directory or {}).items()}
        self.admin_address = admin_address
        self.sender = sender
        self.lease = timer_lease
        self.max_attempts = 5
        self._kept: dict[tuple[str, int], Definition] = {}  # versions read back from the store
        # Per definition: the context names its expressions and templates read (None: all).
        self._needed: dict[int, tuple[Definition, frozenset[str] | None]] = {}
        limits.check_definitions(list(definitions))
        problems: builtins.list[str] = []
        for defn in definitions if register else ():  # every changed file is named;
            # a read-only engine writes nothing
            try:
                store.register_definition(defn.name, defn.version, defn.content_hash,
                                          _source_text(defn))
            except DefinitionError as exc:
                problems.extend(f"{_version_source(defn)}: {p}" for p in exc.problems)
        if problems:
            raise DefinitionError(problems)
        self._load_kept_versions()
        if register:
            counted = sorted({f for defn in definitions for text, is_template in _texts(defn)
                              for f in caseload_fields(text, expression=not is_template)})
            if counted:
                store.index_counted_fields(counted)

    # -- composition ------------------------------------------------------------------------

    @classmethod
    def open(cls, db: str = "sqlite:///icsflow.db", definitions: DefinitionsArg = None,
             clock: Clock | None = None, calendar: WorkingCalendar | None = None,
             directory: Mapping[str, Sequence[str]] | None = None,
             admin_address: str | None = None, sender: str | None = None,
             migrate: bool | None = None, settings: Mapping[str, Any] | None = None,
             create: bool = True, read_only: bool = False,
             timer_lease: timedelta = TIMER_LEASE) -> Engine:
        """Open (and on SQLite create and migrate) the database and load the definitions.

        ``create=False``: a missing database is ``NoDatabase`` instead of being created.
        ``read_only``: nothing is written (not even the definitions' registration), and a
        read-only SQLite file can be read. ``timer_lease``: how long a tick holds the timers
        it claims (renewed while it works), so how soon a dead worker's timers come back."""
        from icsflow.storage.db import create_db_engine, ensure_schema
        from icsflow.storage.repository import SqlStore

        defs = load_definitions(definitions)
        create = create and not read_only
        sql = create_db_engine(db, create=create, read_only=read_only)
        try:
            ensure_schema(sql, migrate=False if read_only else migrate, create=create)
            return cls(SqlStore(sql), defs, clock=clock, calendar=calendar, directory=directory,
                       admin_address=admin_address, sender=sender, settings=settings,
                       register=not read_only, timer_lease=timer_lease)
        except BaseException:
            sql.dispose()
            raise

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def outbox(self) -> Any:
        """The outbox repository (the dispatcher's side of the queue)."""
        return getattr(self.store, "outbox", None)

    # -- reads ------------------------------------------------------------------------------

    def get(self, instance_id: str) -> Instance:
        return self.store.get(instance_id)

    def find(self, ref: str) -> builtins.list[Instance]:
        """Cases by reference; the reference is normalised as ``start`` stores it."""
        return self.store.find(unicodedata.normalize("NFKC", ref).strip())

    def list(self, definition: str | None = None, state: str | None = None,
             overdue: bool = False, open_only: bool = False, child: str | None = None,
             family: str | None = None) -> list[Instance]:
        return self.store.list(definition=definition, state=state,
                               overdue_at=self.clock.now() if overdue else None,
                               open_only=open_only, child=child, family=family)

    def list_cases(self, definition: str | None = None, state: str | None = None,
                   overdue: bool = False, open_only: bool = False, child: str | None = None,
                   family: str | None = None) -> builtins.list[Instance]:
        """The same as ``list`` (the name the application API uses)."""
        return self.list(definition=definition, state=state, overdue=overdue,
                         open_only=open_only, child=child, family=family)

    def child_cases(self, child: str) -> builtins.list[Instance]:
        """Every case of one child, oldest first (``icsflow child`` builds its timeline)."""
        return self.store.list(child=_identifier(child, "child"))

    def definition(self, name: str, version: int | None = None) -> Definition:
        """A loaded definition; a version no longer in the files is read back from the store
        (cases keep the version they started on)."""
        try:
            if version is None:
                return self.definitions.latest(name)
            return self.definitions.get(name, version)
        except KeyError as exc:
            kept = self._kept.get((name, version)) if version is not None else None
            if kept is not None:
                return kept
            raise DefinitionError([str(exc.args[0]) if exc.args else str(exc)]) from None

    def _load_kept_versions(self) -> None:
        """Versions whose files are gone, from the text stored when they were first used."""
        from icsflow.definitions.errors import DefinitionLoadError
        from icsflow.definitions.loader import load_text

        loaded = {d.key for d in self.definitions}
        for name, version, text in self.store.kept_definitions():
            if (name, version) in loaded:
                continue
            try:
                self._kept[(name, version)] = load_text(text, f"<stored {name} v{version}>")
            except DefinitionLoadError as exc:  # validation rules may have tightened since
                log.warning("stored_definition_unloadable", definition=name, version=version,
                            problems=len(exc.problems))

    # -- commands ---------------------------------------------------------------------------

    @_dates_door
    def start(self, name: str, ref: str, data: Mapping[str, Any] | None, actor: Actor,
              at: datetime | date | None = None, version: int | None = None,
              child: str | None = None, family: str | None = None) -> Instance:
        """Start a case of ``name`` (its latest version unless ``version`` is given), for
        ``child`` (and ``family``): identifiers from the council's case-management system."""
        defn = self.definition(name, version)
        child = _identifier(child, "child") if child is not None else None
        family = _identifier(family, "family") if family is not None else None
        if actor.role not in defn.start_roles:
            raise PermissionDenied(
                f"role {actor.role!r} may not start {defn.name}; allowed roles: "
                f"{', '.join(defn.start_roles) or 'none'}", role=actor.role,
                allowed_roles=defn.start_roles)
        if not ref or not str(ref).strip():
            raise ValidationError("a case reference (--ref) is required", field="ref")
        ref = limits.case_reference(ref)
        actor = _checked_actor(actor)
        converted = convert(defn, data)
        limits.check_data(defn, converted)
        require(defn, converted, [f.name for f in defn.data if f.required],
                f"to start {defn.name}")
        when = self._event_time(at)
        now = self.clock.now()
        change = self._plan_start(defn, str(ref), converted, actor, when, now, child, family)
        with self.store.unit_of_work() as uow:
            _pipeline_writes(uow)
            uow.apply(change)
            self._propagate(uow, change, when, now)
            written = _written(uow, change.instance_id)
        log.info("instance_started", instance_id=change.instance_id, definition=defn.name,
                 ref=str(ref))
        return written if written is not None else self.get(change.instance_id)

    def _plan_start(self, defn: Definition, ref: str, converted: dict[str, Any], actor: Actor,
                    when: datetime, now: datetime, child: str | None, family: str | None,
                    note: str | None = None) -> Change:
        rec = InstanceRecord(id=str(uuid.uuid4()), definition=defn.name,
                             definition_version=defn.version, ref=ref,
                             state=defn.initial, data=converted, row_version=1,
                             created_at=now, started_at=when, child=child, family=family)
        change = Change(instance_id=rec.id, expected_version=None, new_instance=rec,
                        recorded_at=now)
        work = _Work(defn, rec, defn.initial, dict(converted), [], [], [], change)
        entry = HistoryEntry("start", None, defn.initial, actor.id, actor.role, when, now, note,
                             {k: v for k, v in converted.items()})
        work.history.append(entry)
        change.history.append(entry)
        self._enter_deadlines(work, set(), when, changed=set(), event="start")
        self._enter_state_timers(work, defn.initial, when)
        if defn.is_final(defn.initial):
            change.new_instance = replace(rec, closed_at=when)
        if child is not None and defn.start_signals:
            ctx = self._context(defn, rec, defn.initial, None, to_python(defn, converted),
                                work.active_infos(), work.history, "start", when, now, actor,
                                note)
            change.signals = self._signals_sent(defn.start_signals, ctx)
            change.origin = rec
        return change

    # -- signals between one child's cases ----------------------------------------------------

    def _signals_sent(self, emits: Sequence[SignalEmit], ctx: Mapping[str, Any],
                      ) -> builtins.list[str]:
        sent: builtins.list[str] = []
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

    def _propagate(self, uow: UnitOfWork, change: Change, at: datetime, now: datetime, *,
                   depth: int = 0, cache: dict[str, Snapshot] | None = None,
                   owner: str | None = None, lease_until: datetime | None = None,
                   ) -> builtins.list[TimerRecord]:
        """Apply, in the caller's transaction, what the child's other cases do on hearing the
        signals ``change`` sends: start a case, or fire an event as the system. Each reaction's
        history row names its cause; reactions may send signals in turn (validation refuses
        loops; a chain deeper than 8 is refused here all the same)."""
        origin = change.origin
        if not change.signals or origin is None or origin.child is None:
            return []
        if depth >= 8:
            raise DefinitionError([f"signals from {origin.definition} case {origin.id} set "
                                   "off more than 8 reactions in a row; a signal loop?"])
        claimed: builtins.list[TimerRecord] = []
        latest = [self.definitions.latest(n) for n in self.definitions.names()]
        for signal in change.signals:
            for defn in latest:
                for reaction in defn.reactions:
                    if reaction.signal != signal:
                        continue
                    snaps = uow.load_child(origin.child)
                    for sub in self._react(defn, reaction, signal, origin, snaps, at, now,
                                           uow):
                        sub.claim_new_timers_before = change.claim_new_timers_before
                        claimed.extend(uow.apply(sub, owner=owner, lease_until=lease_until))
                        if cache is not None:
                            cache.pop(sub.instance_id, None)
                        claimed.extend(self._propagate(uow, sub, at, now, depth=depth + 1,
                                                       cache=cache, owner=owner,
                                                       lease_until=lease_until))
        return claimed

    def _react(self, defn: Definition, reaction: Reaction, signal: str, origin: InstanceRecord,
               snaps: Sequence[Snapshot], at: datetime, now: datetime,
               uow: UnitOfWork | None = None) -> builtins.list[Change]:
        """The changes one reaction makes for one signal (none when its conditions fail)."""
        sender_defn = self.definition(origin.definition, origin.definition_version)
        cases: dict[str, builtins.list[dict[str, Any]]] = {n: [] for n in
                                                          self.definitions.names()}
        for s in snaps:
            sd = self.definition(s.instance.definition, s.instance.definition_version)
            cases.setdefault(s.instance.definition, []).append({
                "id": s.instance.id, "ref": s.instance.ref, "state": s.instance.state,
                "data": to_python(sd, s.instance.data),
                "started_on": self.calendar.local_date(s.instance.started_at)})
        extra = {"signal": {"name": signal, "date": self.calendar.local_date(at), "at": at,
                            "definition": origin.definition, "instance_id": origin.id,
                            "ref": origin.ref},
                 "sender": to_python(sender_defn, origin.data), "cases": cases}
        note = f"signal {signal} from {origin.definition} {origin.id}"
        if reaction.start:
            if cases.get(defn.name):
                return []  # one open case of a process per child
            pseudo = replace(origin, id="", definition=defn.name, data={})
            ctx = self._context(defn, pseudo, defn.initial, None, {}, [], [], signal, at, now,
                                SYSTEM_ACTOR, note, extra)
            if not self._reaction_holds(reaction, ctx):
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
            return [self._plan_start(defn, origin.ref, converted, SYSTEM_ACTOR, at, now,
                                     origin.child, origin.family, note)]
        changes: builtins.list[Change] = []
        for s in snaps:
            rec = s.instance
            if rec.definition != defn.name or rec.id == origin.id or reaction.fire is None:
                continue
            rdefn = self.definition(rec.definition, rec.definition_version)
            if not rdefn.transitions_for(reaction.fire, rec.state):
                continue
            ctx = self._context(rdefn, rec, rec.state, None, to_python(rdefn, rec.data),
                                [d.info for d in s.deadlines], list(s.history), reaction.fire,
                                at, now, SYSTEM_ACTOR, note, extra)
            if not self._reaction_holds(reaction, ctx):
                continue
            try:
                changes.append(self._plan_event(rdefn, s, reaction.fire, SYSTEM_ACTOR, {},
                                                note, at, now, uow))
            except (InvalidTransition, PermissionDenied) as exc:
                log.info("signal_skipped", signal=signal, instance_id=rec.id,
                         reason=type(exc).__name__)
                continue
            log.info("signal_fired_event", signal=signal, instance_id=rec.id,
                     event_name=reaction.fire)
        return changes

    @staticmethod
    def _reaction_holds(reaction: Reaction, ctx: Mapping[str, Any]) -> bool:
        for expr in reaction.when:
            try:
                if not evaluate(expr.text, ctx):
                    return False
            except Exception as exc:  # noqa: BLE001 - a definition bug: refuse
                raise DefinitionError([f"{expr.source}: reaction condition {expr.text!r} "
                                       f"failed: {type(exc).__name__}: {exc}"]) from exc
        return True

    @_dates_door
    def fire(self, instance_id: str, event: str, actor: Actor,
             data: Mapping[str, Any] | None = None, note: str | None = None,
             at: datetime | date | None = None,
             expected_version: int | None = None) -> Instance:
        """Fire ``event`` as ``actor``; ``expected_version`` (the ``row_version`` read) makes a
        stale write a ``ConcurrencyConflict`` instead of acting on newer state."""
        if actor.role == SYSTEM_ROLE:
            raise PermissionDenied(f"role {SYSTEM_ROLE!r} is reserved for timers",
                                   instance_id=instance_id, event=event, role=actor.role)
        actor = _checked_actor(actor)
        if note is not None:
            limits.check_text(note, "note", instance_id=instance_id)
        when = self._event_time(at)
        with self.store.unit_of_work() as uow:
            _pipeline_writes(uow)
            snap = uow.load(instance_id)
            if at is None:  # an implicit now is never "backdated": another server's clock,
                when = _not_before_last(snap.history, when)  # a few ms ahead, wrote the last
            limits.check_event_order(snap.history, when, instance_id)
            if expected_version is not None and snap.instance.row_version != expected_version:
                raise ConcurrencyConflict(
                    f"instance {instance_id} changed since version {expected_version} was read "
                    f"(now {snap.instance.row_version}); read it again and retry",
                    instance_id=instance_id)
            defn = self.definition(snap.instance.definition, snap.instance.definition_version)
            converted = convert(defn, data)
            limits.check_data(defn, converted, instance_id)
            now = self.clock.now()
            change = self._plan_event(defn, snap, event, actor, converted, note, when, now, uow)
            uow.apply(change)
            self._propagate(uow, change, when, now)
            written = _written(uow, instance_id)
        log.info("event_fired", instance_id=instance_id, event_name=event, role=actor.role)
        return written if written is not None else self.get(instance_id)

    # -- change: move running cases (workflow.migration, workflow.reproject) ----------------

    def migrate(self, name: str, to_version: int, *, where: Sequence[str] = (),
                mapping: Mapping[str, str] | None = None, dry_run: bool = False,
                actor: Actor = SYSTEM_ACTOR) -> Any:
        """Move open cases of ``name`` to ``to_version`` (a ``MigrationPlan``); see
        ``workflow.migration``."""
        from icsflow.workflow.migration import migrate

        return migrate(self, name, to_version, where=where, mapping=mapping, dry_run=dry_run,
                       actor=actor)

    def reproject(self, *, dry_run: bool = False, actor: Actor = SYSTEM_ACTOR) -> Any:
        """Move open working-day deadlines the calendar changed (a ``ReprojectPlan``)."""
        from icsflow.workflow.reproject import reproject

        return reproject(self, dry_run=dry_run, actor=actor)

    def explain(self, instance_id: str) -> dict[str, dict[str, Any]]:
        """Why each active deadline of a case falls on its date, by deadline name."""
        from icsflow.workflow.explain import explain_case

        with self.store.unit_of_work() as uow:
            snap = uow.load(instance_id)
        return explain_case(self, snap)

    # -- timers -----------------------------------------------------------------------------

    def tick(self, now: datetime | None = None, *, batch_size: int = 500,
             commit_every: int = 500, owner: str | None = None) -> TickResult:
        """Fire every timer due by ``now`` exactly once, in due order, each recorded at its own
        due time; timers a firing creates that are already due fire in the same tick.

        Within one case timers fire in due order whoever claims them: a timer whose case has an
        earlier pending timer leased to another worker waits (it is not claimed, or is given
        back), and an earlier one whose lease ran out is taken over and fired first."""
        now = now or self.clock.now()
        limits.check_date(now, "now")
        owner = owner or default_owner()
        result = TickResult()
        heap: builtins.list[tuple[datetime, int, TimerRecord]] = []
        stalled = 0
        while True:
            claimed = self.store.claim_due_timers(now, owner, self.clock.now() + self.lease,
                                                  batch_size, clock_now=self.clock.now())
            for t in claimed:
                heapq.heappush(heap, (t.due_at, t.id, t))
            if not heap:
                break
            before = _progress(result)
            horizon = claimed[-1].due_at if len(claimed) >= batch_size else now
            with collection_paused(), self.store.unit_of_work() as uow:
                # Read the batch's cases up front (four queries, not four per firing). A cached
                # snapshot is used once; a stale one fails the version check and is re-read.
                cache = uow.load_many([t.instance_id for t in claimed]) if len(claimed) > 1 \
                    else {}
                renewed = self.clock.now()
                while heap and heap[0][0] <= horizon:
                    if commit_every > 1:
                        self._fire_batch(uow, heap, horizon, commit_every, now, owner, result,
                                         cache)
                    else:
                        self._fire_one_by_one(uow, heap, horizon, 1, now, owner, result, cache)
                    if heap and self.clock.now() - renewed >= self.lease / 3:
                        renewed = self._renew(uow, heap, owner)
            # Claims stop when nothing is left to claim (a firing may free a later timer of
            # its case); a round where every claimed timer had to wait ends the tick.
            stalled = stalled + 1 if _progress(result) == before else 0
            if stalled >= 2:
                break
        if result.fired or result.failed or result.breached:
            log.info("timers_fired", **result.as_dict())
        return result

    def _renew(self, uow: UnitOfWork,
               heap: builtins.list[tuple[datetime, int, TimerRecord]], owner: str) -> datetime:
        """Renew the lease of the timers this tick still holds, so none is taken over while a
        long tick works on (a dead worker's leases are not renewed and run out)."""
        renewed = self.clock.now()
        uow.extend_claims([t.id for _, _, t in heap], owner, renewed + self.lease)
        uow.commit()
        return renewed

    def _fire_batch(self, uow: UnitOfWork, heap: builtins.list[tuple[datetime, int, TimerRecord]],
                    horizon: datetime, size: int, now: datetime, owner: str, result: TickResult,
                    cache: dict[str, Snapshot]) -> None:
        """Fire up to ``size`` due timers from ``heap`` in one transaction, optimistically: no
        savepoint per firing. If any firing (or the commit) fails, roll the whole transaction
        back, put the heap, the counts and the cached snapshots back as they were before it, and
        redo the same firings one per transaction, where a failure is recorded per timer."""
        saved_heap = list(heap)  # a copy of a heap is still a heap
        saved_result = replace(result, extra=dict(result.extra))
        fired: builtins.list[str] = []  # instance ids whose cached snapshot this batch used
        try:
            _deferring(uow, True)
            k = 0
            while k < size and heap and heap[0][0] <= horizon:
                _, _, timer = heapq.heappop(heap)
                fired.append(timer.instance_id)
                for new in self._fire_once(uow, timer, now, owner, result, cache):
                    heapq.heappush(heap, (new.due_at, new.id, new))
                k += 1
            uow.commit()
            return
        except Exception as exc:  # noqa: BLE001 - redo the batch one firing per transaction
            uow.rollback()
            log.info("timer_batch_redo", firings=len(fired), error=type(exc).__name__)
        finally:
            _deferring(uow, False)
        # Nothing of the attempt survives: timers it created (cascades) are gone from the
        # database, so they leave the heap too; the counts go back; snapshots it used (popped)
        # or that it may have read around are read again. The claims were committed by
        # claim_due_timers in their own transaction, so the rollback kept them: renew the
        # lease so that no other worker takes them while the batch is redone.
        heap[:] = saved_heap
        _restore(result, saved_result)
        for iid in fired:
            cache.pop(iid, None)
        batch = heapq.nsmallest(size, heap)
        uow.extend_claims([t.id for _, _, t in heap], owner, self.clock.now() + self.lease)
        cache.update(uow.load_many(list(dict.fromkeys(t.instance_id for _, _, t in batch))))
        uow.commit()
        self._fire_one_by_one(uow, heap, horizon, size, now, owner, result, cache)

    def _fire_one_by_one(self, uow: UnitOfWork,
                         heap: builtins.list[tuple[datetime, int, TimerRecord]],
                         horizon: datetime, size: int, now: datetime, owner: str,
                         result: TickResult, cache: dict[str, Snapshot]) -> None:
        """Fire up to ``size`` due timers from ``heap``, committing each firing."""
        k = 0
        while k < size and heap and heap[0][0] <= horizon:
            _, _, timer = heapq.heappop(heap)
            for new in self._fire_timer(uow, timer, now, owner, result, cache):
                heapq.heappush(heap, (new.due_at, new.id, new))
            uow.commit()
            k += 1

    def _fire_once(self, uow: UnitOfWork, t: TimerRecord, now: datetime, owner: str,
                   result: TickResult, cache: dict[str, Snapshot] | None = None,
                   ) -> builtins.list[TimerRecord]:
        """One firing's reads and writes, in the caller's transaction; raises on any failure
        (the caller rolls back). Returns the timers to push on the tick's heap: the new timers
        already due by ``now`` (pre-claimed), or an earlier timer of the case taken over from a
        dead worker with ``t`` itself (fired after it)."""
        cached = cache.pop(t.instance_id, None) if cache is not None else None
        real_now = self.clock.now()
        snap = cached if cached is not None else uow.load(t.instance_id)
        earlier = [x for x in snap.timers if x.id != t.id and (x.due_at, x.id) < (t.due_at, t.id)]
        if earlier:
            return self._before(uow, t, earlier, owner, real_now, result)
        if not uow.take_timer(t.id, owner, real_now, "fired"):
            return []
        snap = Snapshot(snap.instance, snap.history, snap.deadlines,
                        tuple(x for x in snap.timers if x.id != t.id))
        change, outcome = self._plan_timer(snap, t, real_now, uow)
        change.claim_new_timers_before = now
        change.recorded_at = real_now
        new = uow.apply(change, owner=owner, lease_until=real_now + self.lease)
        if change.signals:
            new.extend(self._propagate(uow, change, t.due_at, real_now, cache=cache,
                                       owner=owner, lease_until=real_now + self.lease))
        if outcome != "fired":
            uow.set_outcome(t.id, outcome)
        if outcome == "breached":
            result.breached += 1
        elif outcome == "skipped":
            result.skipped += 1
        else:
            result.fired += 1
        result.queued += len(change.outbox)
        return new

    def _before(self, uow: UnitOfWork, t: TimerRecord, earlier: Sequence[TimerRecord],
                owner: str, real_now: datetime, result: TickResult,
                ) -> builtins.list[TimerRecord]:
        """``t``'s case has pending timers due before it: take over those whose lease ran out
        (a dead worker's) to fire them first; if any is still leased, ``t`` waits, given back."""
        free = [x.id for x in earlier
                if x.claimed_by is None or x.claim_expires_at is None
                or x.claim_expires_at < real_now]
        taken = uow.take_over_timers(free, owner, real_now + self.lease, real_now) \
            if free else []
        if len(taken) == len(earlier):
            result.extra["taken_over"] = result.extra.get("taken_over", 0) + len(taken)
            return [*taken, t]
        uow.release_timers([t.id], owner)
        result.extra["waited"] = result.extra.get("waited", 0) + 1
        log.info("timer_waits", timer_id=t.id, instance_id=t.instance_id, timer=t.name,
                 earlier=len(earlier) - len(taken))
        return taken

    def _fire_timer(self, uow: UnitOfWork, t: TimerRecord, now: datetime, owner: str,
                    result: TickResult, cache: dict[str, Snapshot] | None = None,
                    ) -> builtins.list[TimerRecord]:
        """One firing in its own transaction (the caller commits after it): retried on a
        conflict, and on an error recorded on the timer (backoff, then ``failed``)."""
        error = ""
        for _attempt in range(3):
            try:
                with _undo_on_error(uow):
                    return self._fire_once(uow, t, now, owner, result, cache)
            except ConcurrencyConflict as exc:
                error = str(exc)
                continue
            except WorkflowError as exc:
                error = str(exc)
                break
            except Exception as exc:  # noqa: BLE001 - one bad firing must not stop the others
                if _is_db_contention(exc):
                    error = str(exc).splitlines()[0]
                    continue
                error = f"{type(exc).__name__}: {exc}"
                break
        else:
            result.conflicts += 1
            uow.timer_failed(t.id, owner, error, self.clock.now() + timedelta(seconds=1),
                             give_up=False)
            return []
        give_up = t.attempts + 1 >= self.max_attempts
        uow.timer_failed(t.id, owner, error,
                         self.clock.now() + timedelta(seconds=30 * 2 ** t.attempts), give_up)
        result.failed += 1
        log.warning("timer_failed", timer_id=t.id, instance_id=t.instance_id, timer=t.name,
                    error=error, gave_up=give_up)
        return []

    def _plan_timer(self, snap: Snapshot, t: TimerRecord, real_now: datetime,
                    uow: UnitOfWork | None = None) -> tuple[Change, str]:
        rec = snap.instance
        defn = self.definition(rec.definition, rec.definition_version)
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
        at = t.due_at
        outbox: builtins.list[NewOutbox] = []
        if timer.notify:  # the timer's own context serves only its notifications
            infos = [d.info for d in snap.deadlines]
            extra: dict[str, Any] = {"timer": t.name}
            dl = next((d for d in reversed(infos) if d.name == t.deadline and d.active), None)
            if dl is not None:
                today = self.calendar.local_date(at)
                extra["deadline"] = {"name": dl.name, "due": deadline_value(dl),
                                     "working_days_left": days_left(self.calendar, today,
                                                                    dl.due)}
            ctx = self._context(defn, rec, rec.state, None, to_python(defn, rec.data), infos,
                                list(snap.history), None, at, real_now, SYSTEM_ACTOR, None,
                                extra)
            outbox = queue(defn, timer.notify, ctx, key=f"{rec.id}:timer{t.id}",
                           instance_id=rec.id, directory=self.directory,
                           admin_address=self.admin_address)
        outcome = "fired"
        change = Change(rec.id, rec.row_version, bump_version=False)
        alive = True
        if timer.fire:
            try:
                change = self._plan_event(defn, snap, timer.fire, SYSTEM_ACTOR, {},
                                          f"timer {t.name}", at, real_now, uow)
                alive = not any(c == t.id for c in change.cancel_timers)
            except (InvalidTransition, PermissionDenied) as exc:
                outcome = "skipped"
                log.info("timer_skipped", timer_id=t.id, instance_id=rec.id, reason=str(exc))
        change.outbox[:0] = outbox
        if alive and timer.repeat_every is not None and (
                timer.repeat_max is None or t.occurrence + 1 < timer.repeat_max):
            k = t.occurrence + 1
            first = t.first_due_at or t.due_at
            due = self._repeat_due(first, timer, k)
            change.new_timers.append(NewTimer(t.name, "timer", due, t.action, t.deadline,
                                              t.state, first, k))
        return change, outcome

    def _repeat_due(self, first: datetime, timer: Timer, k: int) -> datetime:
        every = timer.repeat_every
        assert every is not None
        from icsflow.definitions.durations import Duration

        total = Duration(every.amount * k, every.unit)
        if every.unit is Unit.HOURS:
            return _as_datetime(apply_duration(first, total, self.calendar), self.calendar)
        anchor = self.calendar.local_date(first)
        return _as_datetime(apply_duration(anchor, total, self.calendar), self.calendar)

    # -- planning a transition ----------------------------------------------------------------

    def _plan_event(self, defn: Definition, snap: Snapshot, event: str, actor: Actor,
                    converted: Mapping[str, Any], note: str | None, at: datetime,
                    now: datetime, uow: UnitOfWork | None = None) -> Change:
        """The change ``event`` makes; ``converted``: the event's data, already converted to
        its stored form (``data.convert``) and checked."""
        rec = snap.instance
        state = rec.state
        if rec.closed_at is not None or defn.is_final(state):
            raise InvalidTransition(
                f"instance {rec.id} is closed (state {state!r} is final): no event may be fired",
                instance_id=rec.id, event=event, state=state)
        allowed = defn.events_from(state)
        candidates = defn.transitions_for(event, state)
        if not candidates:
            what = "unknown event" if event not in defn.events else "event"
            raise InvalidTransition(
                f"{what} {event!r} is not allowed in state {state!r} of {defn.name}; allowed "
                f"events: {', '.join(allowed) or 'none'}", instance_id=rec.id, event=event,
                state=state, allowed=allowed)
        if actor.role != SYSTEM_ROLE and not any(actor.role in t.roles for t in candidates):
            roles = sorted({r for t in candidates for r in t.roles})
            hint = (f"allowed roles: {', '.join(roles)}" if roles
                    else "only a timer fires it")
            raise PermissionDenied(f"role {actor.role!r} may not fire {event!r} in state "
                                   f"{state!r}; {hint}", instance_id=rec.id, event=event,
                                   role=actor.role, allowed_roles=roles)
        _check_settable(rec.id, event, state, converted, candidates, actor.role)
        merged = {**rec.data, **converted}
        history = list(snap.history)
        infos = [d.info for d in snap.deadlines]
        ctx: dict[str, Any] | None = None

        def condition_context() -> dict[str, Any]:
            """The context of ``when`` and ``record``, built only for a transition that has
            them (most have neither)."""
            nonlocal ctx
            if ctx is None:
                needed = self._names_needed(defn)
                extra: dict[str, Any] | None = None
                if uow is not None and (needed is None or "caseload" in needed):
                    extra = {"caseload": _caseload(uow, defn.name, rec.id)}
                ctx = self._context(defn, rec, state, rec.state, to_python(defn, merged), infos,
                                    history, event, at, now, actor, note, extra)
            return ctx

        t, exited, entered = self._choose(defn, rec.id, state, event, actor.role, candidates,
                                          allowed, condition_context)
        if converted and len(candidates) > 1:  # the union was checked; now the one taken
            _check_settable(rec.id, event, state, converted, (t,), SYSTEM_ROLE)
        for rule in t.set:
            if rule.required and converted.get(rule.name) in (None, ""):
                raise ValidationError(f"event {event!r} needs field {rule.name!r}",
                                      field=rule.name, instance_id=rec.id)
        changed = {k for k, v in converted.items() if rec.data.get(k) != v}
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
        new_state = t.to if t.to is not None else state
        change = Change(rec.id, rec.row_version, state=new_state, data=merged, recorded_at=now)
        work = _Work(defn, rec, new_state, merged, history, list(snap.deadlines),
                     list(snap.timers), change)
        entry = HistoryEntry(event, state, new_state, actor.id, actor.role, at, now, note,
                             {k: merged.get(k) for k in sorted(changed)})
        work.history.append(entry)
        change.history.append(entry)
        self._meet_deadlines(work, state, event, at)
        if t.to is not None:
            old_live = {d.name for d in defn.deadlines_live_in(state)}
            self._leave_deadlines(work, event, at)
            for s in exited:
                self._cancel_state_timers(work, s)
            self._enter_deadlines(work, old_live, at, changed=changed, event=event)
            for s in entered:
                self._enter_state_timers(work, s, at)
        else:
            self._enter_deadlines(work, {d.name for d in defn.deadlines_live_in(state)}, at,
                                  changed=changed, event=event)
        if defn.is_final(new_state):
            change.closed_at = at
            change.cancel_timers.extend(x.id for x in work.timers
                                        if x.id not in change.cancel_timers)
        signalling = bool(t.signals) and rec.child is not None
        pydata = to_python(defn, merged) if signalling or t.notify else {}
        if signalling:
            sctx = self._context(defn, rec, new_state, state, pydata,
                                 work.active_infos(), work.history, event, at, now, actor, note)
            change.signals = self._signals_sent(t.signals, sctx)
            change.origin = replace(rec, state=new_state, data=merged)
        if t.notify:
            nctx = self._context(defn, rec, new_state, state, pydata,
                                 work.active_infos(), work.history, event, at, now, actor, note)
            change.outbox.extend(queue(
                defn, t.notify, nctx, key=f"{rec.id}:v{rec.row_version + 1}",
                instance_id=rec.id, directory=self.directory, admin_address=self.admin_address))
        return change

    def _choose(self, defn: Definition, instance_id: str, state: str, event: str, role: str,
                candidates: Sequence[Transition], allowed: Sequence[str],
                condition_context: Callable[[], dict[str, Any]],
                ) -> tuple[Transition, builtins.list[str], builtins.list[str]]:
        """The transition taken, the states it exits and those it enters. With no condition
        to weigh, ``plain_choice`` (what the machine would take, without firing it); else
        the definition's machine, its conditions evaluated on ``condition_context()``."""
        taken = plain_choice(candidates, role)
        if taken is not None:
            return (taken, [state], [taken.to]) if taken.to is not None else (taken, [], [])
        carrier = _Carrier(state, role, condition_context())
        if not machine_fire(self.definitions.machine(defn), carrier, event) \
                or carrier.taken is None:
            if carrier.errors:
                raise InvalidTransition(carrier.errors[0], instance_id=instance_id,
                                        event=event, state=state, allowed=allowed)
            failed = " and ".join(dict.fromkeys(carrier.failed)) or "its conditions"
            raise InvalidTransition(
                f"event {event!r} is not allowed now: condition {failed} is false",
                instance_id=instance_id, event=event, state=state, allowed=allowed)
        taken = carrier.taken
        return (taken, carrier.exited_states or [state],
                carrier.entered_states or ([taken.to] if taken.to is not None else []))

    def _meet_deadlines(self, work: _Work, state: str, event: str, at: datetime) -> None:
        """Deadlines live in ``state`` that ``event`` meets (``met_by``) are met (or closed
        late) here, even if the case stays in their live set; a later change of their anchor
        field starts the next one."""
        met: dict[int, DeadlineRecord] = {}
        for rec in work.deadlines:
            spec = work.defn.deadline_map.get(rec.info.name)
            if (not rec.info.active or spec is None or event not in spec.met_by
                    or state not in spec.live_in):
                continue
            verdict = _verdict(rec.info, at)  # late even if no breach timer fired yet
            work.change.deadline_updates.append(
                DeadlineUpdate(rec.id, status=verdict, met_at=at))
            self._cancel_deadline_timers(work, rec.info.name)
            met[rec.id] = DeadlineRecord(rec.id, replace(rec.info, status=verdict, met_at=at))
        if met:
            work.deadlines = [met.get(r.id, r) for r in work.deadlines]

    def _leave_deadlines(self, work: _Work, event: str, at: datetime) -> None:
        """Deadlines no longer live in the new state are met, or cancelled by an event in their
        ``cancelled_by`` (a case that ends early never counts as met). One with ``met_by`` is
        met only by those events: leaving its live states otherwise cancels it. Met or
        breached is a function of ``at`` (when the answer happened) against the breach
        instant, whichever worker fired the breach timer first, if any did."""
        live = {d.name for d in work.defn.deadlines_live_in(work.state)}
        for rec in work.deadlines:
            info = rec.info
            if not info.active or info.name in live:
                continue
            spec = work.defn.deadline_map.get(info.name)
            if info.status is DeadlineStatus.BREACHED:  # closed at ``at``
                upd = DeadlineUpdate(rec.id, status=_verdict(info, at), met_at=at)
            elif spec is not None and (event in spec.cancelled_by
                                       or (spec.met_by and event not in spec.met_by)):
                upd = DeadlineUpdate(rec.id, status=DeadlineStatus.CANCELLED, met_at=None)
            else:
                upd = DeadlineUpdate(rec.id, status=_verdict(info, at), met_at=at)
            work.change.deadline_updates.append(upd)
            self._cancel_deadline_timers(work, info.name)

    def _cancel_deadline_timers(self, work: _Work, name: str) -> None:
        for t in work.timers:
            if t.deadline == name and t.id not in work.change.cancel_timers:
                work.change.cancel_timers.append(t.id)

    def _cancel_state_timers(self, work: _Work, state: str) -> None:
        for t in work.timers:
            if t.state == state and t.kind == "timer" and t.id not in work.change.cancel_timers:
                work.change.cancel_timers.append(t.id)

    def _enter_deadlines(self, work: _Work, old_live: set[str], at: datetime, *,
                         changed: set[str], event: str) -> None:
        """Compute deadlines entering the live set, and recompute live ones whose anchor field
        changed; each gets its breach timer and the definition's timers."""
        defn = work.defn
        active = {r.info.name: r for r in work.deadlines if r.info.active}
        for spec in defn.deadlines_live_in(work.state):
            existing = active.get(spec.name)
            fields = {r.anchor.ref for r in spec.rules if r.anchor.kind is AnchorKind.FIELD}
            entering = spec.name not in old_live
            if existing is not None and not entering and not (fields & changed):
                continue
            if not entering and existing is None and not (fields & changed):
                continue
            due = self._compute_due(work, spec, at, event)
            if due is None:
                continue
            exact = isinstance(due, datetime)
            due_date = self.calendar.local_date(due) if isinstance(due, datetime) else due
            info = DeadlineInfo(spec.name, due_date, breach_instant(due, self.calendar),
                                DeadlineStatus.LIVE, exact)
            if existing is not None and not entering and spec.met_by:
                # A deadline met only by its events (minutes) whose anchor moved (a new
                # meeting): the old one stays as it was (breached, or cancelled if still
                # live) and the new one is a row of its own.
                if existing.info.due == info.due and existing.info.due_at == info.due_at:
                    continue
                late = existing.info.status is DeadlineStatus.BREACHED
                work.change.deadline_updates.append(
                    DeadlineUpdate(existing.id, met_at=at) if late
                    else DeadlineUpdate(existing.id, status=DeadlineStatus.CANCELLED))
                self._cancel_deadline_timers(work, spec.name)
                existing = None
            elif existing is not None and not entering:
                if existing.info.due == info.due and existing.info.due_at == info.due_at:
                    continue
                work.change.deadline_updates.append(DeadlineUpdate(
                    existing.id, status=DeadlineStatus.LIVE, due=info.due, due_at=info.due_at))
                self._cancel_deadline_timers(work, spec.name)
            elif existing is not None and entering:  # stale row (defensive): close it
                work.change.deadline_updates.append(DeadlineUpdate(
                    existing.id, status=DeadlineStatus.CANCELLED))
                self._cancel_deadline_timers(work, spec.name)
            if existing is None or entering:
                work.change.new_deadlines.append(info)
            work.new_deadlines[spec.name] = info
            self._deadline_timers(work, info)

    def _compute_due(self, work: _Work, spec: Deadline, at: datetime,
                     event: str) -> date | datetime | None:
        chosen = self._choose_rule(work, spec, at, event)
        if chosen is None:
            return None
        rule, anchor = chosen
        roll = DurationRoll(spec.roll.value) if spec.roll is not None else None
        return apply_duration(anchor, rule.offset, self.calendar, sign=rule.sign, roll=roll)

    def _choose_rule(self, work: _Work, spec: Deadline, at: datetime,
                     event: str) -> tuple[Any, date | datetime] | None:
        """The first rule of ``spec`` whose condition holds, with its anchor (or None): one
        choice for planning and for ``explain``, so the two can never disagree."""
        defn = work.defn
        pydata = to_python(defn, work.data)
        ctx: dict[str, Any] | None = None
        for rule in spec.rules:
            if rule.when is not None:
                if ctx is None:
                    ctx = self._context(defn, work.rec, work.state, None, pydata,
                                        work.active_infos(), work.history, event, at, at,
                                        SYSTEM_ACTOR, None)
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

    def _anchor(self, work: _Work, kind: AnchorKind, ref: str | None, at: datetime,
                pydata: Mapping[str, Any]) -> date | datetime | None:
        if kind is AnchorKind.ENTRY:
            return at
        if kind is AnchorKind.START:
            return work.rec.started_at
        if kind is AnchorKind.STATE:
            for h in reversed(work.history):
                if h.to_state == ref and (h.from_state != ref or h.event == "start"):
                    return h.at
            return None
        if kind is AnchorKind.EVENT:
            for h in reversed(work.history):
                if h.event == ref:
                    return h.at
            return None
        if kind is AnchorKind.FIELD:
            value = pydata.get(ref or "")
            return value if isinstance(value, (date, datetime)) else None
        if kind is AnchorKind.DEADLINE:
            if ref in work.new_deadlines:
                return deadline_value(work.new_deadlines[ref])
            for r in reversed(work.deadlines):
                if r.info.name == ref:
                    return deadline_value(r.info)
            return None
        return None

    def _deadline_timers(self, work: _Work, info: DeadlineInfo) -> None:
        work.change.new_timers.append(NewTimer(f"{info.name}:breach", BREACH, info.due_at,
                                               f"breach:{info.name}", deadline=info.name))
        anchor: date | datetime = info.due_at if info.exact else info.due
        for timer in work.defn.timers_of_deadline(info.name):
            if timer.position is TimerPosition.BREACH:
                due = info.due_at
            elif timer.position is TimerPosition.DUE:
                due = _midnight(info.due, self.calendar)
            else:
                if timer.offset is None:
                    continue
                sign = -1 if timer.position is TimerPosition.BEFORE else 1
                due = _as_datetime(apply_duration(anchor, timer.offset, self.calendar,
                                                  sign=sign), self.calendar)
            work.change.new_timers.append(NewTimer(timer.name, "timer", due, timer.action,
                                                   deadline=info.name, first_due_at=due))

    def _enter_state_timers(self, work: _Work, state: str, at: datetime) -> None:
        for timer in work.defn.timers_of_state(state):
            if timer.offset is None:
                due = at
            else:
                due = _as_datetime(apply_duration(at, timer.offset, self.calendar),
                                   self.calendar)
            work.change.new_timers.append(NewTimer(timer.name, "timer", due, timer.action,
                                                   state=state, first_due_at=due))

    # -- helpers ------------------------------------------------------------------------------

    def _names_needed(self, defn: Definition) -> frozenset[str] | None:
        """Every context name an expression or template of ``defn`` reads, computed once."""
        found = self._needed.get(id(defn))
        if found is not None and found[0] is defn:
            return found[1]
        needed = names_used(_texts(defn))
        self._needed[id(defn)] = (defn, needed)
        return needed

    def _context(self, defn: Definition, rec: InstanceRecord, state: str,
                 previous: str | None, data: Mapping[str, Any], infos: Sequence[DeadlineInfo],
                 history: Sequence[HistoryEntry], event: str | None, at: datetime,
                 now: datetime, actor: Actor, note: str | None,
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        needed = self._names_needed(defn)
        if needed is None or "durations" in needed:
            extra = {"durations": duration_words(defn), **(extra or {})}
        if needed is None or "settings" in needed:
            extra = {"settings": dict(self.settings), **(extra or {})}
        return build_context(calendar=self.calendar, instance_id=rec.id, ref=rec.ref,
                             definition=defn.name, title=defn.title, state=state,
                             previous_state=previous, data=data, deadlines=infos,
                             history=history, event=event, event_at=at, now=now,
                             actor_id=actor.id, role=actor.role, note=note, extra=extra,
                             needed=needed)

    def _event_time(self, at: datetime | date | None) -> datetime:
        if at is None:
            return self.clock.now()
        if isinstance(at, (date, datetime)):
            limits.check_date(at, "at")
        if isinstance(at, datetime):
            if at.tzinfo is None or at.tzinfo.utcoffset(at) is None:
                raise ValidationError(f"at: naive datetime {at.isoformat()}; give a timezone "
                                      "offset (e.g. 2012-06-27T10:00+01:00)", field="at")
            return at
        if isinstance(at, date):
            return _midnight(at, self.calendar)
        raise ValidationError(f"at: expected a date or an aware datetime, not {at!r}",
                              field="at")


def _texts(defn: Definition) -> builtins.list[tuple[str, bool]]:
    """Every expression (False) and template (True) text of ``defn``."""
    texts: builtins.list[tuple[str, bool]] = []
    for tr in defn.transitions:
        texts.extend((e.text, False) for e in tr.when)
        texts.extend((e.text, False) for _, e in tr.record)
        texts.extend((n.when.text, False) for n in tr.notify if n.when is not None)
    for tm in defn.timers:
        texts.extend((n.when.text, False) for n in tm.notify if n.when is not None)
    for dl in defn.deadlines:
        texts.extend((r.when.text, False) for r in dl.rules if r.when is not None)
    for tp in defn.templates:
        texts.extend(((tp.subject, True), (tp.body, True)))
    return texts


def _caseload(uow: UnitOfWork, definition: str, instance_id: str) -> Any:
    """``caseload(FIELD, VALUE)`` in expressions: how many other open cases of the definition
    have that value in that data field (an IRO's caseload: ``caseload('iro_id', data.iro_id)``)."""
    def caseload(field_name: str, value: Any) -> int:
        if value in (None, ""):
            return 0
        return uow.count_open(definition, str(field_name), value, exclude=instance_id)
    return caseload


def duration_words(defn: Definition) -> dict[str, str]:
    """``durations.NAME`` in templates: each deadline's duration in words (its last rule, the
    default one), so that changing the YAML changes every email that states it."""
    return {d.name: str(d.rules[-1].offset) for d in defn.deadlines if d.rules}


def _identifier(value: object, name: str) -> str:
    """A child or family identifier: a short code from the case-management system, no spaces
    (names and other personal data belong in case data, never in identifiers, which reach the
    logs), normalised and checked as every identifier is (``limits.identifier``)."""
    return limits.identifier(value, name, limit=200, spaces=False)


def _checked_actor(actor: Actor) -> Actor:
    """The actor with its id normalised (``limits.actor_id``) and its role checked."""
    checked = limits.actor_id(actor.id)
    limits.check_text(actor.role, "role", limit=limits.MAX_ROLE, header=True)
    return actor if checked == actor.id else Actor(checked, actor.role)


def _not_before_last(history: Sequence[HistoryEntry], now: datetime) -> datetime:
    """The later of ``now`` and the case's last event: the time of an event given no time."""
    if not history:
        return now
    last = max(h.at for h in history)
    return last if last > now else now


def _check_settable(instance_id: str, event: str, state: str, given: Mapping[str, Any],
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


def _verdict(info: DeadlineInfo, at: datetime) -> DeadlineStatus:
    """Met or breached: a function of when the answer happened against the breach instant."""
    return DeadlineStatus.MET if at < info.due_at else DeadlineStatus.BREACHED


def _progress(result: TickResult) -> tuple[int, ...]:
    """What a tick has done so far: a round that changes none of it made no progress."""
    return (result.fired, result.breached, result.skipped, result.failed, result.conflicts,
            result.extra.get("taken_over", 0))


def _restore(result: TickResult, saved: TickResult) -> None:
    for f in fields(result):
        setattr(result, f.name, getattr(saved, f.name))


def _written(uow: UnitOfWork, instance_id: str) -> Instance | None:
    """The case as the transaction wrote it, from a store that can build it without reading
    it back (None: the caller reads it after the commit)."""
    build = getattr(uow, "written", None)
    return cast(Instance, build(instance_id)) if build is not None else None


def _deferring(uow: UnitOfWork, on: bool) -> None:
    """A store that can hold a batch's writes until the batch ends (one ``executemany`` per
    statement, checks at the end, still in the transaction) is told when it may; the batch is
    redone one firing at a time, not deferring, if any check fails."""
    if hasattr(uow, "deferring"):
        setattr(uow, "deferring", on)  # noqa: B010 - an optional capability, not in the port


def _pipeline_writes(uow: UnitOfWork) -> None:
    """A store that can send one command's writes together at its end (PostgreSQL's
    pipeline) is told it may: same rows, same checks before the commit, fewer round trips."""
    pipeline = getattr(uow, "pipeline_writes", None)
    if pipeline is not None:
        pipeline()


@contextmanager
def _undo_on_error(uow: UnitOfWork) -> Iterator[None]:
    """Without a savepoint (one firing per transaction): roll the transaction back on error."""
    try:
        yield
    except BaseException:
        uow.rollback()
        raise


def _as_datetime(value: date | datetime, calendar: WorkingCalendar) -> datetime:
    """Day-based results fire at 00:00 local of the resulting date."""
    return value if isinstance(value, datetime) else _midnight(value, calendar)


def _source_text(defn: Definition) -> str | None:
    """The file's text if it still matches the definition's content hash."""
    import hashlib

    try:
        raw = Path(defn.source.file).read_bytes()
    except OSError:
        return None
    if defn.content_hash and hashlib.sha256(raw).hexdigest() != defn.content_hash:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _version_source(defn: Definition) -> str:
    """``FILE:LINE`` of the definition's ``version:`` key (the line to change)."""
    import re

    try:
        text = Path(defn.source.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return str(defn.source)
    found = re.search(r"^version\s*:", text, re.MULTILINE)
    line = text.count("\n", 0, found.start()) + 1 if found else defn.source.line
    return f"{defn.source.file}:{line}"


def _is_db_contention(exc: BaseException) -> bool:
    """Deadlock or serialization failure (PostgreSQL SQLSTATE 40P01 / 40001): retry."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None),
                                                       "sqlstate", None)
    return code in ("40001", "40P01")


def load_definitions(definitions: DefinitionsArg) -> DefinitionSet:
    """None (shipped builtins), a path, paths, a DefinitionSet, a Definition or Definitions."""
    from icsflow.definitions.errors import DefinitionLoadError
    from icsflow.definitions.registry import DefinitionSet

    try:
        if definitions is None:
            return DefinitionSet.load_default()
        if isinstance(definitions, DefinitionSet):
            return definitions
        if isinstance(definitions, Definition):
            return DefinitionSet([definitions])
        if isinstance(definitions, (str, Path)):
            return DefinitionSet.load(definitions)
        items = list(definitions) if isinstance(definitions, Iterable) else [definitions]
        if items and all(isinstance(d, Definition) for d in items):
            return DefinitionSet(items)
        return DefinitionSet.load(items)
    except DefinitionLoadError as exc:
        raise DefinitionError([str(p) for p in exc.problems]) from None


__all__ = ["Engine", "Actor", "breach_instant", "load_definitions"]
