"""Read-only questions the command line asks of a database, beside the engine's own reads.

``validate --db`` compares definition files with the versions cases already run on, and
``list --as-at`` needs when each deadline row was written; neither belongs on the engine's
store port (the engine never asks them), so they are plain functions on a SQLAlchemy Engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import cast

from sqlalchemy import Engine, Table, func, inspect, select

from icsflow.storage.tables import DeadlineRow, DefinitionRow, InstanceRow

I = cast(Table, InstanceRow.__table__)  # noqa: E741
D = cast(Table, DeadlineRow.__table__)
DEF = cast(Table, DefinitionRow.__table__)


@dataclass(frozen=True)
class UsedVersion:
    """A definition version registered in the database, with its cases."""

    name: str
    version: int
    content_hash: str
    open_cases: int
    all_cases: int


@dataclass(frozen=True)
class DeadlineRowInfo:
    """One deadline row as written: ``created_at`` is when the row was recorded."""

    id: int
    instance_id: str
    name: str
    due: date
    due_at: datetime
    status: str
    met_at: datetime | None
    created_at: datetime


def used_definitions(sql: Engine) -> list[UsedVersion]:
    """Every (name, version) the database has registered, oldest first; an empty database
    (no icsflow tables yet) has used none."""
    if not inspect(sql).has_table(DEF.name):
        return []
    counts = (select(I.c.definition, I.c.definition_version,
                     func.count().label("all_cases"),
                     func.count(I.c.closed_at).label("closed_cases"))
              .group_by(I.c.definition, I.c.definition_version).subquery())
    stmt = (select(DEF.c.name, DEF.c.version, DEF.c.content_hash,
                   func.coalesce(counts.c.all_cases, 0), func.coalesce(counts.c.closed_cases, 0))
            .outerjoin(counts, (counts.c.definition == DEF.c.name)
                       & (counts.c.definition_version == DEF.c.version))
            .order_by(DEF.c.name, DEF.c.version))
    with sql.connect() as conn:
        rows = conn.execute(stmt).all()
        conn.rollback()
    return [UsedVersion(r[0], r[1], r[2], int(r[3]) - int(r[4]), int(r[3])) for r in rows]


def deadline_rows(sql: Engine, instance_ids: Sequence[str]) -> list[DeadlineRowInfo]:
    """Every deadline row of these cases (met, cancelled and breached ones too), by id."""
    found: list[DeadlineRowInfo] = []
    ids = list(instance_ids)
    with sql.connect() as conn:
        for start in range(0, len(ids), 500):  # SQLite limits bound parameters
            chunk = ids[start:start + 500]
            for r in conn.execute(select(D).where(D.c.instance_id.in_(chunk)).order_by(D.c.id)):
                found.append(DeadlineRowInfo(r.id, r.instance_id, r.name, r.due_date, r.due_at,
                                             r.status, r.met_at, r.created_at))
        conn.rollback()
    return sorted(found, key=lambda d: d.id)


__all__ = ["UsedVersion", "DeadlineRowInfo", "used_definitions", "deadline_rows"]
