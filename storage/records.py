"""Rows -> the port's records and the case a reader sees: one conversion per table, and the
bulk read of many cases' history, deadlines and pending timers (three queries per 500 cases).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, select
from sqlalchemy.engine.interfaces import DBAPICursor

from icsflow.storage.compiled import driver_cursor
from icsflow.storage.statements import (
    IN_DEADLINES,
    IN_HISTORY,
    IN_TIMERS,
    PENDING,
    D,
    H,
    T,
)
from icsflow.workflow.instance import (
    DeadlineInfo,
    DeadlineStatus,
    HistoryEntry,
    Instance,
    TimerInfo,
    TimerStatus,
)
from icsflow.workflow.ports import DeadlineRecord, InstanceRecord, NewTimer, TimerRecord


def utcnow() -> datetime:
    return datetime.now(UTC)


# A status column's member by its stored value: a dict lookup, where calling the enum on the
# value costs a tenth of building a timer from its row (an unknown value still fails: KeyError).
_TIMER_STATUS = {m.value: m for m in TimerStatus}
_DEADLINE_STATUS = {m.value: m for m in DeadlineStatus}


def instance_record(r: Row[Any]) -> InstanceRecord:
    return InstanceRecord(id=r.id, definition=r.definition, definition_version=r.definition_version,
                          ref=r.ref, state=r.state, data=dict(r.data), row_version=r.version,
                          created_at=r.created_at, started_at=r.started_at, closed_at=r.closed_at,
                          child=r.child, family=r.family)


def history_entry(r: Row[Any]) -> HistoryEntry:
    return HistoryEntry(event=r.event, from_state=r.from_state, to_state=r.to_state,
                        actor=r.actor_id, role=r.role, at=r.happened_at,
                        recorded_at=r.recorded_at, note=r.note, changes=r.changes or {},
                        cancelled_timers=tuple(
                            (c["name"], datetime.fromisoformat(c["due_at"]))
                            for c in r.cancelled_timers or ()))


def deadline_record(r: Row[Any]) -> DeadlineRecord:
    return DeadlineRecord(r.id, DeadlineInfo(name=r.name, due=r.due_date, due_at=r.due_at,
                                             status=_DEADLINE_STATUS[r.status], exact=r.exact,
                                             met_at=r.met_at))


def joined_timer(r: Row[Any]) -> TimerRecord:
    """A timer from ``LOAD_CASE_AND_TIMERS``'s ``t_`` columns."""
    return TimerRecord(id=r.t_id, instance_id=r.t_instance_id, name=r.t_name, kind=r.t_kind,
                       due_at=r.t_due_at, action=r.t_action, status=_TIMER_STATUS[r.t_status],
                       deadline=r.t_deadline, state=r.t_state, first_due_at=r.t_first_due_at,
                       occurrence=r.t_repeat_count, attempts=r.t_attempts,
                       claimed_by=r.t_claimed_by, claim_expires_at=r.t_claim_expires_at)


def timer_record(r: Row[Any]) -> TimerRecord:
    return TimerRecord(id=r.id, instance_id=r.instance_id, name=r.name, kind=r.kind,
                       due_at=r.due_at, action=r.action, status=_TIMER_STATUS[r.status],
                       deadline=r.deadline, state=r.state, first_due_at=r.first_due_at,
                       occurrence=r.repeat_count, attempts=r.attempts,
                       claimed_by=r.claimed_by, claim_expires_at=r.claim_expires_at)


def timer_info(t: TimerRecord | NewTimer, due_at: datetime) -> TimerInfo:
    """What a case shows of one of its timers (a stored one, or one just planned: pending)."""
    status = t.status if isinstance(t, TimerRecord) else TimerStatus.PENDING
    return TimerInfo(t.name, due_at, t.action, status, t.deadline, t.state, t.occurrence)


def to_instance(rec: InstanceRecord, history: Sequence[HistoryEntry],
                deadlines: Sequence[DeadlineRecord], timers: Sequence[TimerRecord]) -> Instance:
    return Instance(
        id=rec.id, definition=rec.definition, version=rec.definition_version, ref=rec.ref,
        state=rec.state, data=dict(rec.data), deadline_list=tuple(d.info for d in deadlines),
        timers=tuple(timer_info(t, t.due_at)
                     for t in sorted(timers, key=lambda t: (t.due_at, t.id)) if t.kind == "timer"),
        history=tuple(history), row_version=rec.row_version, created_at=rec.created_at,
        closed_at=rec.closed_at, child=rec.child, family=rec.family,
        started_at=rec.started_at)


def chunks(ids: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    """``IN`` lists of at most ``size`` ids (SQLite limits bound parameters)."""
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def load_children(conn: Connection, ids: Sequence[str], cursor: DBAPICursor | None = None,
                  ) -> tuple[
        dict[str, list[HistoryEntry]], dict[str, list[DeadlineRecord]],
        dict[str, list[TimerRecord]]]:
    """History, deadlines and pending timers of many instances: three queries per 500 ids
    (compiled once, on the driver's cursor where the driver allows; ``cursor`` reuses one)."""
    hist: dict[str, list[HistoryEntry]] = {i: [] for i in ids}
    dls: dict[str, list[DeadlineRecord]] = {i: [] for i in ids}
    tms: dict[str, list[TimerRecord]] = {i: [] for i in ids}
    if cursor is None:
        cursor = driver_cursor(conn)
    for chunk in chunks(ids):
        if cursor is not None:
            h_rows = IN_HISTORY.run(conn, cursor, chunk)
            d_rows = IN_DEADLINES.run(conn, cursor, chunk)
            t_rows = IN_TIMERS.run(conn, cursor, chunk)
        else:
            h_rows = list(conn.execute(select(H).where(H.c.instance_id.in_(chunk))
                                       .order_by(H.c.id)))
            d_rows = list(conn.execute(select(D).where(D.c.instance_id.in_(chunk))
                                       .order_by(D.c.id)))
            t_rows = list(conn.execute(select(T).where(T.c.instance_id.in_(chunk),
                                                       T.c.status == PENDING)
                                       .order_by(T.c.due_at, T.c.id)))
        for r in h_rows:
            hist[r.instance_id].append(history_entry(r))
        for r in d_rows:
            dls[r.instance_id].append(deadline_record(r))
        for r in t_rows:
            tms[r.instance_id].append(timer_record(r))
    return hist, dls, tms


__all__ = ["utcnow", "instance_record", "history_entry", "deadline_record", "joined_timer",
           "timer_record", "timer_info", "to_instance", "chunks", "load_children"]
