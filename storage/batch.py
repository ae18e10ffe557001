"""A bulk path's store: every command of an import (a replay) in ONE transaction, each command
in a savepoint of its own.

Why: an import is all or nothing. It used to prove that by replaying the whole file in a
scratch database first, then replaying it again on the real one, committing every row and
every timer firing on its own: two replays and a commit per command. Here the file is replayed
once, on the real database, inside one transaction that nobody else sees until it commits. A
command that is refused rolls back to its own savepoint (nothing of it is left) and is named;
the replay goes on to find every other problem. At the end the caller commits (nothing was
wrong), or rolls the whole transaction back (a problem, or a dry run): nothing written. The
single-command API (``Engine.start``/``fire``) keeps its one transaction per command.

The cost of the guarantee on SQLite: the import holds the database's write lock until it ends
(other writers wait up to the busy timeout). PostgreSQL's other writers go on; rows the import
changes are locked until it ends.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, NestedTransaction, select, update

from icsflow.storage.compiled import driver_cursor
from icsflow.storage.records import timer_record, to_instance, utcnow
from icsflow.storage.repository import SqlStore
from icsflow.storage.statements import (
    DEF,
    PENDING,
    I,
    T,
    claim_query,
    claim_statement,
    list_query,
)
from icsflow.storage.unit_of_work import SqlUnitOfWork
from icsflow.workflow.instance import Instance
from icsflow.workflow.ports import TimerRecord


class SavepointUnitOfWork(SqlUnitOfWork):
    """A unit of work inside the batch's transaction: ``commit`` releases its savepoint (the
    writes stay in the batch) and opens the next; ``rollback`` undoes back to it."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self._savepoint: NestedTransaction = conn.begin_nested()

    def commit(self) -> None:
        self.flush()
        self._savepoint.commit()
        self._savepoint = self.conn.begin_nested()

    def rollback(self) -> None:
        self._pending.clear()
        self._takes.clear()
        self._savepoint.rollback()
        self._savepoint = self.conn.begin_nested()

    def release(self) -> None:
        """The command is done: its savepoint is released into the batch."""
        self.flush()
        self._savepoint.commit()

    def undo(self) -> None:
        """The command failed: nothing of it stays."""
        self._pending.clear()
        self._takes.clear()
        if self._savepoint.is_active:
            self._savepoint.rollback()


class BatchedStore(SqlStore):
    """``SqlStore`` whose units of work, reads and timer claims all run on one connection in
    one transaction (see the module's docstring); ``finish(commit=...)`` ends it."""

    def __init__(self, inner: SqlStore) -> None:
        super().__init__(inner.engine)
        self.inner = inner
        self.conn = inner.engine.connect()
        self.conn.begin()
        self._open = True

    def finish(self, *, commit: bool) -> None:
        """Commit the batch, or roll all of it back; the connection goes back to the pool."""
        if not self._open:
            return
        self._open = False
        try:
            if commit:
                self.conn.commit()
            else:
                self.conn.rollback()
        finally:
            self.conn.close()

    def close(self) -> None:
        """Closing without ``finish`` keeps nothing: the batch is rolled back."""
        self.finish(commit=False)

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        yield self.conn

    @contextmanager
    def unit_of_work(self) -> Iterator[SqlUnitOfWork]:
        uow = SavepointUnitOfWork(self.conn)
        try:
            yield uow
        except BaseException:
            uow.undo()
            raise
        uow.release()

    # -- reads see the batch's own writes ---------------------------------------------------

    def get(self, instance_id: str) -> Instance:
        snap = SqlUnitOfWork(self.conn).load(instance_id)
        return to_instance(snap.instance, snap.history, snap.deadlines, snap.timers)

    def find(self, ref: str) -> builtins.list[Instance]:
        rows = self.conn.execute(select(I).where(I.c.ref == ref).order_by(I.c.created_at)).all()
        return self._many(self.conn, rows)

    def list(self, *, definition: str | None = None, state: str | None = None,
             overdue_at: datetime | None = None, open_only: bool = False,
             child: str | None = None, family: str | None = None) -> builtins.list[Instance]:
        rows = self.conn.execute(list_query(
            definition=definition, state=state, overdue_at=overdue_at, open_only=open_only,
            child=child, family=family)).all()
        return self._many(self.conn, rows)

    def timer_name(self, timer_id: int) -> str | None:
        name = self.conn.execute(select(T.c.name).where(T.c.id == timer_id)).scalar()
        return None if name is None else str(name)

    def kept_definitions(self) -> builtins.list[tuple[str, int, str]]:
        rows = self.conn.execute(select(DEF.c.name, DEF.c.version, DEF.c.source_text)
                                 .where(DEF.c.source_text.is_not(None))).all()
        return [(r[0], r[1], r[2]) for r in rows]

    def register_definition(self, name: str, version: int, content_hash: str,
                            source_text: str | None = None) -> None:
        """A batch's engine runs on definitions its own engine registered already."""
        raise RuntimeError("open the engine of a batch with register=False")

    # -- timers -------------------------------------------------------------------------------

    def claim_due_timers(self, now: datetime, owner: str, lease_until: datetime,
                         limit: int, clock_now: datetime | None = None,
                         ) -> builtins.list[TimerRecord]:
        params = {"now": now, "owner": owner, "lease_until": lease_until,
                  "clock_now": clock_now or utcnow()}
        with self.conn.begin_nested():
            cursor = driver_cursor(self.conn)
            if cursor is not None:
                rows = claim_query(self.dialect, limit).run(self.conn, cursor, params)
            else:
                rows = list(self.conn.execute(claim_statement(self.dialect, limit), params))
        return sorted((timer_record(r) for r in rows), key=lambda t: (t.due_at, t.id))

    def release_timers(self, ids: Sequence[int], owner: str) -> None:
        if ids:
            self.conn.execute(update(T).where(T.c.id.in_(list(ids)), T.c.claimed_by == owner,
                                              T.c.status == PENDING)
                              .values(claimed_by=None, claim_expires_at=None))

    def earliest_pending(self) -> datetime | None:
        """When the next pending timer is due, as the batch sees it."""
        from sqlalchemy import func

        due: Any = self.conn.execute(select(func.min(T.c.due_at))
                                     .where(T.c.status == PENDING)).scalar_one_or_none()
        if isinstance(due, str):
            due = datetime.fromisoformat(due)
        if due is not None and due.tzinfo is None:
            from datetime import UTC

            due = due.replace(tzinfo=UTC)
        return due  # type: ignore[no-any-return]


__all__ = ["BatchedStore", "SavepointUnitOfWork"]
