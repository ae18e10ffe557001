"""Storage for moving running cases: the ``ChangeStore`` port of ``workflow.changes.store`` on SQL.

A migration or a re-projection writes one case per transaction through the same ``apply`` as a
transition (version check, history, deadlines, timers), plus the case's definition version. The
calendar open deadlines were last counted on is kept in ``calendar_baselines`` (revision 0003),
so a changed calendar is noticed and its moves explained by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import JSON, Connection, Engine, String, Table, insert, select, update
from sqlalchemy.orm import Mapped, mapped_column

from icsflow.storage.tables import Base, BigId, InstanceRow
from icsflow.workflow.errors import ConcurrencyConflict
from icsflow.workflow.ports import Change, Snapshot


class CalendarBaselineRow(Base):
    __tablename__ = "calendar_baselines"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    recorded_at: Mapped[datetime]


CB = cast(Table, CalendarBaselineRow.__table__)
I = cast(Table, InstanceRow.__table__)  # noqa: E741


class _UnitOfWork(Protocol):
    """What a change store needs of the repository's unit of work on one connection."""

    def load_many(self, instance_ids: Sequence[str]) -> dict[str, Snapshot]: ...
    def apply(self, change: Change) -> object: ...


class SqlChangeStore:
    """Open cases in bulk, one-case writes with a version change, the calendar baseline.
    ``unit_of_work``: the repository's unit of work on a connection (``SqlUnitOfWork``),
    given by the store that owns this one, so the two modules do not import each other."""

    def __init__(self, engine: Engine, unit_of_work: Callable[[Connection], _UnitOfWork],
                 ) -> None:
        self.engine = engine
        self._uow = unit_of_work

    def open_snapshots(self, definition: str | None = None) -> Sequence[Snapshot]:
        stmt = select(I.c.id).where(I.c.closed_at.is_(None))
        if definition is not None:
            stmt = stmt.where(I.c.definition == definition)
        stmt = stmt.order_by(I.c.ref, I.c.id)  # a listing a manager can follow
        with self.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(stmt)]
            snaps = self._uow(conn).load_many(ids)
            conn.rollback()
        return [snaps[i] for i in ids if i in snaps]

    def apply(self, change: Change, *, definition_version: int | None = None) -> None:
        with self.engine.connect() as conn:
            conn.begin()
            try:
                self._uow(conn).apply(change)
                if definition_version is not None:
                    conn.execute(update(I).where(I.c.id == change.instance_id)
                                 .values(definition_version=definition_version))
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def apply_each(self, changes: Sequence[Change], *,
                   definition_version: int | None = None) -> list[bool]:
        """``apply`` for many cases on one connection, still one transaction per case (a
        new connection per case costs more than the writes): True for each case written,
        False for one changed meanwhile (``ConcurrencyConflict``); any other error stops."""
        done: list[bool] = []
        with self.engine.connect() as conn:
            for change in changes:
                conn.begin()
                try:
                    self._uow(conn).apply(change)
                    if definition_version is not None:
                        conn.execute(update(I).where(I.c.id == change.instance_id)
                                     .values(definition_version=definition_version))
                except ConcurrencyConflict:
                    conn.rollback()
                    done.append(False)
                    continue
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()
                done.append(True)
        return done

    def calendar_baseline(self) -> tuple[str, dict[str, Any], datetime] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(CB).order_by(CB.c.id.desc()).limit(1)).first()
            conn.rollback()
        if row is None:
            return None
        return row.fingerprint, dict(row.settings or {}), row.recorded_at

    def save_calendar_baseline(self, fingerprint: str, settings: Mapping[str, Any],
                               at: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(CB).values(fingerprint=fingerprint, settings=dict(settings),
                                           recorded_at=at))



__all__ = ["SqlChangeStore", "CalendarBaselineRow"]
