"""Repositories implementing ``workflow.ports`` with SQLAlchemy Core on the typed tables.

Core statements (not ORM units of work) because a tick writes thousands of small rows: the ORM's
identity map and flush would double the cost without buying anything here.
"""

from __future__ import annotations

import builtins
import json
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

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
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import QueuePool

from icsflow.storage.changes import SqlChangeStore
from icsflow.storage.compiled import CompiledIn, CompiledQuery, CompiledWrite, driver_cursor
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
    NewTimer,
    Snapshot,
    TimerRecord,
)

# Silent unless the host configures logging (the library logs nothing by default).
log = logging.getLogger("icsflow.storage")
I = cast(Table, InstanceRow.__table__)  # noqa: E741
H = cast(Table, HistoryRow.__table__)
D = cast(Table, DeadlineRow.__table__)
T = cast(Table, TimerRow.__table__)
O = cast(Table, OutboxRow.__table__)  # noqa: E741
DEF = cast(Table, DefinitionRow.__table__)


_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# The status a partial index is built on (``ix_timers_pending_due``, the outbox's) is written
# into the SQL, not bound: SQLite prepares a statement again on every execution when a bound
# value could change its plan (a partial index's condition), which made the one-case read cost
# four times its work; PostgreSQL can match a partial index only to a literal in a generic plan.
PENDING: Any = literal_column("'pending'")

# Statements used once per firing are built once: building a Core expression costs more than
# running it on a small table.
# One case in two queries: the case row joined with its pending timers (a row per timer), and
# its history and deadlines in one UNION ALL (each part fills its own columns, NULLs typed as
# the other part's columns so that both dialects accept the union and results convert).
_T_COLS = [c.label(f"t_{c.name}") for c in T.c]
_LOAD_IT = (select(I, *_T_COLS)
            .select_from(I.outerjoin(T, and_(T.c.instance_id == I.c.id,
                                             T.c.status == PENDING)))
            .where(I.c.id == bindparam("iid")).order_by(T.c.due_at, T.c.id))
_H_PART = ("event", "from_state", "to_state", "actor_id", "role", "happened_at", "recorded_at",
           "note", "changes", "cancelled_timers")
_D_PART = ("name", "due_date", "due_at", "exact", "status", "met_at")


def _part(table: Table, own: tuple[str, ...], other: Table, others: tuple[str, ...],
          kind: str) -> Any:
    cols = [literal(kind).label("k"), table.c.id.label("id")]
    for name in _H_PART + _D_PART:
        if name in own:
            cols.append(table.c[name].label(name))
        else:
            cols.append(sql_cast(null(), other.c[name].type).label(name))
    return select(*cols).where(table.c.instance_id == bindparam("iid"))


_LOAD_HD = union_all(_part(H, _H_PART, D, _D_PART, "h"),
                     _part(D, _D_PART, H, _H_PART, "d")).order_by("k", "id")
_TAKE = (update(T).where(T.c.id == bindparam("tid"), T.c.status == PENDING,
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
_INS_I = insert(I)
_INS_D = insert(D)
_CANCEL = (update(T).where(T.c.id.in_(bindparam("tids", expanding=True)), T.c.status == PENDING)
           .values(status="cancelled", outcome="cancelled", claimed_by=None,
                   claim_expires_at=None)
           .returning(T.c.name, T.c.kind, T.c.due_at, T.c.id))
_OUTCOME = (update(T).where(T.c.id == bindparam("tid"))
            .values(outcome=bindparam("outcome"), last_error=bindparam("error")))
# Deferred writes are sent in this order (rows referenced by others first), one executemany
# per statement; the two UPDATEs must touch one row per parameter set.
_DEFERRED: tuple[tuple[str, Any, bool], ...] = (
    ("instance", _INS_I, False), ("bump", _BUMP, True), ("take", _TAKE, True),
    ("history", _INS_H, False), ("deadline", _INS_D, False), ("timer", _INS_T, False),
    ("outbox", _INS_O, False))
_STATEMENTS = {key: stmt for key, stmt, _ in _DEFERRED}


_DIRECT = {key: CompiledWrite(stmt) for key, stmt, _ in _DEFERRED}


_IN_INSTANCES = CompiledIn(lambda match: select(I).where(match(I.c.id)))
_IN_HISTORY = CompiledIn(lambda match: select(H).where(match(H.c.instance_id)).order_by(H.c.id))
_IN_DEADLINES = CompiledIn(
    lambda match: select(D).where(match(D.c.instance_id)).order_by(D.c.id))
_IN_TIMERS = CompiledIn(lambda match: select(T).where(match(T.c.instance_id),
                                                     T.c.status == PENDING)
                       .order_by(T.c.due_at, T.c.id))


def _claim_statement(dialect: str, limit: int) -> Any:
    """Lease up to ``limit`` due timers (``:now``) to ``:owner`` until ``:lease_until``.
    A timer whose case has an earlier pending timer under a live lease (by ``:clock_now``)
    waits for it: within one case timers fire in due order, whichever worker holds them."""
    E = T.alias("earlier")  # noqa: N806
    clock_now = bindparam("clock_now", type_=UTCDateTime)
    held_earlier = exists().where(
        E.c.instance_id == T.c.instance_id, E.c.status == PENDING,
        E.c.claimed_by.is_not(None), E.c.claim_expires_at >= clock_now,
        or_(E.c.due_at < T.c.due_at, and_(E.c.due_at == T.c.due_at, E.c.id < T.c.id)))
    inner = (select(T.c.id).where(T.c.status == PENDING,
                                  T.c.due_at <= bindparam("now", type_=UTCDateTime),
                                  or_(T.c.claimed_by.is_(None),
                                      T.c.claim_expires_at < clock_now),
                                  ~held_earlier)
             .order_by(T.c.due_at, T.c.id).limit(limit))
    if dialect == "postgresql":
        inner = inner.with_for_update(skip_locked=True)
    return (update(T).where(T.c.id.in_(inner.scalar_subquery()))
            .values(claimed_by=bindparam("owner", type_=String),
                    claim_expires_at=bindparam("lease_until", type_=UTCDateTime))
            .returning(*T.c))


_CLAIMS: dict[tuple[str, int], CompiledQuery] = {}


def _claim_query(dialect: str, limit: int) -> CompiledQuery:
    found = _CLAIMS.get((dialect, limit))
    if found is None:
        found = _CLAIMS[(dialect, limit)] = CompiledQuery(_claim_statement(dialect, limit))
    return found


_DEADLINE_UPDATES: dict[tuple[tuple[str, ...], int], CompiledWrite] = {}


def _deadline_update(keys: tuple[str, ...], only_if: int) -> CompiledWrite:
    """A deadline's update setting ``keys`` (bound as ``v_KEY``), if its status is one of
    ``only_if`` given (bound as ``s0``, ``s1``...): compiled once per shape."""
    found = _DEADLINE_UPDATES.get((keys, only_if))
    if found is None:
        stmt = update(D).where(D.c.id == bindparam("did"))
        if only_if:
            stmt = stmt.where(D.c.status.in_([bindparam(f"s{k}", type_=String)
                                              for k in range(only_if)]))
        stmt = stmt.values({k: bindparam(f"v_{k}", type_=D.c[k].type) for k in keys})
        found = _DEADLINE_UPDATES[(keys, only_if)] = CompiledWrite(stmt)
    return found


_COUNTS: dict[tuple[str, str, bool], CompiledQuery] = {}


def _count_query(dialect: str, field_name: str, exclude: bool) -> CompiledQuery:
    """Open cases of ``:definition`` whose ``field_name`` is the JSON string ``:value``."""
    key = (dialect, field_name, exclude)
    found = _COUNTS.get(key)
    if found is None:
        stmt = select(func.count().label("n")).select_from(I).where(
            I.c.definition == bindparam("definition", type_=String),
            I.c.closed_at.is_(None))
        if exclude:
            stmt = stmt.where(I.c.id != bindparam("exclude", type_=String))
        value = bindparam("value", type_=String)
        # The field is written into the SQL (a checked identifier), as in the index
        # ``SqlStore.index_counted_fields`` makes: a bound one would not match it.
        if dialect == "sqlite":
            path: Any = literal_column(f"""'$."{field_name}"'""")
            stmt = stmt.where(func.json_type(I.c.data, path) == "text",
                              func.json_extract(I.c.data, path) == value)
        else:
            name: Any = literal_column(f"'{field_name}'")
            stmt = stmt.where(func.json_typeof(I.c.data.op("->")(name)) == "string",
                              I.c.data.op("->>")(name) == value)
        found = _COUNTS[key] = CompiledQuery(stmt)
    return found


_DIRECT_IT = CompiledQuery(_LOAD_IT)
_DIRECT_HD = CompiledQuery(_LOAD_HD)
_DIRECT_CANCEL: dict[int, CompiledQuery] = {}


def _direct_cancel(n: int) -> CompiledQuery:
    """``_CANCEL`` for ``n`` timer ids (one compiled statement per count)."""
    found = _DIRECT_CANCEL.get(n)
    if found is None:
        stmt = (update(T).where(T.c.id.in_([bindparam(f"t{k}") for k in range(n)]),
                                T.c.status == PENDING)
                .values(status="cancelled", outcome="cancelled", claimed_by=None,
                        claim_expires_at=None)
                .returning(T.c.name, T.c.kind, T.c.due_at, T.c.id))
        found = _DIRECT_CANCEL[n] = CompiledQuery(stmt)
    return found


def _utcnow() -> datetime:
    return datetime.now(UTC)


# A status column's member by its stored value: a dict lookup, where calling the enum on the
# value costs a tenth of building a timer from its row (an unknown value still fails: KeyError).
_TIMER_STATUS = {m.value: m for m in TimerStatus}
_DEADLINE_STATUS = {m.value: m for m in DeadlineStatus}


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
                                             status=_DEADLINE_STATUS[r.status], exact=r.exact,
                                             met_at=r.met_at))


def _joined_timer(r: Row[Any]) -> TimerRecord:
    """A timer from ``_LOAD_IT``'s ``t_`` columns."""
    return TimerRecord(id=r.t_id, instance_id=r.t_instance_id, name=r.t_name, kind=r.t_kind,
                       due_at=r.t_due_at, action=r.t_action, status=_TIMER_STATUS[r.t_status],
                       deadline=r.t_deadline, state=r.t_state, first_due_at=r.t_first_due_at,
                       occurrence=r.t_repeat_count, attempts=r.t_attempts,
                       claimed_by=r.t_claimed_by, claim_expires_at=r.t_claim_expires_at)


def _timer(r: Row[Any]) -> TimerRecord:
    return TimerRecord(id=r.id, instance_id=r.instance_id, name=r.name, kind=r.kind,
                       due_at=r.due_at, action=r.action, status=_TIMER_STATUS[r.status],
                       deadline=r.deadline, state=r.state, first_due_at=r.first_due_at,
                       occurrence=r.repeat_count, attempts=r.attempts,
                       claimed_by=r.claimed_by, claim_expires_at=r.claim_expires_at)


def _timer_info(t: TimerRecord | NewTimer, due_at: datetime) -> TimerInfo:
    """What a case shows of one of its timers (a stored one, or one just planned: pending)."""
    status = t.status if isinstance(t, TimerRecord) else TimerStatus.PENDING
    return TimerInfo(t.name, due_at, t.action, status, t.deadline, t.state, t.occurrence)


def _to_instance(rec: InstanceRecord, history: Sequence[HistoryEntry],
                 deadlines: Sequence[DeadlineRecord], timers: Sequence[TimerRecord]) -> Instance:
    return Instance(
        id=rec.id, definition=rec.definition, version=rec.definition_version, ref=rec.ref,
        state=rec.state, data=dict(rec.data), deadline_list=tuple(d.info for d in deadlines),
        timers=tuple(_timer_info(t, t.due_at)
                     for t in sorted(timers, key=lambda t: (t.due_at, t.id)) if t.kind == "timer"),
        history=tuple(history), row_version=rec.row_version, created_at=rec.created_at,
        closed_at=rec.closed_at, child=rec.child, family=rec.family,
        started_at=rec.started_at)


def _chunks(ids: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    """``IN`` lists of at most ``size`` ids (SQLite limits bound parameters)."""
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def _load_children(conn: Connection, ids: Sequence[str], cursor: Any = None) -> tuple[
        dict[str, list[HistoryEntry]], dict[str, list[DeadlineRecord]],
        dict[str, list[TimerRecord]]]:
    """History, deadlines and pending timers of many instances: three queries per 500 ids
    (compiled once, on the driver's cursor where the driver allows; ``cursor`` reuses one)."""
    hist: dict[str, list[HistoryEntry]] = {i: [] for i in ids}
    dls: dict[str, list[DeadlineRecord]] = {i: [] for i in ids}
    tms: dict[str, list[TimerRecord]] = {i: [] for i in ids}
    if cursor is None:
        cursor = driver_cursor(conn)
    for chunk in _chunks(ids):
        if cursor is not None:
            h_rows = _IN_HISTORY.run(conn, cursor, chunk)
            d_rows = _IN_DEADLINES.run(conn, cursor, chunk)
            t_rows = _IN_TIMERS.run(conn, cursor, chunk)
        else:
            h_rows = list(conn.execute(select(H).where(H.c.instance_id.in_(chunk))
                                       .order_by(H.c.id)))
            d_rows = list(conn.execute(select(D).where(D.c.instance_id.in_(chunk))
                                       .order_by(D.c.id)))
            t_rows = list(conn.execute(select(T).where(T.c.instance_id.in_(chunk),
                                                       T.c.status == PENDING)
                                       .order_by(T.c.due_at, T.c.id)))
        for r in h_rows:
            hist[r.instance_id].append(_history(r))
        for r in d_rows:
            dls[r.instance_id].append(_deadline(r))
        for r in t_rows:
            tms[r.instance_id].append(_timer(r))
    return hist, dls, tms


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


_JSON_SCALARS = (str, int, bool, type(None))


def _as_stored(value: Any) -> Any:
    """A JSON column's value as the database gives it back. A flat object of text keys and
    text, integer, boolean or null values (most case data, every empty one) comes back equal:
    copied without the round trip through JSON text."""
    if type(value) is dict and all(type(k) is str and type(v) in _JSON_SCALARS
                                   for k, v in value.items()):
        return dict(value)
    return json.loads(json.dumps(value))


_R = TypeVar("_R")


def _with(record: _R, **changes: Any) -> _R:
    """``dataclasses.replace`` for the frozen records built here, whose fields are all init
    fields (``tests/unit/test_as_stored.py`` checks it): ``replace`` walks the fields one by one
    and cost a third of building a returned case."""
    return type(record)(**{**record.__dict__, **changes})


def _built(snap: Snapshot | None, change: Change, cancelled_rows: Sequence[Row[Any]],
           ) -> Instance:
    """``_to_instance`` of what ``change`` wrote over ``snap`` (None: a new case), built
    straight into the returned case: no intermediate case or timer records."""
    base: InstanceRecord
    if change.new_instance is not None:
        base = n = change.new_instance
        state, row_version, data = n.state, n.row_version, _as_stored(n.data)
        created_at = _utc(n.created_at) or n.created_at
        started_at = _utc(n.started_at) or n.started_at
        closed_at = _utc(n.closed_at)
        history: list[HistoryEntry] = []
        deadlines: list[DeadlineRecord] = []
        kept: list[TimerRecord] = []
    else:
        assert snap is not None
        base = old = snap.instance
        state = change.state if change.state is not None else old.state
        data = _as_stored(change.data) if change.data is not None else dict(old.data)
        closed_at = _utc(change.closed_at) if change.closed_at is not None else old.closed_at
        row_version = old.row_version + 1 if change.bump_version else old.row_version
        created_at, started_at = old.created_at, old.started_at
        history, deadlines = list(snap.history), list(snap.deadlines)
        gone = {r.id for r in cancelled_rows}
        kept = [t for t in snap.timers if t.id not in gone]
    cancelled = tuple((r.name, r.due_at) for r in sorted(cancelled_rows,
                                                         key=lambda r: (r.due_at, r.id))
                      if r.kind == "timer")
    last = len(change.history) - 1
    for k, h in enumerate(change.history):
        history.append(_with(h, at=_utc(h.at) or h.at,
                               recorded_at=_utc(h.recorded_at) or h.recorded_at,
                               changes=_as_stored(dict(h.changes)),
                               cancelled_timers=cancelled if k == last else ()))
    for u in change.deadline_updates:
        for k, d in enumerate(deadlines):
            if d.id != u.id or (u.only_if_status and d.info.status not in u.only_if_status):
                continue
            info = d.info
            deadlines[k] = DeadlineRecord(d.id, _with(
                info, status=u.status if u.status is not None else info.status,
                met_at=_utc(u.met_at) if u.met_at is not None else info.met_at,
                due=u.due if u.due is not None else info.due,
                due_at=u.due_at.astimezone(UTC) if u.due_at is not None else info.due_at))
    infos = [d.info for d in deadlines]
    infos.extend(_with(d, due_at=_utc(d.due_at) or d.due_at, met_at=_utc(d.met_at))
                 for d in change.new_deadlines)
    # The case's timers in due order; new ones have no id yet: they sort after the stored ones
    # due at the same instant, as their ids will.
    timers = [(t.due_at, t.id, _timer_info(t, t.due_at)) for t in kept if t.kind == "timer"]
    last_id = max((t.id for t in kept), default=0)
    for k, planned in enumerate(change.new_timers, 1):
        if planned.kind == "timer":
            due = _utc(planned.due_at) or planned.due_at
            timers.append((due, last_id + k, _timer_info(planned, due)))
    timers.sort(key=lambda x: (x[0], x[1]))
    return Instance(
        id=base.id, definition=base.definition, version=base.definition_version, ref=base.ref,
        state=state, data=data, deadline_list=tuple(infos),
        timers=tuple(info for _, _, info in timers), history=tuple(history),
        row_version=row_version, created_at=created_at, closed_at=closed_at, child=base.child,
        family=base.family, started_at=started_at)


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
            for key, _stmt, checked in _DEFERRED:
                rows = pending.get(key)
                if not rows:
                    continue
                if checked and not self._multi_rowcount:
                    touched_by[key] = sum(self._run(key, [row]) for row in rows)
                else:
                    touched_by[key] = self._run(key, rows)
        for key, _stmt, checked in _DEFERRED:
            rows = pending.get(key)
            if not (checked and rows) or touched_by[key] == len(rows):
                continue
            if self._one_command:
                iid = rows[0].get("iid")
                raise ConcurrencyConflict(
                    f"instance {iid} was changed by someone else since it was read; read it "
                    "again and retry", instance_id=iid)
            what = "case" if key == "bump" else "timer"
            raise ConcurrencyConflict(
                f"a {what} of this batch was changed by someone else since it was read "
                f"({touched_by[key]} of {len(rows)} written); the batch is redone one at a "
                "time")

    def _flush_pipelined(self, pending: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
        """Every deferred statement sent in one psycopg pipeline (one cursor each, so each
        keeps its row count), in ``_DEFERRED`` order; a failing one fails the pipeline."""
        driver: Any = self.conn.connection.driver_connection
        cursors: dict[str, Any] = {}
        with driver.pipeline():
            for key, _stmt, _checked in _DEFERRED:
                rows = pending.get(key)
                if rows:
                    cursors[key] = driver.cursor()
                    self.rows_written += len(rows)
                    _DIRECT[key].run(self.conn, cursors[key], rows)
        return {key: int(cur.rowcount) for key, cur in cursors.items()}

    def load(self, instance_id: str) -> Snapshot:
        self.flush()
        p = {"iid": instance_id}
        rows = self._query(_DIRECT_IT, _LOAD_IT, p)
        if not rows:
            raise InstanceNotFound(instance_id)
        row = rows[0]
        timers = [_joined_timer(r) for r in rows if r.t_id is not None]
        history: list[HistoryEntry] = []
        deadlines: list[DeadlineRecord] = []
        for r in self._query(_DIRECT_HD, _LOAD_HD, p):
            if r.k == "h":
                history.append(_history(r))
            else:
                deadlines.append(_deadline(r))
        snap = Snapshot(_instance(row), tuple(history), tuple(deadlines), tuple(timers))
        self._loaded[instance_id] = snap
        return snap

    def load_many(self, instance_ids: Sequence[str]) -> dict[str, Snapshot]:
        """Snapshots of many instances in four queries (a tick's batch), not four each."""
        self.flush()
        ids = list(dict.fromkeys(instance_ids))
        rows: dict[str, InstanceRecord] = {}
        if self._direct and self._cursor is None:
            self._cursor = self.conn.connection.cursor()
        for chunk in _chunks(ids):
            found = (_IN_INSTANCES.run(self.conn, self._cursor, chunk) if self._direct
                     else self.conn.execute(select(I).where(I.c.id.in_(chunk))))
            for r in found:
                rows[r.id] = _instance(r)
        hist, dls, tms = _load_children(self.conn, list(rows), self._cursor)
        return {i: Snapshot(rec, tuple(hist[i]), tuple(dls[i]), tuple(tms[i]))
                for i, rec in rows.items()}

    def count_open(self, definition: str, field_name: str, value: Any, *,
                   exclude: str | None = None) -> int:
        """How many open cases of ``definition`` hold ``value`` in ``field_name`` (an IRO's
        caseload). A text value (an identifier: the only kind the shipped definitions count)
        is counted by the database, a JSON string equal to it; any other value in Python over
        the open cases' data, with Python's equality. Reading every open case into Python
        made each allocation cost in proportion to the county (a fifth of a county year)."""
        self.flush()
        if isinstance(value, str) and _FIELD_NAME.match(field_name) and self._direct:
            if self._cursor is None:
                self._cursor = self.conn.connection.cursor()
            query = _count_query(self.conn.dialect.name, field_name, exclude is not None)
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
        now = change.recorded_at or _utcnow()
        c = self.conn
        defer = self.deferring
        if change.new_instance is not None:
            n = change.new_instance
            row = {"id": n.id, "definition": n.definition,
                   "definition_version": n.definition_version, "ref": n.ref, "state": n.state,
                   "data": n.data, "version": n.row_version, "created_at": n.created_at,
                   "updated_at": now, "started_at": n.started_at, "closed_at": n.closed_at,
                   "child": n.child, "family": n.family}
            if defer:
                self._defer("instance", [row])
            else:
                self._run("instance", [row])
        elif change.bump_version:
            bump = {"iid": change.instance_id, "expected": change.expected_version,
                    "new_state": change.state, "new_data": change.data,
                    "new_closed": change.closed_at, "now": now}
            if defer:
                self._defer("bump", [bump])
            elif self._run("bump", [bump]) != 1:
                raise ConcurrencyConflict(
                    f"instance {change.instance_id} was changed by someone else since it was "
                    "read; read it again and retry", instance_id=change.instance_id)
        cancelled: list[dict[str, str]] = []
        rows: list[Row[Any]] = []
        if change.cancel_timers:
            # Timers of a snapshot: their rows exist (a read flushes deferred writes first).
            tids = list(change.cancel_timers)
            rows = self._query(_direct_cancel(len(tids)), _CANCEL, {"tids": tids} if not
                               self._direct else {f"t{k}": t for k, t in enumerate(tids)})
            cancelled = [{"name": r.name, "due_at": r.due_at.isoformat()}
                         for r in sorted(rows, key=lambda r: (r.due_at, r.id))
                         if r.kind == "timer"]
        self._applied.setdefault(change.instance_id, []).append((change, rows))
        if change.history:
            last = len(change.history) - 1
            (self._defer if defer else self._execute)("history", [
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
            self._update_deadline(u.id, vals, [s.value for s in u.only_if_status or ()])
        if change.new_deadlines:
            (self._defer if defer else self._execute)("deadline", [
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
                if "instance" in self._pending:  # its case row goes first
                    self.flush()
                inserted = c.execute(insert(T).values(**values).returning(*T.c)).one()
                claimed.append(_timer(inserted))
            else:
                plain.append(values)
        if plain:
            (self._defer if defer else self._execute)("timer", plain)
        if change.outbox:
            (self._defer if defer else self._execute)("outbox", [
                {"instance_id": m.instance_id or change.instance_id,
                 "recipients": list(m.recipients), "subject": m.subject, "body": m.body,
                 "template": m.template, "urgent": m.urgent, "status": m.status.value,
                 "attempts": 0, "next_attempt_at": now if m.status is OutboxStatus.PENDING
                 else None, "last_error": m.last_error, "idempotency_key": m.idempotency_key,
                 "created_at": now} for m in change.outbox])
        return claimed

    def written(self, instance_id: str) -> Instance:
        """The case as this transaction wrote it, built from the snapshot it read and the one
        change it applied (values as the database gives them back: UTC times, JSON data), so
        ``start`` and ``fire`` return it without reading the case again; read back in the
        transaction when the case was written more than once or not read first."""
        applied = self._applied.get(instance_id, [])
        snap = self._loaded.get(instance_id)
        if len(applied) != 1 or (snap is None and applied[0][0].new_instance is None):
            fresh = self.load(instance_id)
            return _to_instance(fresh.instance, fresh.history, fresh.deadlines, fresh.timers)
        change, cancelled_rows = applied[0]
        return _built(snap, change, cancelled_rows)

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
        _deadline_update(tuple(values), len(only_if)).run(self.conn, self._cursor, [row])

    def _query(self, direct: CompiledQuery, stmt: Any, params: dict[str, Any]) -> list[Any]:
        if not self._direct:
            return list(self.conn.execute(stmt, params).all())
        if self._cursor is None:
            self._cursor = self.conn.connection.cursor()
        return direct.run(self.conn, self._cursor, params)

    def _run(self, key: str, rows: list[dict[str, Any]]) -> int:
        """One of the deferrable writes, now; returns the rows it touched."""
        if not self._direct:
            return int(self.conn.execute(_STATEMENTS[key], rows).rowcount)
        if self._cursor is None:
            self._cursor = self.conn.connection.cursor()
        self.rows_written += len(rows)
        return _DIRECT[key].run(self.conn, self._cursor, rows)

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
        return sorted((_timer(r) for r in rows), key=lambda t: (t.due_at, t.id))

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
        self.conn.execute(_OUTCOME, {"tid": timer_id, "outcome": outcome, "error": error})

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


class SqlStore:
    """The engine's store on one SQLAlchemy Engine (SQLite or PostgreSQL)."""

    # PostgreSQL: after this many rows written, look whether the hot tables' statistics are
    # stale (see ``_refresh_statistics``).
    STATISTICS_CHECK_ROWS = 5000

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.outbox = SqlOutbox(engine)
        self.changes = SqlChangeStore(engine, SqlUnitOfWork)  # migrate and re-project
        self._written_since_check = 0
        self._statistics_lock = threading.Lock()
        # SQLite on a file: the connection of the last unit of work, kept for the next.
        self._keeps_idle = self.dialect == "sqlite" and isinstance(engine.pool, QueuePool)
        self._idle: Connection | None = None
        self._idle_lock = threading.Lock()

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A connection for one unit of work or read. SQLite on a file keeps the last one
        between units: taking it from SQLAlchemy's pool and giving it back (the pool's
        bookkeeping, a new ``Connection`` and the reset's ROLLBACK) cost a tenth of a ``fire``.
        Only a connection left clean (no transaction open, not invalidated) is kept; after a
        failure it is closed and the next unit takes a fresh one from the pool. PostgreSQL
        checks each connection out of the pool, whose checkout looks that the server is still
        there."""
        if not self._keeps_idle:
            with self.engine.connect() as conn:
                yield conn
            return
        with self._idle_lock:
            kept, self._idle = self._idle, None
        conn = kept if kept is not None else self.engine.connect()
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        if conn.closed or conn.invalidated or conn.in_transaction():
            conn.close()
            return
        with self._idle_lock:
            kept_now = self._idle is None
            if kept_now:
                self._idle = conn
        if not kept_now:  # another thread's connection is kept already
            conn.close()

    @contextmanager
    def unit_of_work(self) -> Iterator[SqlUnitOfWork]:
        with self._connection() as conn:
            conn.begin()
            try:
                uow = SqlUnitOfWork(conn)
                yield uow
                uow.flush()
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        if self.dialect == "postgresql" and uow.rows_written:
            self._after_writes(uow.rows_written)

    def _after_writes(self, rows: int) -> None:
        with self._statistics_lock:
            self._written_since_check += rows
            due = self._written_since_check >= self.STATISTICS_CHECK_ROWS
            if due:
                self._written_since_check = 0
        if due:
            self._refresh_statistics()

    def _refresh_statistics(self) -> None:
        """ANALYZE the hot tables that changed more than autovacuum would let them (50 rows
        and a tenth of the table) since they were last analyzed. Where autovacuum runs this
        finds nothing to do; where it is off or behind, plans made on a small table (a
        sequential scan, kept by every prepared statement) would otherwise stay as it grows:
        a county replay on a server without autovacuum grew far faster than its cases. Only an
        optimisation: a failure is logged."""
        try:
            with self.engine.connect() as conn:
                auto = conn.execution_options(isolation_level="AUTOCOMMIT")
                stale = [r[0] for r in auto.execute(text(
                    "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() "
                    "AND relname IN ('instances', 'history', 'deadlines', 'timers', 'outbox') "
                    "AND n_mod_since_analyze > 50 + 0.1 * n_live_tup ORDER BY relname"))]
                if stale:
                    auto.execute(text("ANALYZE " + ", ".join(stale)))
        except Exception as exc:  # noqa: BLE001 - the engine works without fresh statistics
            log.warning("table statistics not refreshed (%s)", type(exc).__name__)

    # -- reads ----------------------------------------------------------------------------

    def get(self, instance_id: str) -> Instance:
        with self._connection() as conn:
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
        params = {"now": now, "owner": owner, "lease_until": lease_until,
                  "clock_now": clock_now}
        with self._connection() as conn, conn.begin():
            cursor = driver_cursor(conn)
            if cursor is not None:
                rows = _claim_query(self.dialect, limit).run(conn, cursor, params)
            else:
                rows = list(conn.execute(_claim_statement(self.dialect, limit), params))
        return sorted((_timer(r) for r in rows), key=lambda t: (t.due_at, t.id))

    def release_timers(self, ids: Sequence[int], owner: str) -> None:
        if not ids:
            return
        with self.engine.begin() as conn:
            conn.execute(update(T).where(T.c.id.in_(list(ids)), T.c.claimed_by == owner,
                                         T.c.status == PENDING)
                         .values(claimed_by=None, claim_expires_at=None))

    def index_counted_fields(self, fields: Sequence[str]) -> None:
        """An index per data field that expressions count open cases by (``caseload``), so
        that an allocation costs the same with a hundred cases as with a hundred thousand.
        Only an optimisation: a failure (a name that is not an identifier, a second daemon
        creating the same index at the same moment) is logged and the count still works."""
        for field_name in dict.fromkeys(fields):
            if not _FIELD_NAME.match(field_name):
                continue
            name = f"ix_instances_count_{field_name}"[:63]
            expr = (f"""json_extract(data, '$."{field_name}"')""" if self.dialect == "sqlite"
                    else f"(data ->> '{field_name}')")
            ddl = (f"CREATE INDEX IF NOT EXISTS {name} ON instances (definition, {expr}) "
                   "WHERE closed_at IS NULL")
            try:
                with self.engine.begin() as conn:
                    conn.execute(text(ddl))
            except Exception as exc:  # noqa: BLE001 - counting works without it, slower
                log.warning("count index for data field %s not created (%s); counting by "
                            "it reads every open case", field_name, type(exc).__name__)

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
        with self._idle_lock:
            kept, self._idle = self._idle, None
        if kept is not None:
            kept.close()
        self.engine.dispose()


__all__ = ["SqlStore", "SqlUnitOfWork"]
