"""The hot statements of the engine's store, built once (and compiled once per dialect).

Core statements (not ORM units of work) because a tick writes thousands of small rows: the
ORM's identity map and flush would double the cost without buying anything here. Statements
used once per firing are built at import: building a Core expression costs more than running
it on a small table; the ones whose shape depends on a count or a dialect are compiled once
per shape and kept.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Select,
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
    union_all,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.sql.selectable import ExecutableReturnsRows

from icsflow.definitions.memo import Memo
from icsflow.storage.compiled import CompiledIn, CompiledQuery, CompiledWrite
from icsflow.storage.tables import (
    DeadlineRow,
    DefinitionRow,
    HistoryRow,
    InstanceRow,
    OutboxRow,
    TimerRow,
    UTCDateTime,
)

I = cast(Table, InstanceRow.__table__)  # noqa: E741
H = cast(Table, HistoryRow.__table__)
D = cast(Table, DeadlineRow.__table__)
T = cast(Table, TimerRow.__table__)
O = cast(Table, OutboxRow.__table__)  # noqa: E741
DEF = cast(Table, DefinitionRow.__table__)


FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

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
LOAD_CASE_AND_TIMERS = (
    select(I, *_T_COLS)
    .select_from(I.outerjoin(T, and_(T.c.instance_id == I.c.id, T.c.status == PENDING)))
    .where(I.c.id == bindparam("iid")).order_by(T.c.due_at, T.c.id))
_H_PART = ("event", "from_state", "to_state", "actor_id", "role", "happened_at", "recorded_at",
           "note", "changes", "cancelled_timers")
_D_PART = ("name", "due_date", "due_at", "exact", "status", "met_at")


def _part(table: Table, own: tuple[str, ...], other: Table, others: tuple[str, ...],
          kind: str) -> Select[Any]:
    cols = [literal(kind).label("k"), table.c.id.label("id")]
    for name in _H_PART + _D_PART:
        if name in own:
            cols.append(table.c[name].label(name))
        else:
            cols.append(sql_cast(null(), other.c[name].type).label(name))
    return select(*cols).where(table.c.instance_id == bindparam("iid"))


LOAD_HISTORY_AND_DEADLINES = union_all(
    _part(H, _H_PART, D, _D_PART, "h"), _part(D, _D_PART, H, _H_PART, "d")).order_by("k", "id")
TAKE_TIMER = (
    update(T).where(T.c.id == bindparam("tid"), T.c.status == PENDING,
                    T.c.claimed_by == bindparam("owner"))
    .values(status="fired", fired_at=bindparam("fired_at"), outcome=bindparam("outcome"),
            attempts=T.c.attempts + 1, claimed_by=None, claim_expires_at=None))
BUMP_VERSION = (
    update(I).where(I.c.id == bindparam("iid"), I.c.version == bindparam("expected"))
    .values(state=func.coalesce(bindparam("new_state", type_=String), I.c.state),
            data=func.coalesce(bindparam("new_data", type_=JSON(none_as_null=True)), I.c.data),
            closed_at=func.coalesce(bindparam("new_closed", type_=UTCDateTime), I.c.closed_at),
            version=I.c.version + 1, updated_at=bindparam("now")))
_INS_H = insert(H)
_INS_O = insert(O)
_INS_T = insert(T)
_INS_I = insert(I)
_INS_D = insert(D)
CANCEL_TIMERS = (
    update(T).where(T.c.id.in_(bindparam("tids", expanding=True)), T.c.status == PENDING)
    .values(status="cancelled", outcome="cancelled", claimed_by=None, claim_expires_at=None)
    .returning(T.c.name, T.c.kind, T.c.due_at, T.c.id))
SET_OUTCOME = (update(T).where(T.c.id == bindparam("tid"))
               .values(outcome=bindparam("outcome"), last_error=bindparam("error")))
# Deferred writes are sent in this order (rows referenced by others first), one executemany
# per statement; the two UPDATEs must touch one row per parameter set.
DEFERRED: tuple[tuple[str, Any, bool], ...] = (
    ("instance", _INS_I, False), ("bump", BUMP_VERSION, True), ("take", TAKE_TIMER, True),
    ("history", _INS_H, False), ("deadline", _INS_D, False), ("timer", _INS_T, False),
    ("outbox", _INS_O, False))
STATEMENTS = {key: stmt for key, stmt, _ in DEFERRED}


DIRECT = {key: CompiledWrite(stmt) for key, stmt, _ in DEFERRED}


IN_INSTANCES = CompiledIn(lambda match: select(I).where(match(I.c.id)))
IN_HISTORY = CompiledIn(lambda match: select(H).where(match(H.c.instance_id)).order_by(H.c.id))
IN_DEADLINES = CompiledIn(
    lambda match: select(D).where(match(D.c.instance_id)).order_by(D.c.id))
IN_TIMERS = CompiledIn(lambda match: select(T).where(match(T.c.instance_id),
                                                     T.c.status == PENDING)
                       .order_by(T.c.due_at, T.c.id))


def claim_statement(dialect: str, limit: int) -> ExecutableReturnsRows:
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


_CLAIMS: Memo[tuple[str, int], CompiledQuery] = Memo("statements.timer_claims", 64)


def claim_query(dialect: str, limit: int) -> CompiledQuery:
    found = _CLAIMS.get((dialect, limit))
    if found is None:
        found = _CLAIMS.put((dialect, limit), CompiledQuery(claim_statement(dialect, limit)))
    return found


_DEADLINE_UPDATES: Memo[tuple[tuple[str, ...], int], CompiledWrite] = Memo(
    "statements.deadline_updates", 256)


def deadline_update(keys: tuple[str, ...], only_if: int) -> CompiledWrite:
    """A deadline's update setting ``keys`` (bound as ``v_KEY``), if its status is one of
    ``only_if`` given (bound as ``s0``, ``s1``...): compiled once per shape."""
    found = _DEADLINE_UPDATES.get((keys, only_if))
    if found is None:
        stmt = update(D).where(D.c.id == bindparam("did"))
        if only_if:
            stmt = stmt.where(D.c.status.in_([bindparam(f"s{k}", type_=String)
                                              for k in range(only_if)]))
        stmt = stmt.values({k: bindparam(f"v_{k}", type_=D.c[k].type) for k in keys})
        found = _DEADLINE_UPDATES.put((keys, only_if), CompiledWrite(stmt))
    return found


_COUNTS: Memo[tuple[str, str, bool], CompiledQuery] = Memo("statements.caseload_counts", 256)


def count_query(dialect: str, field_name: str, exclude: bool) -> CompiledQuery:
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
        found = _COUNTS.put(key, CompiledQuery(stmt))
    return found


def list_query(*, definition: str | None, state: str | None, overdue_at: datetime | None,
               open_only: bool, child: str | None, family: str | None) -> Select[Any]:
    """``Store.list``'s cases, oldest first: the one query the store and a batch both run."""
    stmt = select(I)
    for column, value in ((I.c.child, child), (I.c.family, family),
                          (I.c.definition, definition), (I.c.state, state)):
        if value is not None:
            stmt = stmt.where(column == value)
    if open_only:
        stmt = stmt.where(I.c.closed_at.is_(None))
    if overdue_at is not None:
        stmt = stmt.where(exists().where(
            D.c.instance_id == I.c.id, D.c.met_at.is_(None),
            D.c.status.in_(["live", "breached"]), D.c.due_at <= overdue_at))
    return stmt.order_by(I.c.created_at, I.c.id)


DIRECT_CASE_AND_TIMERS = CompiledQuery(LOAD_CASE_AND_TIMERS)
DIRECT_HISTORY_AND_DEADLINES = CompiledQuery(LOAD_HISTORY_AND_DEADLINES)
_DIRECT_CANCEL: Memo[int, CompiledQuery] = Memo("statements.timer_cancels", 256)


def direct_cancel(n: int) -> CompiledQuery:
    """``CANCEL_TIMERS`` for ``n`` timer ids (one compiled statement per count)."""
    found = _DIRECT_CANCEL.get(n)
    if found is None:
        stmt = (update(T).where(T.c.id.in_([bindparam(f"t{k}") for k in range(n)]),
                                T.c.status == PENDING)
                .values(status="cancelled", outcome="cancelled", claimed_by=None,
                        claim_expires_at=None)
                .returning(T.c.name, T.c.kind, T.c.due_at, T.c.id))
        found = _DIRECT_CANCEL.put(n, CompiledQuery(stmt))
    return found


__all__ = ["I", "H", "D", "T", "O", "DEF", "FIELD_NAME", "PENDING", "LOAD_CASE_AND_TIMERS",
           "LOAD_HISTORY_AND_DEADLINES", "TAKE_TIMER", "BUMP_VERSION", "CANCEL_TIMERS",
           "SET_OUTCOME", "DEFERRED", "STATEMENTS", "DIRECT", "IN_INSTANCES", "IN_HISTORY",
           "IN_DEADLINES", "IN_TIMERS", "claim_statement", "claim_query", "deadline_update",
           "count_query", "DIRECT_CASE_AND_TIMERS", "DIRECT_HISTORY_AND_DEADLINES",
           "direct_cancel", "list_query"]
