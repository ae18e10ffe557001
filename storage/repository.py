"""Repositories implementing ``workflow.ports`` with SQLAlchemy Core on the typed tables.

Core statements (not ORM units of work) because a tick writes thousands of small rows: the ORM's
identity map and flush would double the cost without buying anything here.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    Row,
    String,
    Table,
    and_,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from icsflow.storage.outbox import SqlOutbox
from icsflow.storage.tables import (
    DeadlineRow,
    DefinitionRow,
    HistoryRow,
    InstanceRow,
    OutboxRow,
    TimerRow,
    UTCDateTime,
)
from icsflow.workflow.errors import ConcurrencyConflict, DefinitionError, InstanceNotFound
from icsflow.workflow.instance import (
    DeadlineInfo,
    DeadlineStatus,
    HistoryEntry,
    Instance,
    OutboxStatus,
    TimerInfo,
    TimerStatus,
)
from icsflow.workflow.ports import (
    Change,
    DeadlineRecord,
    InstanceRecord,
    Snapshot,
    TimerRecord,
)

I = cast(Table, InstanceRow.__table__)  # noqa: E741
H = cast(Table, HistoryRow.__table__)
D = cast(Table, DeadlineRow.__table__)
T = cast(Table, TimerRow.__table__)
O = cast(Table, OutboxRow.__table__)  # noqa: E741
DEF = cast(Table, DefinitionRow.__table__)


# Statements used once per firing are built once: building a Core expression costs more than
# running it on a small table.
_LOAD_I = select(I).where(I.c.id == bindparam("iid"))
_LOAD_H = select(H).where(H.c.instance_id == bindparam("iid")).order_by(H.c.id)
_LOAD_D = select(D).where(D.c.instance_id == bindparam("iid")).order_by(D.c.id)
_LOAD_T = (select(T).where(T.c.instance_id == bindparam("iid"), T.c.status == "pending")
           .order_by(T.c.due_at, T.c.id))
_TAKE = (update(T).where(T.c.id == bindparam("tid"), T.c.status == "pending",
                         T.c.claimed_by == bindparam("owner"))
         .values(status="fired", fired_at=bindparam("fired_at"),
                 outcome=bindparam("outcome"), attempts=T.c.attempts + 1, claimed_by=None,
                 claim_expires_at=None))
_BUMP = (update(I).where(I.c.id == bindparam("iid"), I.c.version == bindparam("expected"))
         .values(state=func.coalesce(bindparam("new_state", type_=String), I.c.state),
                 data=func.coalesce(bindparam("new_data", type_=JSON(none_as_null=True)), I.c.data),
                 closed_at=func.coalesce(bindparam("new_closed", type_=UTCDateTime),
                                         I.c.closed_at),
                 version=I.c.version + 1, updated_at=bindparam("now")))
_INS_H = insert(H)
_INS_O = insert(O)
_INS_T = insert(T)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _instance(r: Row[Any]) -> InstanceRecord:
    return InstanceRecord(id=r.id, definition=r.definition, definition_version=r.definition_version,
                          ref=r.ref, state=r.state, data=dict(r.data), row_version=r.version,
                          created_at=r.created_at, started_at=r.started_at, closed_at=r.closed_at,
                          child=r.child, family=r.family)


def _history(r: Row[Any]) -> HistoryEntry:
    return HistoryEntry(event=r.event, from_state=r.from_state, to_state=r.to_state,
                        actor=r.actor_id, role=r.role, at=r.happened_at,
                        recorded_at=r.recorded_at, note=r.note, changes=r.changes or {},
                        cancelled_timers=tuple(
                            (c["name"], datetime.fromisoformat(c["due_at"]))
                            for c in r.cancelled_timers or ()))


def _deadline(r: Row[Any]) -> DeadlineRecord:
    return DeadlineRecord(r.id, DeadlineInfo(name=r.name, due=r.due_date, due_at=r.due_at,
                                             status=DeadlineStatus(r.status), exact=r.exact,
                                             met_at=r.met_at))


def _timer(r: Row[Any]) -> TimerRecord:
    return TimerRecord(id=r.id, instance_id=r.instance_id, name=r.name, kind=r.kind,
                       due_at=r.due_at, action=r.action, status=TimerStatus(r.status),
                       deadline=r.deadline, state=r.state, first_due_at=r.first_due_at,
                       occurrence=r.repeat_count, attempts=r.attempts,
                       claimed_by=r.claimed_by, claim_expires_at=r.claim_expires_at)


def _to_instance(rec: InstanceRecord, history: Sequence[HistoryEntry],
                 deadlines: Sequence[DeadlineRecord], timers: Sequence[TimerRecord]) -> Instance:
    return Instance(
        id=rec.id, definition=rec.definition, version=rec.definition_version, ref=rec.ref,
        state=rec.state, data=dict(rec.data), deadline_list=tuple(d.info for d in deadlines),
        timers=tuple(TimerInfo(t.name, t.due_at, t.action, t.status, t.deadline, t.state,
                               t.occurrence)
                     for t in sorted(timers, key=lambda t: (t.due_at, t.id)) if t.kind == "timer"),
        history=tuple(history), row_version=rec.row_version, created_at=rec.created_at,
        closed_at=rec.closed_at, child=rec.child, family=rec.family,
        started_at=rec.started_at)


def _chunks(ids: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    """``IN`` lists of at most ``size`` ids (SQLite limits bound parameters)."""
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def _load_children(conn: Connection, ids: Sequence[str]) -> tuple[
        dict[str, list[HistoryEntry]], dict[str, list[DeadlineRecord]],
        dict[str, list[TimerRecord]]]:
    """History, deadlines and pending timers of many instances: three queries per 500 ids."""
    hist: dict[str, list[HistoryEntry]] = {i: [] for i in ids}
    dls: dict[str, list[DeadlineRecord]] = {i: [] for i in ids}
    tms: dict[str, list[TimerRecord]] = {i: [] for i in ids}
    for chunk in _chunks(ids):
        for r in conn.execute(select(H).where(H.c.instance_id.in_(chunk)).order_by(H.c.id)):
            hist[r.instance_id].append(_history(r))
        for r in conn.execute(select(D).where(D.c.instance_id.in_(chunk)).order_by(D.c.id)):
            dls[r.instance_id].append(_deadline(r))
        for r in conn.execute(select(T).where(T.c.instance_id.in_(chunk), T.c.status == "pending")
                              .order_by(T.c.due_at, T.c.id)):
            tms[r.instance_id].append(_timer(r))
    return hist, dls, tms


class SqlUnitOfWork:
    """One transaction on one connection. ``tick`` fires a batch of timers in one transaction
    without savepoints and, if any firing fails, rolls it back and redoes it one per commit."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def load(self, instance_id: str) -> Snapshot:
        p = {"iid": instance_id}
        row = self.conn.execute(_LOAD_I, p).first()
        if row is None:
            raise InstanceNotFound(instance_id)
        history = [_history(r) for r in self.conn.execute(_LOAD_H, p)]
        deadlines = [_deadline(r) for r in self.conn.execute(_LOAD_D, p)]
        timers = [_timer(r) for r in self.conn.execute(_LOAD_T, p)]
        return Snapshot(_instance(row), tuple(history), tuple(deadlines), tuple(timers))

    def load_many(self, instance_ids: Sequence[str]) -> dict[str, Snapshot]:
        """Snapshots of many instances in four queries (a tick's batch), not four each."""
        ids = list(dict.fromkeys(instance_ids))
        rows: dict[str, InstanceRecord] = {}
        for chunk in _chunks(ids):
            for r in self.conn.execute(select(I).where(I.c.id.in_(chunk))):
                rows[r.id] = _instance(r)
        hist, dls, tms = _load_children(self.conn, list(rows))
        return {i: Snapshot(rec, tuple(hist[i]), tuple(dls[i]), tuple(tms[i]))
                for i, rec in rows.items()}

    def count_open(self, definition: str, field_name: str, value: Any, *,
                   exclude: str | None = None) -> int:
        """Counted in Python over the open cases' data (JSON paths differ between SQLite and
        PostgreSQL; this runs once per allocation, not per timer)."""
        rows = self.conn.execute(select(I.c.id, I.c.data).where(
            I.c.definition == definition, I.c.closed_at.is_(None)))
        return sum(1 for r in rows if r.id != exclude and (r.data or {}).get(field_name) == value)

    def load_child(self, child: str) -> list[Snapshot]:
        """Serialised per child: two transactions that both send signals for one child (a plan
        made while the child is being made looked after) must not each miss the other's case.
        PostgreSQL: a transaction-scoped advisory lock on the child, taken before reading, held
        to commit (the second reads the first's committed rows). SQLite writes one at a time."""
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:c))"), {"c": child})
        ids = [r[0] for r in self.conn.execute(
            select(I.c.id).where(I.c.child == child, I.c.closed_at.is_(None))
            .order_by(I.c.started_at, I.c.id))]
        snaps = self.load_many(ids)
        return [snaps[i] for i in ids if i in snaps]

    def apply(self, change: Change, *, owner: str | None = None,
              lease_until: datetime | None = None) -> list[TimerRecord]:
        now = change.recorded_at or _utcnow()
        c = self.conn
        if change.new_instance is not None:
            n = change.new_instance
            c.execute(insert(I).values(
                id=n.id, definition=n.definition, definition_version=n.definition_version,
                ref=n.ref, state=n.state, data=n.data, version=n.row_version,
                created_at=n.created_at, updated_at=now, started_at=n.started_at,
                closed_at=n.closed_at, child=n.child, family=n.family))
        elif change.bump_version:
            result = c.execute(_BUMP, {
                "iid": change.instance_id, "expected": change.expected_version,
                "new_state": change.state, "new_data": change.data,
                "new_closed": change.closed_at, "now": now})
            if result.rowcount != 1:
                raise ConcurrencyConflict(
                    f"instance {change.instance_id} was changed by someone else since it was "
                    "read; read it again and retry", instance_id=change.instance_id)
        cancelled: list[dict[str, str]] = []
        if change.cancel_timers:
            rows = c.execute(update(T).where(T.c.id.in_(change.cancel_timers),
                                             T.c.status == "pending")
                             .values(status="cancelled", outcome="cancelled", claimed_by=None,
                                     claim_expires_at=None)
                             .returning(T.c.name, T.c.kind, T.c.due_at, T.c.id)).all()
            cancelled = [{"name": r.name, "due_at": r.due_at.isoformat()}
                         for r in sorted(rows, key=lambda r: (r.due_at, r.id))
                         if r.kind == "timer"]
        if change.history:
            last = len(change.history) - 1
            c.execute(_INS_H, [
                {"instance_id": change.instance_id, "event": h.event, "from_state": h.from_state,
                 "to_state": h.to_state, "actor_id": h.actor, "role": h.role,
                 "happened_at": h.at, "recorded_at": h.recorded_at, "note": h.note,
                 "changes": dict(h.changes),
                 "cancelled_timers": (cancelled or None) if n == last else None}
                for n, h in enumerate(change.history)])
        for u in change.deadline_updates:
            vals: dict[str, Any] = {}
            if u.status is not None:
                vals["status"] = u.status.value
            if u.met_at is not None:
                vals["met_at"] = u.met_at
            if u.due is not None:
                vals["due_date"] = u.due
            if u.due_at is not None:
                vals["due_at"] = u.due_at
            stmt = update(D).where(D.c.id == u.id)
            if u.only_if_status:
                stmt = stmt.where(D.c.status.in_([s.value for s in u.only_if_status]))
            c.execute(stmt.values(**vals))
        if change.new_deadlines:
            c.execute(insert(D), [
                {"instance_id": change.instance_id, "name": d.name, "due_date": d.due,
                 "due_at": d.due_at, "exact": d.exact, "status": d.status.value,
                 "met_at": d.met_at, "created_at": now} for d in change.new_deadlines])
        claimed: list[TimerRecord] = []
        plain: list[dict[str, Any]] = []
        for t in change.new_timers:
            values = {"instance_id": change.instance_id, "name": t.name, "kind": t.kind,
                      "deadline": t.deadline, "state": t.state, "due_at": t.due_at,
                      "first_due_at": t.first_due_at, "action": t.action, "status": "pending",
                      "attempts": 0, "repeat_count": t.occurrence, "created_at": now}
            before = change.claim_new_timers_before
            if owner is not None and before is not None and t.due_at <= before:
                values.update(claimed_by=owner, claim_expires_at=lease_until)
                row = c.execute(insert(T).values(**values).returning(*T.c)).one()
                claimed.append(_timer(row))
            else:
                plain.append(values)
        if plain:
            c.execute(_INS_T, plain)
        if change.outbox:
            c.execute(_INS_O, [
                {"instance_id": m.instance_id or change.instance_id,
                 "recipients": list(m.recipients), "subject": m.subject, "body": m.body,
                 "template": m.template, "urgent": m.urgent, "status": m.status.value,
                 "attempts": 0, "next_attempt_at": now if m.status is OutboxStatus.PENDING
                 else None, "last_error": m.last_error, "idempotency_key": m.idempotency_key,
                 "created_at": now} for m in change.outbox])
        return claimed

    def extend_claims(self, timer_ids: Sequence[int], owner: str,
                      lease_until: datetime) -> None:
        ids = list(timer_ids)
        for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
            self.conn.execute(update(T).where(T.c.id.in_(chunk), T.c.claimed_by == owner,
                                              T.c.status == "pending")
                              .values(claim_expires_at=lease_until))

    def take_over_timers(self, timer_ids: Sequence[int], owner: str, lease_until: datetime,
                         now: datetime) -> list[TimerRecord]:
        rows = self.conn.execute(
            update(T).where(T.c.id.in_(list(timer_ids)), T.c.status == "pending",
                            or_(T.c.claimed_by.is_(None), T.c.claim_expires_at < now))
            .values(claimed_by=owner, claim_expires_at=lease_until).returning(*T.c)).all()
        return sorted((_timer(r) for r in rows), key=lambda t: (t.due_at, t.id))

    def release_timers(self, timer_ids: Sequence[int], owner: str) -> None:
        self.conn.execute(update(T).where(T.c.id.in_(list(timer_ids)), T.c.claimed_by == owner,
                                          T.c.status == "pending")
                          .values(claimed_by=None, claim_expires_at=None))

    def take_timer(self, timer_id: int, owner: str, fired_at: datetime, outcome: str) -> bool:
        result = self.conn.execute(_TAKE, {"tid": timer_id, "owner": owner,
                                           "fired_at": fired_at, "outcome": outcome})
        return result.rowcount == 1

    def set_outcome(self, timer_id: int, outcome: str, error: str | None = None) -> None:
        self.conn.execute(update(T).where(T.c.id == timer_id)
                          .values(outcome=outcome, last_error=error))

    def timer_failed(self, timer_id: int, owner: str, error: str, retry_at: datetime,
                     give_up: bool) -> None:
        values: dict[str, Any] = {"attempts": T.c.attempts + 1, "last_error": error[:2000],
                                  "claim_expires_at": retry_at}
        if give_up:
            values.update(status="failed", outcome="failed", claimed_by=None)
        self.conn.execute(update(T).where(T.c.id == timer_id, T.c.claimed_by == owner)
                          .values(**values))

    def commit(self) -> None:
        self.conn.commit()
        self.conn.begin()

    def rollback(self) -> None:
        self.conn.rollback()
        self.conn.begin()


class SqlStore:
    """The engine's store on one SQLAlchemy Engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.outbox = SqlOutbox(engine)
        from icsflow.storage.changes import SqlChangeStore  # migrate and re-project (issue 14)

        self.changes = SqlChangeStore(engine)

    @contextmanager
    def unit_of_work(self) -> Iterator[SqlUnitOfWork]:
        with self.engine.connect() as conn:
            conn.begin()
            try:
                yield SqlUnitOfWork(conn)
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    # -- reads ----------------------------------------------------------------------------

    def get(self, instance_id: str) -> Instance:
        with self.engine.connect() as conn:
            snap = SqlUnitOfWork(conn).load(instance_id)
            conn.rollback()
        return _to_instance(snap.instance, snap.history, snap.deadlines, snap.timers)

    def _many(self, conn: Connection, rows: Sequence[Row[Any]]) -> builtins.list[Instance]:
        hist, dls, tms = _load_children(conn, [r.id for r in rows])
        return [_to_instance(_instance(r), hist[r.id], dls[r.id], tms[r.id]) for r in rows]

    def find(self, ref: str) -> builtins.list[Instance]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(I).where(I.c.ref == ref).order_by(I.c.created_at)).all()
            result = self._many(conn, rows)
            conn.rollback()
        return result

    def list(self, *, definition: str | None = None, state: str | None = None,
             overdue_at: datetime | None = None, open_only: bool = False,
             child: str | None = None, family: str | None = None) -> list[Instance]:
        stmt = select(I)
        if child is not None:
            stmt = stmt.where(I.c.child == child)
        if family is not None:
            stmt = stmt.where(I.c.family == family)
        if definition is not None:
            stmt = stmt.where(I.c.definition == definition)
        if state is not None:
            stmt = stmt.where(I.c.state == state)
        if open_only:
            stmt = stmt.where(I.c.closed_at.is_(None))
        if overdue_at is not None:
            stmt = stmt.where(exists().where(
                D.c.instance_id == I.c.id, D.c.met_at.is_(None),
                D.c.status.in_(["live", "breached"]), D.c.due_at <= overdue_at))
        stmt = stmt.order_by(I.c.created_at, I.c.id)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
            result = self._many(conn, rows)
            conn.rollback()
        return result

    # -- timers ---------------------------------------------------------------------------

    def claim_due_timers(self, now: datetime, owner: str, lease_until: datetime,
                         limit: int, clock_now: datetime | None = None,
                         ) -> builtins.list[TimerRecord]:
        """Lease up to ``limit`` due pending timers to ``owner`` (SKIP LOCKED on PostgreSQL);
        a crashed owner's lease runs out and the timers become claimable again."""
        clock_now = clock_now or _utcnow()
        # A timer whose case has an earlier pending timer under a live lease waits for it:
        # within one case timers fire in due order, whichever worker holds them.
        E = T.alias("earlier")  # noqa: N806
        held_earlier = exists().where(
            E.c.instance_id == T.c.instance_id, E.c.status == "pending",
            E.c.claimed_by.is_not(None), E.c.claim_expires_at >= clock_now,
            or_(E.c.due_at < T.c.due_at, and_(E.c.due_at == T.c.due_at, E.c.id < T.c.id)))
        inner = (select(T.c.id).where(T.c.status == "pending", T.c.due_at <= now,
                                      or_(T.c.claimed_by.is_(None),
                                          T.c.claim_expires_at < clock_now),
                                      ~held_earlier)
                 .order_by(T.c.due_at, T.c.id).limit(limit))
        if self.dialect == "postgresql":
            inner = inner.with_for_update(skip_locked=True)
        stmt = (update(T).where(T.c.id.in_(inner.scalar_subquery()))
                .values(claimed_by=owner, claim_expires_at=lease_until).returning(*T.c))
        with self.engine.begin() as conn:
            rows = conn.execute(stmt).all()
        return sorted((_timer(r) for r in rows), key=lambda t: (t.due_at, t.id))

    def release_timers(self, ids: Sequence[int], owner: str) -> None:
        if not ids:
            return
        with self.engine.begin() as conn:
            conn.execute(update(T).where(T.c.id.in_(list(ids)), T.c.claimed_by == owner,
                                         T.c.status == "pending")
                         .values(claimed_by=None, claim_expires_at=None))

    # -- definitions ----------------------------------------------------------------------

    def kept_definitions(self) -> builtins.list[tuple[str, int, str]]:
        """Every registered (name, version, text) whose text was kept."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(DEF.c.name, DEF.c.version, DEF.c.source_text)
                                .where(DEF.c.source_text.is_not(None))).all()
            conn.rollback()
        return [(r[0], r[1], r[2]) for r in rows]

    def register_definition(self, name: str, version: int, content_hash: str,
                            source_text: str | None = None) -> None:
        for _ in range(2):
            with self.engine.begin() as conn:
                row = conn.execute(select(DEF.c.content_hash).where(
                    DEF.c.name == name, DEF.c.version == version)).first()
                if row is None:
                    try:
                        conn.execute(insert(DEF).values(name=name, version=version,
                                                        content_hash=content_hash,
                                                        registered_at=_utcnow(),
                                                        source_text=source_text))
                        return
                    except IntegrityError:
                        continue
            if row[0] != content_hash and content_hash:
                raise DefinitionError([
                    f"definition {name!r} version {version} has changed since it was first "
                    f"used (stored content hash {row[0][:12]}, file {content_hash[:12]}): cases "
                    f"keep the version they started on, so bump `version:` to "
                    f"{version + 1} (or higher) to publish a change"])
            if source_text is not None:
                with self.engine.begin() as conn:
                    conn.execute(update(DEF).where(DEF.c.name == name, DEF.c.version == version,
                                                   DEF.c.source_text.is_(None))
                                 .values(source_text=source_text))
            return

    def close(self) -> None:
        self.engine.dispose()


__all__ = ["SqlStore", "SqlUnitOfWork"]
