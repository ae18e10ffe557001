"""A pooled PostgreSQL connection the server has dropped (a restart, an administrator, a proxy)
is replaced before use: the next call succeeds, with no round trip spent checking healthy
connections."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from engine_support import PG_URL, T0, Backend
from sqlalchemy import create_engine, text

from icsflow.workflow import Actor, FakeClock

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not PG_URL, reason="ICSFLOW_TEST_PG not set")]
IRO = Actor("iro-1", "iro")
DATA = {"concern": "no plan", "iro_email": "iro@example.org"}


def _kill_pooled_backends(engine_url_pids: list[int]) -> None:
    admin = create_engine(str(PG_URL).replace(
        "postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for pid in engine_url_pids:
            assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
        # As after a restart: the server processes are gone before the next call (each poll
        # is a round trip to the server; no sleeping).
        deadline = time.monotonic() + 10
        while conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:p)"),
                           {"p": engine_url_pids}).scalar_one():
            assert time.monotonic() < deadline, "the backends did not end"
    admin.dispose()


def test_a_connection_dropped_by_the_server_is_replaced_before_use(tmp_path: Path) -> None:
    backend = Backend("postgresql", tmp_path)
    engine = backend.open(FakeClock(T0))
    try:
        first = engine.start("alert", ref="R-1", data=DATA, actor=IRO)
        sql = engine.store.engine  # type: ignore[attr-defined]
        with sql.connect() as conn:
            pids = [conn.execute(text("SELECT pg_backend_pid()")).scalar_one()]
        assert sql.pool.checkedin() >= 1
        _kill_pooled_backends(pids)
        # The pooled connection is dead now; the next calls must not see it.
        second = engine.start("alert", ref="R-2", data=DATA, actor=IRO)
        assert engine.get(second.id).ref == "R-2"
        assert engine.get(first.id).ref == "R-1"
        with sql.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() not in pids
    finally:
        engine.close()
        backend.drop()
