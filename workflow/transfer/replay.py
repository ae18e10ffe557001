"""Replay extract rows through the engine in logical time.

Rows apply in ``at`` order; before each row ``tick(now=row.at)`` fires every timer due by then
at its own due time, so reminders, escalations and breaches carry the dates they would have had
live. The engine is the ordinary one over the bulk path's store (``storage.batch``: the whole replay
in one transaction, a savepoint per command) that (a) records the emails a replay queues as
``replayed`` instead of ``pending`` (nobody wants last year's reminders today), unless the
caller asks to send them, and (b) writes each row's ledger entry in the savepoint of the row's
own transition. The caller commits the replay, or rolls all of it back.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

from icsflow.storage.batch import BatchedStore
from icsflow.storage.imports import LedgerEntry, record
from icsflow.storage.repository import SqlStore, SqlUnitOfWork
from icsflow.workflow.engine import Engine
from icsflow.workflow.errors import WorkflowError
from icsflow.workflow.instance import Actor, Instance, OutboxStatus, TickResult
from icsflow.workflow.ports import Change, Snapshot, TimerRecord
from icsflow.workflow.transfer.rows import START, EventRow, Problem


class RowRefused(WorkflowError):
    """A row the engine refused while an import was being applied (``FILE:LINE: message``)."""

    def __init__(self, row: EventRow, reason: str) -> None:
        self.row = row
        super().__init__(f"{row.where}: {reason}")


class _ReplayUnitOfWork:
    """The store's unit of work, with replayed emails held back and the ledger written."""

    def __init__(self, inner: SqlUnitOfWork, store: ReplayStore) -> None:
        self._inner = inner
        self._store = store

    def __getattr__(self, name: str) -> object:
        """Anything past the ``UnitOfWork`` port (below, each as the store's own does it)."""
        return getattr(self._inner, name)

    def load(self, instance_id: str) -> Snapshot:
        return self._inner.load(instance_id)

    def load_many(self, instance_ids: Sequence[str]) -> dict[str, Snapshot]:
        return self._inner.load_many(instance_ids)

    def count_open(self, definition: str, field_name: str, value: object, *,
                   exclude: str | None = None) -> int:
        return self._inner.count_open(definition, field_name, value, exclude=exclude)

    def load_child(self, child: str) -> list[Snapshot]:
        return self._inner.load_child(child)

    def refs_in_use(self, ref: str, *, spells: bool = False) -> set[str]:
        return self._inner.refs_in_use(ref, spells=spells)

    def take_over_timers(self, timer_ids: Sequence[int], owner: str, lease_until: datetime,
                         now: datetime) -> list[TimerRecord]:
        return self._inner.take_over_timers(timer_ids, owner, lease_until, now)

    def release_timers(self, timer_ids: Sequence[int], owner: str) -> None:
        self._inner.release_timers(timer_ids, owner)

    def apply(self, change: Change, *, owner: str | None = None,
              lease_until: datetime | None = None) -> list[TimerRecord]:
        if self._store.hold_emails and change.outbox:
            change.outbox[:] = [replace(m, status=OutboxStatus.REPLAYED)
                                if m.status is OutboxStatus.PENDING else m
                                for m in change.outbox]
        claimed = self._inner.apply(change, owner=owner, lease_until=lease_until)
        for t in change.new_timers:
            heapq.heappush(self._store.due, t.due_at)
        entry = self._store.ledger_entry
        if entry is not None:
            self._store.ledger_entry = None
            record(self._inner.conn, replace(entry, instance_id=change.instance_id))
        return claimed

    def extend_claims(self, timer_ids: Sequence[int], owner: str,
                      lease_until: datetime) -> None:
        self._inner.extend_claims(timer_ids, owner, lease_until)

    def take_timer(self, timer_id: int, owner: str, fired_at: datetime, outcome: str) -> bool:
        return self._inner.take_timer(timer_id, owner, fired_at, outcome)

    def set_outcome(self, timer_id: int, outcome: str, error: str | None = None) -> None:
        self._inner.set_outcome(timer_id, outcome, error)

    def timer_failed(self, timer_id: int, owner: str, error: str, retry_at: datetime,
                     give_up: bool) -> None:
        self._inner.timer_failed(timer_id, owner, error, retry_at, give_up)

    def commit(self) -> None:
        self._inner.commit()

    def rollback(self) -> None:
        self._inner.rollback()


class ReplayStore(BatchedStore):
    """The bulk path's store (one transaction, a savepoint per command: ``BatchedStore``)
    whose units of work hold replayed emails back and write the ledger.

    ``ledger_entry`` is set just before a row's ``start``/``fire``: that call applies exactly
    one change, the row's own, and the entry goes into its savepoint (a refused row leaves
    neither). ``finish(commit=True)`` keeps the whole replay; anything else keeps nothing."""

    def __init__(self, inner: SqlStore, *, hold_emails: bool) -> None:
        super().__init__(inner)
        self.hold_emails = hold_emails
        self.ledger_entry: LedgerEntry | None = None
        # Due times of the timers created since the replay began and of the earliest pending
        # one at each tick (cancelled ones stay until passed): its first entry is never later
        # than the next pending timer, so a row with nothing due may skip the tick.
        self.due: list[datetime] = []
        self._note_earliest()

    def _note_earliest(self) -> None:
        first = self.earliest_pending()
        if first is not None:
            heapq.heappush(self.due, first)

    def due_by(self, moment: datetime) -> bool:
        """Whether a timer may be due by ``moment`` (then the caller ticks to it)."""
        return bool(self.due) and self.due[0] <= moment

    def passed(self, moment: datetime) -> None:
        """Forget due times up to ``moment`` (a tick to it fired them and their cascades),
        then note the earliest timer still pending: the heap's first entry is never later
        than any pending timer's due time."""
        while self.due and self.due[0] <= moment:
            heapq.heappop(self.due)
        self._note_earliest()

    @contextmanager
    def unit_of_work(self) -> Iterator[_ReplayUnitOfWork]:  # type: ignore[override]
        with super().unit_of_work() as uow:
            yield _ReplayUnitOfWork(uow, self)


def replay_engine(engine: Engine, *, hold_emails: bool) -> tuple[Engine, ReplayStore]:
    """An engine like ``engine`` (definitions, calendar, clock, directory) on a replay store."""
    if not isinstance(engine.store, SqlStore):
        raise WorkflowError("import needs an SQL database (SQLite or PostgreSQL)")
    store = ReplayStore(engine.store, hold_emails=hold_emails)
    # register=False: the definitions are registered by ``engine``; writing them (or an index)
    # again from a second connection would wait for the batch's own write lock on SQLite.
    replayer = Engine(store, engine.definitions, clock=engine.clock, calendar=engine.calendar,
                      directory=engine.directory, admin_address=engine.admin_address,
                      sender=engine.sender, settings=engine.settings, policy=engine.policy,
                      pause_gc=engine.ticker.pause_gc, register=False)
    return replayer, store


@dataclass
class ReplayResult:
    """What a replay did (or, in a dry run, would do)."""

    applied: int = 0
    started: int = 0
    held_back: int = 0
    timers: TickResult = field(default_factory=TickResult)
    problems: list[Problem] = field(default_factory=list)
    cases: dict[tuple[str, str], str] = field(default_factory=dict)

    def add_tick(self, result: TickResult) -> None:
        for name in ("fired", "skipped", "failed", "conflicts", "breached", "queued"):
            setattr(self.timers, name, getattr(self.timers, name) + getattr(result, name))


def find_case(engine: Engine, definition: str, ref: str) -> Instance | None:
    """The case of ``definition`` with reference ``ref``: the open one, else the latest."""
    found = [i for i in engine.find(ref) if i.definition == definition]
    if not found:
        return None
    open_ = [i for i in found if not i.closed]
    return (open_ or found)[-1]


def replay(engine: Engine, store: ReplayStore, rows: Sequence[EventRow], *, until: datetime,
           cases: Mapping[tuple[str, str], str], collect: bool, write_ledger: bool,
           source: str = "", progress: Callable[[int], None] | None = None,
           ) -> ReplayResult:
    """Apply ``rows`` (sorted) on ``engine``; timers run up to ``until`` at the end.

    ``cases`` maps (definition, ref) to the ids of cases already in the database. With
    ``collect`` a refused row is recorded as a problem and the replay goes on (the dry run);
    without it the first refusal raises ``RowRefused`` (rows before it stay committed)."""
    result = ReplayResult(cases=dict(cases))
    for row in rows:
        if row.at > until:
            result.held_back += 1
            if progress is not None:
                progress(1)
            continue
        if store.due_by(row.at):  # as tick(now=row.at) before every row, without the no-ops
            result.add_tick(engine.tick(now=row.at))
            store.passed(row.at)
        if write_ledger:
            store.ledger_entry = LedgerEntry(
                row_key=row.key, instance_id=None, ref=row.ref, definition=row.definition,
                event=row.event, happened_at=row.at, source=source or row.source,
                imported_at=engine.clock.now())
        try:
            _apply_row(engine, row, result)
        except WorkflowError as exc:
            if not collect:
                raise RowRefused(row, _one_line(exc)) from exc
            result.problems.append(Problem(row.source, row.line, _one_line(exc)))
        finally:
            store.ledger_entry = None
        if progress is not None:
            progress(1)
    result.add_tick(engine.tick(now=until))
    return result


def _apply_row(engine: Engine, row: EventRow, result: ReplayResult) -> None:
    actor = Actor(row.actor, row.role)
    iid = result.cases.get(row.case)
    if row.event == START:
        if iid is not None:
            raise WorkflowError(f"case {row.ref} of {row.definition} is already started "
                                f"(instance {iid}); a case starts once")
        inst = engine.start(row.definition, row.ref, dict(row.data), actor, at=row.at,
                            child=row.child, family=row.family)
        result.cases[row.case] = inst.id
        result.started += 1
    else:
        if iid is None:
            raise WorkflowError(f"no case {row.ref} of {row.definition}: its 'start' row is "
                                "missing (or comes later in time)")
        engine.fire(iid, row.event, actor, data=dict(row.data) or None, note=row.note,
                    at=row.at)
    result.applied += 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


__all__ = ["ReplayStore", "ReplayResult", "RowRefused", "replay", "replay_engine",
           "find_case"]
