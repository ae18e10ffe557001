"""The engine: start cases, fire events, fire due timers; each a single transaction.

This is the facade an embedding service, the CLI, the daemon and the web page use. It composes
the rooms that do the work: the ``catalogue`` of definitions, ``planning`` (pure: a case and an
event -> the ``Change`` to write), ``propagation`` (signals between a child's cases, in the same
transaction) and ``ticking`` (claiming and firing due timers in batches). A transition is
planned in memory from a ``Snapshot`` of the case, then written at once by the store, which
checks the row's version (optimistic locking).
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeAlias, TypeVar

from icsflow.definitions.model import SYSTEM_ROLE, Definition
from icsflow.workflow import limits
from icsflow.workflow.calendar import OutsideCalendar, WorkingCalendar
from icsflow.workflow.catalogue import Catalogue, DefinitionsArg, load_definitions
from icsflow.workflow.changes.explain import explain_case
from icsflow.workflow.changes.migration import MigrationPlan
from icsflow.workflow.changes.migration import migrate as migrate_cases
from icsflow.workflow.changes.reproject import ReprojectPlan
from icsflow.workflow.changes.reproject import reproject as reproject_cases
from icsflow.workflow.clock import Clock, SystemClock
from icsflow.workflow.data import convert, require
from icsflow.workflow.deadlines import breach_instant, midnight
from icsflow.workflow.errors import ConcurrencyConflict, PermissionDenied, ValidationError
from icsflow.workflow.instance import SYSTEM_ACTOR, Actor, Instance, TickResult
from icsflow.workflow.logging import get_logger
from icsflow.workflow.planning import Planner, not_before_last
from icsflow.workflow.policy import TIMER_LEASE, Policy
from icsflow.workflow.ports import Change, Outbox, Store, UnitOfWork
from icsflow.workflow.propagation import propagate
from icsflow.workflow.ticking import Ticker

if TYPE_CHECKING:
    from icsflow.definitions.registry import DefinitionSet

log = get_logger("icsflow.engine")

_P = ParamSpec("_P")
_R = TypeVar("_R")
Cases: TypeAlias = list[Instance]  # named so that ``Engine.list`` (an alias) shadows nothing


def _dates_door(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """A deadline or timer counted past the calendar's range (a long duration from a late
    anchor) refuses the command in one line instead of escaping as a traceback."""
    @functools.wraps(method)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except (OutsideCalendar, OverflowError) as exc:
            raise ValidationError(f"a deadline or timer of this case would fall outside the "
                                  f"supported dates ({limits.RANGE}): {exc}") from None
    return guarded


class Engine:
    """Start, fire, read and tick cases of the loaded definitions on one store."""

    def __init__(self, store: Store, definitions: DefinitionSet, *, clock: Clock | None = None,
                 calendar: WorkingCalendar | None = None,
                 directory: Mapping[str, Sequence[str]] | None = None,
                 admin_address: str | None = None, sender: str | None = None,
                 settings: Mapping[str, Any] | None = None, register: bool = True,
                 timer_lease: timedelta = TIMER_LEASE, policy: Policy | None = None,
                 pause_gc: bool = False) -> None:
        """``register=False``: write nothing (a read-only engine). ``policy``: retries and
        leases (``timer_lease`` is kept for callers that only set that). ``pause_gc``: pause
        Python's cycle collector while a tick works through a batch (the daemon's choice;
        never done to an embedding program unless it asks)."""
        self.store = store
        self.definitions = definitions
        self.catalogue = Catalogue(definitions)
        self.clock: Clock = clock or SystemClock()
        self.calendar = calendar or WorkingCalendar()
        self.sender = sender
        self.policy = policy or Policy(timer_lease=timer_lease)
        self.planner = Planner(self.catalogue, self.calendar, directory=directory,
                               admin_address=admin_address, settings=settings)
        self.ticker = Ticker(store, self.planner, self.clock, policy=self.policy,
                             pause_gc=pause_gc)
        limits.check_definitions(list(definitions))
        if register:
            self.catalogue.register(store)
        self.catalogue.load_kept(store)

    # -- composition ------------------------------------------------------------------------

    @classmethod
    def open(cls, db: str = "sqlite:///icsflow.db", definitions: DefinitionsArg = None,
             clock: Clock | None = None, calendar: WorkingCalendar | None = None,
             directory: Mapping[str, Sequence[str]] | None = None,
             admin_address: str | None = None, sender: str | None = None,
             migrate: bool | None = None, settings: Mapping[str, Any] | None = None,
             create: bool = True, read_only: bool = False,
             timer_lease: timedelta = TIMER_LEASE, policy: Policy | None = None,
             pause_gc: bool = False) -> Engine:
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
                       register=not read_only, timer_lease=timer_lease, policy=policy,
                       pause_gc=pause_gc)
        except BaseException:
            sql.dispose()
            raise

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what the composition root and the rooms read -----------------------------------------

    @property
    def outbox(self) -> Outbox | None:
        """The outbox repository (the dispatcher's side of the queue), if the store has one."""
        found: Outbox | None = getattr(self.store, "outbox", None)
        return found

    @property
    def settings(self) -> dict[str, Any]:
        """The council's settings definitions may read (``settings.allocation_weekday``)."""
        return self.planner.contexts.settings

    @property
    def directory(self) -> Mapping[str, Sequence[str]]:
        """Service-level roles' addresses (the configuration's ``directory``)."""
        return self.planner.directory

    @directory.setter
    def directory(self, value: Mapping[str, Sequence[str]]) -> None:
        self.planner.directory = {k: list(v) if not isinstance(v, str) else [v]
                                  for k, v in value.items()}

    @property
    def admin_address(self) -> str | None:
        return self.planner.admin_address

    @property
    def lease(self) -> timedelta:
        """How long a tick holds the timers it claims (``Policy.timer_lease``)."""
        return self.policy.timer_lease

    # -- reads ------------------------------------------------------------------------------

    def get(self, instance_id: str) -> Instance:
        return self.store.get(instance_id)

    def find(self, ref: str) -> Cases:
        """Cases by reference; the reference is normalised as ``start`` stores it."""
        return self.store.find(unicodedata.normalize("NFKC", ref).strip())

    def list_cases(self, definition: str | None = None, state: str | None = None,
                   overdue: bool = False, open_only: bool = False, child: str | None = None,
                   family: str | None = None) -> Cases:
        """Cases, filtered; ``overdue``: with a deadline breached by the clock's now."""
        return self.store.list(definition=definition, state=state,
                               overdue_at=self.clock.now() if overdue else None,
                               open_only=open_only, child=child, family=family)

    def child_cases(self, child: str) -> Cases:
        """Every case of one child, oldest first (``icsflow child`` builds its timeline)."""
        return self.store.list(child=limits.identifier(child, "child", spaces=False))

    def timer_name(self, timer_id: int) -> str | None:
        """The name of timer row ``timer_id`` (None if there is none): the outbox keys a
        timer's emails by the row's id, and readdressing one needs to know which timer."""
        return self.store.timer_name(timer_id)

    def definition(self, name: str, version: int | None = None) -> Definition:
        """A loaded definition; a version no longer in the files is read back from the store
        (cases keep the version they started on)."""
        return self.catalogue.definition(name, version)

    # -- commands ---------------------------------------------------------------------------

    @_dates_door
    def start(self, name: str, ref: str, data: Mapping[str, Any] | None, actor: Actor,
              at: datetime | date | None = None, version: int | None = None,
              child: str | None = None, family: str | None = None) -> Instance:
        """Start a case of ``name`` (its latest version unless ``version`` is given), for
        ``child`` (and ``family``): identifiers from the council's case-management system."""
        defn = self.definition(name, version)
        child = limits.identifier(child, "child", spaces=False) if child is not None else None
        family = limits.identifier(family, "family", spaces=False) \
            if family is not None else None
        if actor.role not in defn.start_roles:
            raise PermissionDenied(role=actor.role, allowed_roles=defn.start_roles,
                                   definition=defn.name)
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
        change = self.planner.start(defn, ref=ref, data=converted, actor=actor, at=when,
                                    now=now, child=child, family=family)
        with self.store.unit_of_work() as uow:
            _pipeline_writes(uow)
            if uow.refs_in_use(ref):
                raise ValidationError(
                    f"ref: {ref!r} is already the reference of another case (`icsflow show "
                    f"{ref}`); a reference names one case, so give this one its own",
                    field="ref")
            written = self._apply(uow, change, when, now)
        log.info("instance_started", instance_id=change.instance_id, definition=defn.name,
                 ref=ref)
        return written if written is not None else self.get(change.instance_id)

    @_dates_door
    def fire(self, instance_id: str, event: str, actor: Actor,
             data: Mapping[str, Any] | None = None, note: str | None = None,
             at: datetime | date | None = None,
             expected_version: int | None = None) -> Instance:
        """Fire ``event`` as ``actor``; ``expected_version`` (the ``row_version`` read) makes a
        stale write a ``ConcurrencyConflict`` instead of acting on newer state. With no ``at``
        the event happens now, or at the case's last event if that is later (another server's
        clock a few milliseconds ahead): an implicit now is never refused as backdated."""
        if actor.role == SYSTEM_ROLE:
            raise PermissionDenied(instance_id=instance_id, event=event, role=actor.role,
                                   reserved=True)
        actor = _checked_actor(actor)
        if note is not None:
            limits.check_text(note, "note", instance_id=instance_id)
        when = self._event_time(at)
        with self.store.unit_of_work() as uow:
            _pipeline_writes(uow)
            snap = uow.load(instance_id)
            if at is None:
                when = not_before_last(snap.history, when)
            limits.check_event_order(snap.history, when, instance_id)
            if expected_version is not None and snap.instance.row_version != expected_version:
                raise ConcurrencyConflict(instance_id=instance_id, read_version=expected_version,
                                          now_version=snap.instance.row_version)
            defn = self.definition(snap.instance.definition, snap.instance.definition_version)
            converted = convert(defn, data)
            limits.check_data(defn, converted, instance_id)
            now = self.clock.now()
            change = self.planner.event(defn, snap, event, actor, converted, note=note, at=when,
                                        now=now, lookups=uow)
            written = self._apply(uow, change, when, now)
        log.info("event_fired", instance_id=instance_id, event_name=event, role=actor.role)
        return written if written is not None else self.get(instance_id)

    def _apply(self, uow: UnitOfWork, change: Change, at: datetime,
               now: datetime) -> Instance | None:
        uow.apply(change)
        propagate(uow, self.planner, change, at, now)
        return _written(uow, change.instance_id)

    # -- change: move running cases (workflow.changes) ------------------------------------------

    def migrate(self, name: str, to_version: int, *, where: Sequence[str] = (),
                mapping: Mapping[str, str] | None = None, dry_run: bool = False,
                actor: Actor = SYSTEM_ACTOR, now: datetime | None = None) -> MigrationPlan:
        """Move open cases of ``name`` to ``to_version``; see ``workflow.changes.migration``.
        ``now`` (default the clock's): when the move happens; a deadline already past due
        then is breached by time and stays as it is."""
        return migrate_cases(self.planner, self.store, name, to_version, where=where,
                             mapping=mapping, dry_run=dry_run, actor=actor,
                             now=self._moment(now))

    def reproject(self, *, dry_run: bool = False, actor: Actor = SYSTEM_ACTOR,
                  now: datetime | None = None) -> ReprojectPlan:
        """Move open working-day deadlines the calendar changed (``workflow.changes.reproject``);
        ``now`` as for ``migrate``."""
        return reproject_cases(self.planner, self.store, dry_run=dry_run, actor=actor,
                               now=self._moment(now))

    def _moment(self, now: datetime | None) -> datetime:
        if now is None:
            return self.clock.now()
        limits.check_date(now, "now")
        if now.tzinfo is None:
            raise ValidationError("now: give a timezone offset", field="now")
        return now

    def explain(self, instance_id: str) -> dict[str, dict[str, Any]]:
        """Why each active deadline of a case falls on its date, by deadline name."""
        with self.store.unit_of_work() as uow:
            snap = uow.load(instance_id)
        return explain_case(self.planner, snap)

    # -- timers -----------------------------------------------------------------------------

    def tick(self, now: datetime | None = None, *, batch_size: int = 500,
             commit_every: int = 500, owner: str | None = None,
             should_stop: Callable[[], bool] | None = None) -> TickResult:
        """Fire every timer due by ``now`` exactly once, in due order, each recorded at its own
        due time; ``should_stop`` ends a long tick between batches (see ``workflow.ticking``)."""
        return self.ticker.tick(now, batch_size=batch_size, commit_every=commit_every,
                                owner=owner, should_stop=should_stop)

    list = list_cases  # the older name of ``list_cases``, kept for callers that use it

    # -- helpers ------------------------------------------------------------------------------

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
            return midnight(at, self.calendar)
        raise ValidationError(f"at: expected a date or an aware datetime, not {at!r}",
                              field="at")


def _checked_actor(actor: Actor) -> Actor:
    """The actor with its id normalised (``limits.actor_id``) and its role checked."""
    checked = limits.actor_id(actor.id)
    limits.check_text(actor.role, "role", limit=limits.MAX_ROLE, header=True)
    return actor if checked == actor.id else Actor(checked, actor.role)


def _written(uow: UnitOfWork, instance_id: str) -> Instance | None:
    """The case as the transaction wrote it, from a store that can build it without reading
    it back (None: the caller reads it after the commit)."""
    build = getattr(uow, "written", None)
    return build(instance_id) if build is not None else None


def _pipeline_writes(uow: UnitOfWork) -> None:
    """A store that can send one command's writes together at its end (PostgreSQL's
    pipeline) is told it may: same rows, same checks before the commit, fewer round trips."""
    pipeline = getattr(uow, "pipeline_writes", None)
    if pipeline is not None:
        pipeline()


__all__ = ["Engine", "Actor", "breach_instant", "load_definitions", "TIMER_LEASE"]
