"""One transaction of the engine's store on one connection: the ``UnitOfWork`` port on SQL.

Reads flush deferred writes first, so a transaction always reads what it wrote. Writes go
through the statements compiled once (``storage.statements``) on the driver's cursor where the
driver allows, through SQLAlchemy otherwise; a tick's batch (or, on PostgreSQL, one command)
may hold its writes and send them together, still checked before the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Executable, Row, insert, or_, select, text, update

from icsflow.storage.compiled import CompiledQuery
from icsflow.storage.records import (
    chunks,
    deadline_record,
    history_entry,
    instance_record,
    joined_timer,
    load_children,
    timer_record,
    to_instance,
    utcnow,
)
from icsflow.storage.statements import (
    CANCEL_TIMERS,
    DEFERRED,
    DIRECT,
    DIRECT_CASE_AND_TIMERS,
    DIRECT_HISTORY_AND_DEADLINES,
    FIELD_NAME,
    IN_INSTANCES,
    LOAD_CASE_AND_TIMERS,
    LOAD_HISTORY_AND_DEADLINES,
    PENDING,
    SET_OUTCOME,
    STATEMENTS,
    D,
    I,
    T,
    count_query,
    deadline_update,
    direct_cancel,
)
from icsflow.storage.written import written_case
from icsflow.workflow.errors import ConcurrencyConflict, InstanceNotFound
from icsflow.workflow.instance import HistoryEntry, Instance, OutboxStatus
from icsflow.workflow.ports import Change, DeadlineRecord, InstanceRecord, Snapshot, TimerRecord


class SqlUnitOfWork:
    """One transaction on one connection. ``tick`` fires a batch of timers in one transaction
    without savepoints and, if any firing fails, rolls it back and redoes it one per commit.

    With ``deferring`` on (a tick's optimistic batch), the rows a firing writes (case insert or
    version-checked update, timer taken, history, deadlines, timers, outbox) are kept and sent
    as one ``executemany`` per statement before the next read and before the commit, so a
    batch of 500 firings costs a handful of round trips instead of 2,000. The checks stay: a
    version or a timer that no longer matches fails the flush with ``ConcurrencyConflict``,
    still inside the transaction, and the caller redoes the batch one firing at a time with
    ``deferring`` off, where each check answers at once."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.deferring = False
        self._one_command = False  # deferring for one command, not a tick's batch
        self.rows_written = 0  # the hot writes' rows, for SqlStore's statistics check
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._takes: dict[int, dict[str, Any]] = {}  # deferred take of a timer, by its id
        self._multi_rowcount = bool(conn.dialect.supports_sane_multi_rowcount)
        self._direct = (conn.dialect.name, conn.dialect.paramstyle) in (
            ("sqlite", "qmark"), ("postgresql", "pyformat"))
        self._cursor: Any = None
        # What this transaction read and wrote per case, so that ``written`` can give back the
        # case as stored without reading it again.
        self._loaded: dict[str, Snapshot] = {}
        self._applied: dict[str, list[tuple[Change, list[Row[Any]]]]] = {}

    def _defer(self, key: str, rows: list[dict[str, Any]]) -> None:
        self._pending.setdefault(key, []).extend(rows)

    def pipeline_writes(self) -> None:
        """One command (``start``, ``fire``): on PostgreSQL its writes are held to the end and
        sent in one pipeline (one round trip instead of one per row; the version check is
        made on the pipeline's row counts, still before the commit). SQLite runs in process,
        where there is no round trip to save: nothing changes."""
        if self._direct and self.conn.dialect.name == "postgresql":
            self.deferring = True
            self._one_command = True

    def flush(self) -> None:
        """Send the deferred writes (a no-op when there are none)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        self._takes.clear()
        if self._direct and self.conn.dialect.name == "postgresql":
            touched_by = self._flush_pipelined(pending)
        else:
            touched_by = {}
            for key, _stmt, checked in DEFERRED:
                rows = pending.get(key)
                if not rows:
                    continue
                if checked and not self._multi_rowcount:
                    touched_by[key] = sum(self._run(key, [row]) for row in rows)
                else:
                    touched_by[key] = self._run(key, rows)
        for key, _stmt, checked in DEFERRED:
            rows = pending.get(key)
            if not (checked and rows) or touched_by[key] == len(rows):
                continue
            if self._one_command:
                iid = rows[0].get("iid")
                raise ConcurrencyConflict(instance_id=iid)
            what = "case" if key == "bump" else "timer"
            raise ConcurrencyConflict(
                f"a {what} of this batch was changed by someone else since it was read "
                f"({touched_by[key]} of {len(rows)} written); the batch is redone one at a "
                "time")

    def _flush_pipelined(self, pending: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
        """Every deferred statement sent in one psycopg pipeline (one cursor each, so each
        keeps its row count), in ``DEFERRED`` order; a failing one fails the pipeline."""
        driver: Any = self.conn.connection.driver_connection
        cursors: dict[str, Any] = {}
        with driver.pipeline():
            for key, _stmt, _checked in DEFERRED:
                rows = pending.get(key)
                if rows:
                    cursors[key] = driver.cursor()
                    self.rows_written += len(rows)
                    DIRECT[key].run(self.conn, cursors[key], rows)
        return {key: int(cur.rowcount) for key, cur in cursors.items()}

    def load(self, instance_id: str) -> Snapshot:
        self.flush()
        p = {"iid": instance_id}
        rows = self._query(DIRECT_CASE_AND_TIMERS, LOAD_CASE_AND_TIMERS, p)
        if not rows:
            raise InstanceNotFound(instance_id)
        row = rows[0]
        timers = [joined_timer(r) for r in rows if r.t_id is not None]
        history: list[HistoryEntry] = []
        deadlines: list[DeadlineRecord] = []
        for r in self._query(DIRECT_HISTORY_AND_DEADLINES, LOAD_HISTORY_AND_DEADLINES, p):
            if r.k == "h":
                history.append(history_entry(r))
            else:
                deadlines.append(deadline_record(r))
        snap = Snapshot(instance_record(row), tuple(history), tuple(deadlines), tuple(timers))
        self._loaded[instance_id] = snap
        return snap

    def load_many(self, instance_ids: Sequence[str]) -> dict[str, Snapshot]:
        """Snapshots of many instances in four queries (a tick's batch), not four each."""
        self.flush()
        ids = list(dict.fromkeys(instance_ids))
        rows: dict[str, InstanceRecord] = {}
        if self._direct and self._cursor is None:
            self._cursor = self.conn.connection.cursor()
        for chunk in chunks(ids):
            found = (IN_INSTANCES.run(self.conn, self._cursor, chunk) if self._direct
                     else self.conn.execute(select(I).where(I.c.id.in_(chunk))))
            for r in found:
                rows[r.id] = instance_record(r)
        hist, dls, tms = load_children(self.conn, list(rows), self._cursor)
        return {i: Snapshot(rec, tuple(hist[i]), tuple(dls[i]), tuple(tms[i]))
                for i, rec in rows.items()}

    def count_open(self, definition: str, field_name: str, value: object, *,
                   exclude: str | None = None) -> int:
        """How many open cases of ``definition`` hold ``value`` in ``field_name`` (an IRO's
        caseload). A text value (an identifier: the only kind the shipped definitions count)
        is counted by the database, a JSON string equal to it; any other value in Python over
        the open cases' data, with Python's equality. Reading every open case into Python
        made each allocation cost in proportion to the county (a fifth of a county year)."""
        self.flush()
        if isinstance(value, str) and FIELD_NAME.match(field_name) and self._direct:
            if self._cursor is None:
                self._cursor = self.conn.connection.cursor()
            query = count_query(self.conn.dialect.name, field_name, exclude is not None)
            params = {"definition": definition, "value": value, "exclude": exclude}
            return int(query.run(self.conn, self._cursor, params)[0].n)
        rows = self.conn.execute(select(I.c.id, I.c.data).where(
            I.c.definition == definition, I.c.closed_at.is_(None)))
        return sum(1 for r in rows if r.id != exclude and (r.data or {}).get(field_name) == value)

    def refs_in_use(self, ref: str, *, spells: bool = False) -> set[str]:
        """``ref`` if a case has it, and with ``spells`` also ``ref-2``, ``ref-3``... A start
        checks its reference here before writing: on PostgreSQL under a transaction-scoped
        advisory lock on the reference (two starts of one reference cannot both find it
        free); SQLite writes one at a time."""
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:r))"),
                              {"r": f"ref:{ref}"})
        self.flush()
        stmt = select(I.c.ref).where(I.c.ref == ref)
        if spells:
            escaped = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = select(I.c.ref).where(or_(I.c.ref == ref,
                                             I.c.ref.like(f"{escaped}-%", escape="\\")))
        found = {r[0] for r in self.conn.execute(stmt)}
        return {r for r in found if r == ref or (spells and r.startswith(f"{ref}-"))}

    def load_child(self, child: str) -> list[Snapshot]:
        """Serialised per child: two transactions that both send signals for one child (a plan
        made while the child is being made looked after) must not each miss the other's case.
        PostgreSQL: a transaction-scoped advisory lock on the child, taken before reading, held
        to commit (the second reads the first's committed rows). SQLite writes one at a time."""
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:c))"), {"c": child})
        self.flush()
        ids = [r[0] for r in self.conn.execute(
            select(I.c.id).where(I.c.child == child, I.c.closed_at.is_(None))
            .order_by(I.c.started_at, I.c.id))]
        snaps = self.load_many(ids)
        return [snaps[i] for i in ids if i in snaps]

    def apply(self, change: Change, *, owner: str | None = None,
              lease_until: datetime | None = None) -> list[TimerRecord]:
        """Write ``change`` in this order: the case row (inserted, or updated if its version
        still matches), its cancelled timers, history, deadlines, new timers (those due by
        ``change.claim_new_timers_before`` leased to ``owner`` at once and returned) and
        outbox rows. Deferring, all but the cancels and the leased timers wait for the flush."""
        now = change.recorded_at or utcnow()
        self._write_case(change, now)
        cancelled, rows = self._cancel_timers(change)
        self._applied.setdefault(change.instance_id, []).append((change, rows))
        self._write_history(change, cancelled)
        self._write_deadlines(change, now)
        claimed = self._write_timers(change, now, owner, lease_until)
        self._queue_outbox(change, now)
        return claimed

    def _send(self, key: str, rows: list[dict[str, Any]]) -> None:
        """One of the deferrable writes: held for the flush when deferring, else sent now."""
        if self.deferring:
            self._defer(key, rows)
        else:
            self._execute(key, rows)

    def _write_case(self, change: Change, now: datetime) -> None:
        """Insert a new case, or bump the version of the one read (the optimistic check)."""
        if change.new_instance is not None:
            n = change.new_instance
            self._send("instance", [{
                "id": n.id, "definition": n.definition,
                "definition_version": n.definition_version, "ref": n.ref, "state": n.state,
                "data": n.data, "version": n.row_version, "created_at": n.created_at,
                "updated_at": now, "started_at": n.started_at, "closed_at": n.closed_at,
                "child": n.child, "family": n.family}])
        elif change.bump_version:
            bump = {"iid": change.instance_id, "expected": change.expected_version,
                    "new_state": change.state, "new_data": change.data,
                    "new_closed": change.closed_at, "now": now}
            if self.deferring:
                self._defer("bump", [bump])
            elif self._run("bump", [bump]) != 1:
                raise ConcurrencyConflict(instance_id=change.instance_id)

    def _cancel_timers(self, change: Change) -> tuple[list[dict[str, str]], list[Row[Any]]]:
        """Cancel the change's timers still pending: (what the history row records of them,
        the rows cancelled)."""
        if not change.cancel_timers:
            return [], []
        # Timers of a snapshot: their rows exist (a read flushes deferred writes first).
        tids = list(change.cancel_timers)
        rows = self._query(direct_cancel(len(tids)), CANCEL_TIMERS, {"tids": tids} if not
                           self._direct else {f"t{k}": t for k, t in enumerate(tids)})
        cancelled = [{"name": r.name, "due_at": r.due_at.isoformat()}
                     for r in sorted(rows, key=lambda r: (r.due_at, r.id))
                     if r.kind == "timer"]
        return cancelled, rows

    def _write_history(self, change: Change, cancelled: list[dict[str, str]]) -> None:
        """The history rows; the last one records the timers the change cancelled."""
        if not change.history:
            return
        last = len(change.history) - 1
        self._send("history", [
            {"instance_id": change.instance_id, "event": h.event, "from_state": h.from_state,
             "to_state": h.to_state, "actor_id": h.actor, "role": h.role,
             "happened_at": h.at, "recorded_at": h.recorded_at, "note": h.note,
             "changes": dict(h.changes),
             "cancelled_timers": (cancelled or None) if n == last else None}
            for n, h in enumerate(change.history)])

    def _write_deadlines(self, change: Change, now: datetime) -> None:
        """Deadline updates (each only if its status is still one it names), then new ones."""
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
            self._update_deadline(u.id, vals, [s.value for s in u.only_if_status or ()])
        if change.new_deadlines:
            self._send("deadline", [
                {"instance_id": change.instance_id, "name": d.name, "due_date": d.due,
                 "due_at": d.due_at, "exact": d.exact, "status": d.status.value,
                 "met_at": d.met_at, "created_at": now} for d in change.new_deadlines])

    def _write_timers(self, change: Change, now: datetime, owner: str | None,
                      lease_until: datetime | None) -> list[TimerRecord]:
        """New timers; those already due within a tick are inserted leased to ``owner`` at
        once (the tick fires them next) and returned with their ids."""
        claimed: list[TimerRecord] = []
        plain: list[dict[str, Any]] = []
        before = change.claim_new_timers_before
        for t in change.new_timers:
            values = {"instance_id": change.instance_id, "name": t.name, "kind": t.kind,
                      "deadline": t.deadline, "state": t.state, "due_at": t.due_at,
                      "first_due_at": t.first_due_at, "action": t.action, "status": "pending",
                      "attempts": 0, "repeat_count": t.occurrence, "created_at": now}
            if owner is not None and before is not None and t.due_at <= before:
                values.update(claimed_by=owner, claim_expires_at=lease_until)
                if "instance" in self._pending:  # its case row goes first
                    self.flush()
                inserted = self.conn.execute(insert(T).values(**values).returning(*T.c)).one()
                claimed.append(timer_record(inserted))
            else:
                plain.append(values)
        if plain:
            self._send("timer", plain)
        return claimed

    def _queue_outbox(self, change: Change, now: datetime) -> None:
        """The messages the change queues: pending ones due now, the rest stored as given."""
        if change.outbox:
            self._send("outbox", [
                {"instance_id": m.instance_id or change.instance_id,
                 "recipients": list(m.recipients), "subject": m.subject, "body": m.body,
                 "template": m.template, "urgent": m.urgent, "status": m.status.value,
                 "attempts": 0, "next_attempt_at": now if m.status is OutboxStatus.PENDING
                 else None, "last_error": m.last_error, "idempotency_key": m.idempotency_key,
                 "created_at": now} for m in change.outbox])

    def written(self, instance_id: str) -> Instance:
        """The case as this transaction wrote it, built from the snapshot it read and the one
        change it applied (values as the database gives them back: UTC times, JSON data), so
        ``start`` and ``fire`` return it without reading the case again; read back in the
        transaction when the case was written more than once or not read first."""
        applied = self._applied.get(instance_id, [])
        snap = self._loaded.get(instance_id)
        if len(applied) != 1 or (snap is None and applied[0][0].new_instance is None):
            fresh = self.load(instance_id)
            return to_instance(fresh.instance, fresh.history, fresh.deadlines, fresh.timers)
        change, cancelled_rows = applied[0]
        return written_case(snap, change, cancelled_rows)

    def _execute(self, key: str, rows: list[dict[str, Any]]) -> None:
        self._run(key, rows)

    def _update_deadline(self, deadline_id: int, values: dict[str, Any],
                         only_if: list[str]) -> None:
        if not self._direct:
            stmt = update(D).where(D.c.id == deadline_id)
            if only_if:
                stmt = stmt.where(D.c.status.in_(only_if))
            self.conn.execute(stmt.values(**values))
            return
        if self._cursor is None:
            self._cursor = self.conn.connection.cursor()
        row = {"did": deadline_id, **{f"v_{k}": v for k, v in values.items()},
               **{f"s{k}": v for k, v in enumerate(only_if)}}
        deadline_update(tuple(values), len(only_if)).run(self.conn, self._cursor, [row])

    def _query(self, direct: CompiledQuery, stmt: Executable, params: dict[str, Any]) -> list[Any]:
        if not self._direct:
            return list(self.conn.execute(stmt, params).all())
        if self._cursor is None:
            self._cursor = self.conn.connection.cursor()
        return direct.run(self.conn, self._cursor, params)

    def _run(self, key: str, rows: list[dict[str, Any]]) -> int:
        """One of the deferrable writes, now; returns the rows it touched."""
        if not self._direct:
            return int(self.conn.execute(STATEMENTS[key], rows).rowcount)
        if self._cursor is None:
            self._cursor = self.conn.connection.cursor()
        self.rows_written += len(rows)
        return DIRECT[key].run(self.conn, self._cursor, rows)

    def extend_claims(self, timer_ids: Sequence[int], owner: str,
                      lease_until: datetime) -> None:
        self.flush()
        ids = list(timer_ids)
        for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
            self.conn.execute(update(T).where(T.c.id.in_(chunk), T.c.claimed_by == owner,
                                              T.c.status == PENDING)
                              .values(claim_expires_at=lease_until))

    def take_over_timers(self, timer_ids: Sequence[int], owner: str, lease_until: datetime,
                         now: datetime) -> list[TimerRecord]:
        self.flush()
        rows = self.conn.execute(
            update(T).where(T.c.id.in_(list(timer_ids)), T.c.status == PENDING,
                            or_(T.c.claimed_by.is_(None), T.c.claim_expires_at < now))
            .values(claimed_by=owner, claim_expires_at=lease_until).returning(*T.c)).all()
        return sorted((timer_record(r) for r in rows), key=lambda t: (t.due_at, t.id))

    def release_timers(self, timer_ids: Sequence[int], owner: str) -> None:
        self.flush()
        self.conn.execute(update(T).where(T.c.id.in_(list(timer_ids)), T.c.claimed_by == owner,
                                          T.c.status == PENDING)
                          .values(claimed_by=None, claim_expires_at=None))

    def take_timer(self, timer_id: int, owner: str, fired_at: datetime, outcome: str) -> bool:
        """Deferring, the take is checked when the batch is flushed (True until then)."""
        take = {"tid": timer_id, "owner": owner, "fired_at": fired_at, "outcome": outcome}
        if self.deferring:
            self._defer("take", [take])
            self._takes[timer_id] = take
            return True
        return self._run("take", [take]) == 1

    def set_outcome(self, timer_id: int, outcome: str, error: str | None = None) -> None:
        take = self._takes.get(timer_id)
        if take is not None and error is None:  # the outcome rides on the deferred take
            take["outcome"] = outcome
            return
        self.flush()
        self.conn.execute(SET_OUTCOME, {"tid": timer_id, "outcome": outcome, "error": error})

    def timer_failed(self, timer_id: int, owner: str, error: str, retry_at: datetime,
                     give_up: bool) -> None:
        values: dict[str, Any] = {"attempts": T.c.attempts + 1, "last_error": error[:2000],
                                  "claim_expires_at": retry_at}
        if give_up:
            values.update(status="failed", outcome="failed", claimed_by=None)
        self.flush()
        self.conn.execute(update(T).where(T.c.id == timer_id, T.c.claimed_by == owner)
                          .values(**values))

    def commit(self) -> None:
        self.flush()
        self.conn.commit()
        self.conn.begin()

    def rollback(self) -> None:
        self._pending.clear()
        self._takes.clear()
        self.conn.rollback()
        self.conn.begin()


__all__ = ["SqlUnitOfWork"]
