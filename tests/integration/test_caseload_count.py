"""``count_open`` (an IRO's caseload in conditions) counts in the database for text values and
in Python for others, with Python's equality either way, on SQLite and PostgreSQL (and in
Python on the in-memory store)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine_support import Backend, backend  # noqa: F401 - the fixture
from sqlalchemy import insert

from icsflow.storage.db import create_db_engine, upgrade
from icsflow.storage.repository import SqlStore
from icsflow.storage.tables import InstanceRow
from icsflow.workflow.ports import Change, InstanceRecord, Store
from icsflow.workflow.testing import InMemoryStore

T0 = datetime(2012, 4, 30, 9, tzinfo=UTC)
CASES: list[tuple[str, dict[str, Any], datetime | None, str]] = [
    ("c1", {"iro_id": "iro-7"}, None, "initial_review"),
    ("c2", {"iro_id": "iro-7", "other": 1}, None, "initial_review"),
    ("c3", {"iro_id": "iro-7"}, T0, "initial_review"),          # closed: not counted
    ("c4", {"iro_id": "iro-7"}, None, "alert"),                   # another definition
    ("c5", {"iro_id": "IRO-7"}, None, "initial_review"),          # case matters
    ("c6", {"iro_id": 7}, None, "initial_review"),                # a number, not text
    ("c7", {"iro_id": "7"}, None, "initial_review"),
    ("c8", {"iro_id": ["iro-7"]}, None, "initial_review"),       # a list holding it
    ("c9", {}, None, "initial_review"),
    ("c10", {"iro_id": None}, None, "initial_review"),
    ("c11", {"iro_id": "it's \"quoted\" é"}, None, "initial_review"),
    ("c12", {"iro id": "iro-7"}, None, "initial_review"),         # a field name with a space
    ("c13", {"flag": True}, None, "initial_review"),
    ("c14", {"flag": 1}, None, "initial_review"),
]


def _store(backend: Backend) -> Store:  # noqa: F811
    if backend.kind == "memory":
        store = InMemoryStore()
        with store.unit_of_work() as uow:
            for i, data, closed, d in CASES:
                uow.apply(Change(i, None, new_instance=InstanceRecord(
                    id=i, definition=d, definition_version=1, ref=i, state="s", data=data,
                    row_version=1, created_at=T0, started_at=T0, closed_at=closed)))
        return store
    sql = create_db_engine(backend.url)
    upgrade(sql)
    with sql.begin() as conn:
        conn.execute(insert(InstanceRow.__table__), [
            {"id": i, "definition": d, "definition_version": 1, "ref": i, "state": "s",
             "data": data, "version": 1, "created_at": T0, "updated_at": T0, "started_at": T0,
             "closed_at": closed} for i, data, closed, d in CASES])
    return SqlStore(sql)


def _expected(field: str, value: Any, exclude: str | None) -> int:
    return sum(1 for i, data, closed, d in CASES
               if d == "initial_review" and closed is None and i != exclude
               and data.get(field) == value)


def test_counts_match_pythons_equality(backend: Backend) -> None:  # noqa: F811
    store = _store(backend)
    asks: list[tuple[str, Any, str | None]] = [
        ("iro_id", "iro-7", None), ("iro_id", "iro-7", "c1"), ("iro_id", "iro-7", "c3"),
        ("iro_id", "7", None), ("iro_id", 7, None), ("iro_id", "IRO-7", None),
        ("iro_id", "it's \"quoted\" é", None), ("iro_id", "nobody", None),
        ("iro id", "iro-7", None), ("flag", True, None), ("flag", 1, None),
        ("missing", "x", None)]
    try:
        with store.unit_of_work() as uow:
            for field, value, exclude in asks:
                got = uow.count_open("initial_review", field, value, exclude=exclude)
                assert got == _expected(field, value, exclude), (field, value, exclude)
        assert _expected("iro_id", "iro-7", None) == 2  # the fixture means something
    finally:
        store.close()


def test_opening_an_engine_indexes_the_fields_its_definitions_count(
        backend: Backend) -> None:  # noqa: F811
    """The shipped initial review counts ``caseload('iro_id', ...)``: an engine that writes
    makes the index its count uses; a read-only one makes nothing."""
    from sqlalchemy import text

    backend.needs_sql("the count index is a database index")

    from icsflow.workflow import Engine, FakeClock

    def indexes() -> set[str]:  # SQLAlchemy's inspector leaves expression indexes out
        sql = create_db_engine(backend.url)
        query = ("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'instances'"
                 if backend.kind == "sqlite" else
                 "SELECT indexname FROM pg_indexes WHERE tablename = 'instances' "
                 "AND schemaname = current_schema()")
        try:
            with sql.connect() as conn:
                return {r[0] for r in conn.execute(text(query))}
        finally:
            sql.dispose()

    read_only_first = backend.kind == "sqlite"
    if read_only_first:  # SQLite: a read-only engine on an existing file changes nothing
        Engine.open(backend.url, clock=FakeClock(T0), migrate=True).close()
        sql = create_db_engine(backend.url)
        with sql.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ix_instances_count_iro_id")
        sql.dispose()
        Engine.open(backend.url, clock=FakeClock(T0), read_only=True).close()
        assert "ix_instances_count_iro_id" not in indexes()
    Engine.open(backend.url, clock=FakeClock(T0), migrate=True).close()
    assert "ix_instances_count_iro_id" in indexes()
    Engine.open(backend.url, clock=FakeClock(T0), migrate=True).close()  # twice: no error
