"""PostgreSQL without autovacuum (or behind it): the store ANALYZEs the hot tables once they
have changed more than autovacuum would allow, so plans made on small tables do not stay."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from engine_support import PG_URL, START_DATA, T0, Backend
from sqlalchemy import text

from icsflow.workflow import Actor, FakeClock

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not PG_URL, reason="ICSFLOW_TEST_PG not set")]
IRO = Actor("iro-1", "iro")


def _stats(backend_engine: object, table: str) -> tuple[int, object]:
    with backend_engine.connect() as conn:  # type: ignore[attr-defined]
        row = conn.execute(text(
            "SELECT n_mod_since_analyze, last_analyze FROM pg_stat_user_tables "
            "WHERE schemaname = current_schema() AND relname = :t"), {"t": table}).one()
    return int(row[0]), row[1]


def test_stale_tables_are_analyzed_after_enough_writes(tmp_path: Path) -> None:
    backend = Backend("postgresql", tmp_path)
    engine = backend.open(FakeClock(T0))
    store = engine.store
    sql = store.engine  # type: ignore[attr-defined]
    calls: list[int] = []
    refresh = store._refresh_statistics  # type: ignore[attr-defined]
    store._refresh_statistics = lambda: (calls.append(1), refresh())  # type: ignore[attr-defined]
    store.STATISTICS_CHECK_ROWS = 10**9  # type: ignore[attr-defined]
    try:
        for k in range(100):  # past autovacuum's threshold: 50 rows and a tenth of the table
            engine.start("alert", ref=f"S-{k}", data=START_DATA, actor=IRO)
        assert calls == []
        # The server's table counters are published a moment after each transaction (PG 15
        # flushes a backend's counters within about a second of it going idle): wait for them,
        # bounded, so that the check below sees the writes it is meant to react to.
        deadline = time.monotonic() + 15
        while _stats(sql, "instances")[0] < 100:
            assert time.monotonic() < deadline, "the server never published its counters"
            time.sleep(0.2)
        assert _stats(sql, "instances")[1] is None  # never analyzed (autovacuum may be off)
        store.STATISTICS_CHECK_ROWS = 100  # type: ignore[attr-defined]
        for k in range(100, 140):  # at least three rows each
            engine.start("alert", ref=f"S-{k}", data=START_DATA, actor=IRO)
        assert calls, "no statistics check after 120 rows written"
        assert _stats(sql, "instances")[1] is not None, "instances was not analyzed"
    finally:
        engine.close()
        backend.drop()


def test_sqlite_never_checks(tmp_path: Path) -> None:
    backend = Backend("sqlite", tmp_path)
    engine = backend.open(FakeClock(T0))
    calls: list[int] = []
    engine.store._refresh_statistics = lambda: calls.append(1)  # type: ignore[attr-defined]
    engine.store.STATISTICS_CHECK_ROWS = 1  # type: ignore[attr-defined]
    try:
        engine.start("alert", ref="S-1", data=START_DATA, actor=IRO)
        assert calls == []
    finally:
        engine.close()
