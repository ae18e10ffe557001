"""SQLite on a file keeps the connection of the last unit of work for the next one: the same
driver connection serves one command after another, a unit of work that failed leaves no
transaction open and is not kept, threads each get a working connection, and ``close`` gives
every connection back."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from icsflow.storage.db import create_db_engine, upgrade
from icsflow.storage.repository import SqlStore
from icsflow.storage.tables import InstanceRow

I = InstanceRow.__table__  # noqa: E741 - the table's short name, as in the store


def _store(tmp_path: Path) -> tuple[SqlStore, Path]:
    path = tmp_path / "kept.db"
    sql = create_db_engine(f"sqlite:///{path}")
    upgrade(sql)
    return SqlStore(sql), path


def _row(iid: str) -> dict[str, object]:
    t = datetime(2012, 4, 30, 9, tzinfo=UTC)
    return {"id": iid, "definition": "d", "definition_version": 1, "ref": iid, "state": "s",
            "data": {}, "version": 1, "created_at": t, "updated_at": t, "started_at": t}


def _insert(store: SqlStore, iid: str) -> object:
    with store.unit_of_work() as uow:
        uow.conn.execute(insert(I), [_row(iid)])
        return uow.conn.connection.dbapi_connection


def _count(path: Path) -> int:
    with sqlite3.connect(path) as raw:
        return int(raw.execute("SELECT count(*) FROM instances").fetchone()[0])


def test_one_driver_connection_serves_unit_after_unit(tmp_path: Path) -> None:
    store, path = _store(tmp_path)
    try:
        used = {id(_insert(store, f"c{k}")) for k in range(5)}
        assert len(used) == 1
        assert store.engine.pool.checkedout() == 1  # the kept one, between units
        assert _count(path) == 5
    finally:
        store.close()
    assert store.engine.pool.checkedout() == 0


def test_a_failed_unit_leaves_no_transaction_and_is_not_kept(tmp_path: Path) -> None:
    store, path = _store(tmp_path)
    try:
        _insert(store, "kept")
        with pytest.raises(RuntimeError), store.unit_of_work() as uow:
            uow.conn.execute(insert(I), [_row("rolled-back")])
            raise RuntimeError("a planning error after a write")
        assert store.engine.pool.checkedout() == 0  # closed, not kept
        # No write lock left behind: another connection writes at once.
        raw = sqlite3.connect(path, timeout=0.2, isolation_level=None)
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("ROLLBACK")
        raw.close()
        assert _count(path) == 1
        _insert(store, "after")  # the next unit takes a connection from the pool again
        with store.unit_of_work() as uow:
            ids = {r[0] for r in uow.conn.execute(select(I.c.id))}
        assert ids == {"kept", "after"}
    finally:
        store.close()


def test_threads_each_get_a_working_connection(tmp_path: Path) -> None:
    store, path = _store(tmp_path)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for k in range(40):
                _insert(store, f"t{t}-{k}")
                store.get(f"t{t}-{k}")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        assert errors == []
        with store.unit_of_work() as uow:
            assert uow.conn.execute(select(func.count()).select_from(I)).scalar() == 160
        assert store.engine.pool.checkedout() <= 1
    finally:
        store.close()
    assert _count(path) == 160
