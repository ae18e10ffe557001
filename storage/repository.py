"""The engine's store on SQLite or PostgreSQL: ``workflow.ports.Store`` with SQLAlchemy Core.

Units of work (``storage.unit_of_work``) write the cases; this module owns the connections
(SQLite on a file keeps its last one), the reads of whole cases for callers (``get``, ``find``,
``list``), claiming due timers for a tick, the definitions' registry, and keeping PostgreSQL's
table statistics fresh where autovacuum is off or behind.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import QueuePool

from icsflow.storage.changes import SqlChangeStore
from icsflow.storage.compiled import driver_cursor
from icsflow.storage.outbox import SqlOutbox
from icsflow.storage.records import (
    instance_record,
    load_children,
    timer_record,
    to_instance,
    utcnow,
)
from icsflow.storage.statements import (
    DEF,
    FIELD_NAME,
    PENDING,
    I,
    T,
    claim_query,
    claim_statement,
    list_query,
)

# The unit of work is part of this module's public face: ``workflow.transfer.replay`` wraps it.
from icsflow.storage.unit_of_work import SqlUnitOfWork
from icsflow.workflow.errors import DefinitionError
from icsflow.workflow.instance import Instance
from icsflow.workflow.ports import TimerRecord

# Silent unless the host configures logging (the library logs nothing by default).
log = logging.getLogger("icsflow.storage")


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
        return to_instance(snap.instance, snap.history, snap.deadlines, snap.timers)

    def _many(self, conn: Connection, rows: Sequence[Row[Any]]) -> builtins.list[Instance]:
        hist, dls, tms = load_children(conn, [r.id for r in rows])
        return [to_instance(instance_record(r), hist[r.id], dls[r.id], tms[r.id]) for r in rows]

    def find(self, ref: str) -> builtins.list[Instance]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(I).where(I.c.ref == ref).order_by(I.c.created_at)).all()
            result = self._many(conn, rows)
            conn.rollback()
        return result

    def list(self, *, definition: str | None = None, state: str | None = None,
             overdue_at: datetime | None = None, open_only: bool = False,
             child: str | None = None, family: str | None = None) -> list[Instance]:
        stmt = list_query(definition=definition, state=state, overdue_at=overdue_at,
                          open_only=open_only, child=child, family=family)
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
        clock_now = clock_now or utcnow()
        params = {"now": now, "owner": owner, "lease_until": lease_until,
                  "clock_now": clock_now}
        with self._connection() as conn, conn.begin():
            cursor = driver_cursor(conn)
            if cursor is not None:
                rows = claim_query(self.dialect, limit).run(conn, cursor, params)
            else:
                rows = list(conn.execute(claim_statement(self.dialect, limit), params))
        return sorted((timer_record(r) for r in rows), key=lambda t: (t.due_at, t.id))

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
            if not FIELD_NAME.match(field_name):
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

    def timer_name(self, timer_id: int) -> str | None:
        with self.engine.connect() as conn:
            name = conn.execute(select(T.c.name).where(T.c.id == timer_id)).scalar()
            conn.rollback()
        return None if name is None else str(name)

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
                                                        registered_at=utcnow(),
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
