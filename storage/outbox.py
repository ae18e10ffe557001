"""The outbox repository: the one place that reads and writes the ``outbox`` table after the
engine's unit of work has queued a row (``storage.repository``), for the dispatcher, the
digests, the ``icsflow outbox`` command and the read side (``engine.outbox``).

Every method is its own short transaction. A claim leases rows to an owner (PostgreSQL
``FOR UPDATE SKIP LOCKED``, SQLite's single writer) and counts the attempt at claim time; the
settle methods only touch a row still pending and still leased to the same owner.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    String,
    Table,
    and_,
    bindparam,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import ExecutableReturnsRows

from icsflow.definitions.memo import Memo
from icsflow.storage.compiled import IN_SIZES, CompiledIn, CompiledQuery, Match, driver_cursor
from icsflow.storage.tables import InstanceRow, OutboxRow, UTCDateTime
from icsflow.workflow.instance import OutboxStatus
from icsflow.workflow.ports import OutboxMessage

O = cast(Table, OutboxRow.__table__)  # noqa: E741
# Written into the SQL, not bound: the pending rows' partial index matches only a literal (a
# bound status makes SQLite prepare the statement again on every run).
PENDING: Any = literal_column("'pending'")
I = cast(Table, InstanceRow.__table__)  # noqa: E741


def _claim_statement(dialect: str, limit: int, urgent_only: bool) -> ExecutableReturnsRows:
    """Lease up to ``limit`` rows due by ``:now`` to ``:owner`` until ``:lease_until`` and
    count the attempt; a row is free when nobody holds it or its lease ran out by
    ``:lease_now``. Every pending row has next_attempt_at (set when queued, retried or put
    back), so this walks the partial index ix_outbox_pending instead of scanning a table
    whose sent rows are kept for years."""
    lease_now = bindparam("lease_now", type_=UTCDateTime)
    conditions = [O.c.status == PENDING, O.c.next_attempt_at <= bindparam("now", type_=UTCDateTime),
                  or_(O.c.claimed_by.is_(None), O.c.claim_expires_at.is_(None),
                      O.c.claim_expires_at < lease_now)]
    if urgent_only:
        conditions.append(O.c.urgent.is_(True))
    inner = (select(O.c.id).where(and_(*conditions))
             .order_by(O.c.next_attempt_at, O.c.id).limit(limit))
    if dialect == "postgresql":
        inner = inner.with_for_update(skip_locked=True)
    return (update(O).where(O.c.id.in_(inner.scalar_subquery()))
            .values(claimed_by=bindparam("owner", type_=String),
                    claim_expires_at=bindparam("lease_until", type_=UTCDateTime),
                    attempts=O.c.attempts + 1)
            .returning(*O.c))


_CLAIMS: Memo[tuple[str, int, bool], CompiledQuery] = Memo("outbox.claims", 64)


def _claim_query(dialect: str, limit: int, urgent_only: bool) -> CompiledQuery:
    found = _CLAIMS.get((dialect, limit, urgent_only))
    if found is None:
        found = _CLAIMS.put((dialect, limit, urgent_only), CompiledQuery(
            _claim_statement(dialect, limit, urgent_only)))
    return found


# A claimed batch's case references, and a delivered batch marked sent (rows still pending
# and still leased to ``:owner``): compiled once, as the engine's hot statements are. Through
# SQLAlchemy's execution a batch of 50 spent about as long claiming and settling in Python
# as PostgreSQL spent running the two statements.
_REFS = CompiledIn(lambda match: select(I.c.id, I.c.ref).where(match(I.c.id)))


def _mark_sent(id_matches: ColumnElement[bool]) -> ExecutableReturnsRows:
    """Mark sent the rows ``id_matches`` that are still pending and leased to ``:owner``."""
    return (update(O).where(id_matches, O.c.claimed_by == bindparam("owner", type_=String),
                            O.c.status == PENDING)
            .values(claimed_by=None, claim_expires_at=None, status="sent",
                    sent_at=bindparam("at", type_=UTCDateTime), last_error=None)
            .returning(O.c.id))


_SENT = CompiledIn(lambda match: _mark_sent(match(O.c.id)))
# One row: SMTP marks every message as the server accepts it (the duplicate window). Its id
# is bound as ``b_id``: SQLAlchemy refuses a bind named after a column in an UPDATE.
_SENT_ONE = CompiledQuery(_mark_sent(O.c.id == bindparam("b_id", type_=O.c.id.type)))


def _run(conn: Connection, query: CompiledQuery, params: dict[str, Any]) -> list[Any]:
    """``query`` on the driver's cursor where ``CompiledQuery`` knows the driver, else
    through SQLAlchemy."""
    cursor = driver_cursor(conn)
    if cursor is not None:
        return query.run(conn, cursor, params)
    return builtins.list(conn.execute(query.stmt, params))


def _in_list(ids: builtins.list[Any]) -> Match:
    """The condition ``column IN (ids)``, for ``CompiledIn.build`` through SQLAlchemy."""
    return lambda col: col.in_(ids)


def _run_in(conn: Connection, query: CompiledIn, ids: Sequence[Any],
            params: dict[str, Any] | None = None) -> list[Any]:
    """``query`` for ``ids``, in lists of at most ``CompiledIn``'s largest size."""
    cursor = driver_cursor(conn)
    size, out = IN_SIZES[-1], []
    for start in range(0, len(ids), size):
        chunk = builtins.list(ids[start:start + size])
        if cursor is not None:
            out.extend(query.run(conn, cursor, chunk, params))
        else:
            out.extend(conn.execute(query.build(_in_list(chunk)), params))
    return out


def _message(r: Row[Any], ref: str | None) -> OutboxMessage:
    return OutboxMessage(id=r.id, idempotency_key=r.idempotency_key,
                         recipients=tuple(r.recipients or ()), subject=r.subject, body=r.body,
                         template=r.template, urgent=bool(r.urgent),
                         status=OutboxStatus(r.status), attempts=r.attempts,
                         created_at=r.created_at, instance_id=r.instance_id, ref=ref,
                         next_attempt_at=r.next_attempt_at, last_error=r.last_error,
                         sent_at=r.sent_at, channel=r.channel or "email",
                         message_id=r.message_id)


class SqlOutbox:
    """``workflow.ports.Outbox`` on one SQLAlchemy Engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- the dispatcher ----------------------------------------------------------------------

    def claim(self, now: datetime, owner: str, lease_until: datetime, limit: int, *,
              urgent_only: bool, lease_now: datetime) -> builtins.list[OutboxMessage]:
        params = {"now": now, "lease_now": lease_now, "owner": owner,
                  "lease_until": lease_until}
        with self.engine.begin() as conn:
            rows = _run(conn, _claim_query(self.engine.dialect.name, limit, urgent_only),
                        params)
            ids = builtins.list({r.instance_id for r in rows if r.instance_id})
            refs = {r.id: r.ref for r in _run_in(conn, _REFS, ids)} if ids else {}
        return sorted((_message(r, refs.get(r.instance_id)) for r in rows), key=lambda m: m.id)

    def _settle(self, message_id: int, owner: str, **values: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(O).where(O.c.id == message_id, O.c.claimed_by == owner,
                                         O.c.status == PENDING)
                         .values(claimed_by=None, claim_expires_at=None, **values))

    def mark_sent(self, message_id: int, owner: str, at: datetime) -> None:
        with self.engine.begin() as conn:
            _run(conn, _SENT_ONE, {"b_id": message_id, "owner": owner, "at": at})

    def mark_sent_many(self, message_ids: Sequence[int], owner: str, at: datetime) -> None:
        """Mark a delivered batch sent in one transaction (a channel that stores each
        Message-ID once, where a resend after a crash delivers nothing new)."""
        if message_ids:
            with self.engine.begin() as conn:
                _run_in(conn, _SENT, message_ids, {"owner": owner, "at": at})

    def schedule_retry(self, message_id: int, owner: str, at: datetime, reason: str) -> None:
        self._settle(message_id, owner, next_attempt_at=at, last_error=reason[:2000])

    def mark_failed(self, message_id: int, owner: str, reason: str) -> None:
        self._settle(message_id, owner, status="failed", last_error=reason[:2000])

    def release(self, message_ids: Sequence[int], owner: str) -> None:
        if message_ids:
            with self.engine.begin() as conn:
                conn.execute(update(O).where(O.c.id.in_(builtins.list(message_ids)),
                                             O.c.claimed_by == owner, O.c.status == PENDING)
                             .values(claimed_by=None, claim_expires_at=None,
                                     attempts=O.c.attempts - 1))

    def renew(self, message_ids: Sequence[int], owner: str,
              lease_until: datetime) -> builtins.set[int]:
        """Extend the lease on rows still pending and still leased to ``owner`` (whether or
        not the lease has run out: nobody else claimed them), in one statement; PostgreSQL's
        row lock orders it against a concurrent claim, so a row is held by one owner."""
        if not message_ids:
            return builtins.set()
        with self.engine.begin() as conn:
            held = conn.execute(
                update(O).where(O.c.id.in_(builtins.list(message_ids)),
                                O.c.claimed_by == owner, O.c.status == PENDING)
                .values(claim_expires_at=lease_until).returning(O.c.id)).scalars().all()
        return builtins.set(held)

    def mark_sent_with_copies(self, message_id: int, owner: str, at: datetime,
                              channels: Sequence[str], copy_message_id: str) -> None:
        """Mark sent and queue its copies in one transaction: a copy exists exactly when its
        email was marked sent, and the unique key ``CHANNEL-copy:ID`` queues it once."""
        with self.engine.begin() as conn:
            marked = conn.execute(
                update(O).where(O.c.id == message_id, O.c.claimed_by == owner,
                                O.c.status == PENDING)
                .values(claimed_by=None, claim_expires_at=None, status="sent", sent_at=at,
                        last_error=None).returning(*O.c)).first()
            if marked is None:  # the lease was lost: whoever holds the row queues the copies
                return
            for channel in channels:
                key = f"{channel}-copy:{message_id}"
                if conn.execute(select(O.c.id).where(O.c.idempotency_key == key)).first():
                    continue
                conn.execute(insert(O).values(
                    instance_id=marked.instance_id, recipients=marked.recipients,
                    subject=marked.subject, body=marked.body, template=marked.template,
                    urgent=marked.urgent, status="pending", attempts=0, next_attempt_at=at,
                    idempotency_key=key, created_at=at, channel=channel,
                    message_id=copy_message_id))

    def defer(self, message_ids: Sequence[int], owner: str, until: datetime,
              reason: str) -> None:
        if message_ids:
            with self.engine.begin() as conn:
                conn.execute(update(O).where(O.c.id.in_(builtins.list(message_ids)),
                                             O.c.claimed_by == owner, O.c.status == PENDING)
                             .values(claimed_by=None, claim_expires_at=None,
                                     attempts=O.c.attempts - 1, next_attempt_at=until,
                                     last_error=reason[:2000]))

    def count_due(self, now: datetime) -> int:
        with self.engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(O).where(
                O.c.status == PENDING, O.c.next_attempt_at <= now)).scalar_one()
            conn.rollback()
        return int(count)

    def enqueue(self, *, idempotency_key: str, recipients: Sequence[str], subject: str,
                body: str, template: str, urgent: bool, now: datetime,
                instance_id: str | None = None) -> bool:
        try:
            with self.engine.begin() as conn:
                exists = conn.execute(select(O.c.id).where(
                    O.c.idempotency_key == idempotency_key)).first()
                if exists is not None:
                    return False
                conn.execute(insert(O).values(
                    instance_id=instance_id, recipients=builtins.list(recipients),
                    subject=subject, body=body, template=template, urgent=urgent,
                    status="pending", attempts=0, next_attempt_at=now,
                    idempotency_key=idempotency_key, created_at=now))
        except IntegrityError:  # another daemon queued it between our check and insert
            return False
        return True

    # -- operators (``icsflow outbox``) and the read side ------------------------------------

    def retry(self, message_id: int, now: datetime,
              recipients: Sequence[str] | None = None) -> bool:
        """A failed row back to pending with attempts reset (``icsflow outbox retry``), to
        ``recipients`` when given (addressed again from today's directory and case data)."""
        values: dict[str, Any] = dict(status="pending", attempts=0, next_attempt_at=now,
                                      claimed_by=None, claim_expires_at=None)
        if recipients is not None:
            values["recipients"] = builtins.list(recipients)
        with self.engine.begin() as conn:
            result = conn.execute(update(O).where(O.c.id == message_id, O.c.status == "failed")
                                  .values(**values))
        return bool(result.rowcount)

    def get(self, message_id: int) -> OutboxMessage | None:
        found = self._select(O.c.id == message_id)
        return found[0] if found else None

    def list(self, status: OutboxStatus | str | None = None, limit: int | None = None,
             instance_id: str | None = None) -> builtins.list[OutboxMessage]:
        """Rows in id order with their case ref, optionally of one status or one instance."""
        conditions = []
        if status is not None:
            conditions.append(O.c.status == str(status))
        if instance_id is not None:
            conditions.append(O.c.instance_id == instance_id)
        return self._select(*conditions, limit=limit)

    def counts(self) -> dict[str, int]:
        """How many rows have each status."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(O.c.status, func.count()).group_by(O.c.status)).all()
            conn.rollback()
        return {r[0]: int(r[1]) for r in rows}

    def _select(self, *conditions: ColumnElement[bool], limit: int | None = None,
                ) -> builtins.list[OutboxMessage]:
        stmt = (select(O, I.c.ref.label("case_ref"))
                .select_from(O.outerjoin(I, I.c.id == O.c.instance_id))
                .where(*conditions).order_by(O.c.id))
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
            conn.rollback()
        return [_message(r, r.case_ref) for r in rows]


__all__ = ["SqlOutbox"]
