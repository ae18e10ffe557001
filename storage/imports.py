"""What ``icsflow import`` keeps in the database: the import ledger, and copying cases into a
scratch database for the dry run.

The ledger holds one row per applied extract row (its ``id`` from the source system, or a hash
of its content). It is written in the same transaction as the row's own transition, so an
import that stops part-way resumes from the last committed row and never applies a row twice.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    insert,
    select,
)

from icsflow.storage.tables import (
    DeadlineRow,
    DefinitionRow,
    HistoryRow,
    InstanceRow,
    TimerRow,
    UTCDateTime,
)

metadata = MetaData()

LEDGER = Table(
    "import_ledger", metadata,
    Column("row_key", String(300), primary_key=True),
    Column("instance_id", String(36), nullable=True),
    Column("ref", String(200), nullable=False),
    Column("definition", String(100), nullable=False),
    Column("event", String(100), nullable=False),
    Column("happened_at", UTCDateTime(), nullable=False),
    Column("source", String(300), nullable=False),
    Column("imported_at", UTCDateTime(), nullable=False),
    Index("ix_import_ledger_instance", "instance_id"),
)

I = cast(Table, InstanceRow.__table__)  # noqa: E741
H = cast(Table, HistoryRow.__table__)
D = cast(Table, DeadlineRow.__table__)
T = cast(Table, TimerRow.__table__)
DEF = cast(Table, DefinitionRow.__table__)


@dataclass(frozen=True)
class LedgerEntry:
    """One applied extract row."""

    row_key: str
    instance_id: str | None
    ref: str
    definition: str
    event: str
    happened_at: datetime
    source: str
    imported_at: datetime


_RECORD = insert(LEDGER)  # one statement, compiled once (``values(...)`` built one a row)


def record(conn: Connection, entry: LedgerEntry) -> None:
    """Write ``entry`` on ``conn`` (the transaction of the row's transition)."""
    conn.execute(_RECORD, [{
        "row_key": entry.row_key, "instance_id": entry.instance_id, "ref": entry.ref,
        "definition": entry.definition, "event": entry.event,
        "happened_at": entry.happened_at, "source": entry.source[:300],
        "imported_at": entry.imported_at}])


def known_keys(engine: Engine, keys: Iterable[str]) -> builtins.set[str]:
    """The subset of ``keys`` already applied."""
    wanted = list(dict.fromkeys(keys))
    found: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            found.update(r[0] for r in conn.execute(
                select(LEDGER.c.row_key).where(LEDGER.c.row_key.in_(chunk))))
        conn.rollback()
    return found


def has_instances(engine: Engine) -> bool:
    """Whether the database holds any case at all."""
    with engine.connect() as conn:
        found = conn.execute(select(I.c.id).limit(1)).first() is not None
        conn.rollback()
    return found


def earliest_pending_timer(engine: Engine) -> datetime | None:
    """When the next pending timer is due (None: none pending)."""
    from sqlalchemy import func

    with engine.connect() as conn:
        due = conn.execute(select(func.min(T.c.due_at)).where(T.c.status == "pending")
                           ).scalar_one_or_none()
        conn.rollback()
    if due is not None and due.tzinfo is None:
        from datetime import UTC

        due = due.replace(tzinfo=UTC)
    return cast(datetime | None, due)


def long_lived(engine: Engine) -> Engine:
    """An engine on the same database that keeps its connections open, for one long writer
    (an import). The shared SQLite engine opens a connection per transaction (``NullPool``),
    and closing the last one checkpoints the WAL to disk: 4 ms a row, most of an import's
    time. PostgreSQL engines already pool; they are returned as they are."""
    if engine.dialect.name != "sqlite":
        return engine
    from sqlalchemy import create_engine
    from sqlalchemy.pool import QueuePool

    from icsflow.storage.db import _sqlite_events

    pooled = create_engine(engine.url, connect_args={"timeout": 30, "check_same_thread": False},
                           poolclass=QueuePool, pool_size=2, max_overflow=2)
    _sqlite_events(pooled)
    return pooled


def copy_cases(source: Engine, target: Engine, instance_ids: Sequence[str]) -> None:
    """Copy the registered definitions, and instances with their history, deadlines and pending
    timers, from ``source`` into an empty ``target`` of the same schema (ids kept): the dry run
    starts from the real state, old definition versions included."""
    ids = list(dict.fromkeys(instance_ids))
    with source.connect() as src, target.begin() as dst:
        kept = [dict(r._mapping) for r in src.execute(select(DEF))]
        if kept:
            dst.execute(insert(DEF), kept)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for table, cond in ((I, I.c.id.in_(chunk)), (H, H.c.instance_id.in_(chunk)),
                                (D, D.c.instance_id.in_(chunk)),
                                (T, T.c.instance_id.in_(chunk) & (T.c.status == "pending"))):
                rows: list[dict[str, Any]] = [dict(r._mapping)
                                              for r in src.execute(select(table).where(cond))]
                if rows:
                    dst.execute(insert(table), rows)
        src.rollback()


__all__ = ["LEDGER", "LedgerEntry", "record", "known_keys", "copy_cases", "long_lived",
           "earliest_pending_timer", "has_instances",
           "metadata"]
