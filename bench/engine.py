"""Engine benchmarks (not a test): ``python bench/engine.py [--pg URL] [--quick]``.

(a) timer firings per second (transition + history + outbox row each) against raw SQLAlchemy
    Core doing the same writes, committing each firing and in batches of 500;
(b) time to claim one batch of 500 due timers among 10,000 and among 1,000,000 pending ones;
(c) peak memory of ``tick`` with 1,000,000 pending instances.
Rows for (b) and (c) are bulk-inserted with Core. Results go to docs/performance.md by hand.
"""

# ruff: noqa: E402, E741
from __future__ import annotations

import sys

# bench/ holds calendar.py, which would shadow the standard library's calendar module.
sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("bench")]

import argparse
import os
import resource
import statistics
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine as SqlEngine  # noqa: E402
from sqlalchemy import bindparam, create_engine, insert, text, update  # noqa: E402

from icsflow.definitions.loader import load_text  # noqa: E402
from icsflow.storage.db import create_db_engine, upgrade  # noqa: E402
from icsflow.storage.repository import SqlStore  # noqa: E402
from icsflow.storage.tables import HistoryRow, InstanceRow, OutboxRow, TimerRow  # noqa: E402
from icsflow.workflow import Engine, FakeClock  # noqa: E402

BENCH_YAML = """
name: bench
version: 1
title: Bench
description: one timer, one transition, one email
roles:
  clerk: {}
  service_desk: {directory: true}
start_roles: [clerk]
initial: waiting
states:
  waiting: {}
  done: {final: true}
transitions:
  - event: go
    from: waiting
    to: done
    notify: [{to: [service_desk], template: done}]
timers:
  - name: wake
    state: waiting
    after: 1 day
    fire: go
templates:
  done: {subject: "Case {{ ref }} done", body: "Done at {{ event_at }}."}
"""

T0 = datetime(2024, 1, 8, 9, tzinfo=UTC)
DUE = T0 + timedelta(days=1)
FAR = T0 + timedelta(days=3650)
I, H, TM, O = (InstanceRow.__table__, HistoryRow.__table__, TimerRow.__table__,
               OutboxRow.__table__)


@contextmanager
def database(kind: str, pg: str | None, label: str) -> Iterator[str]:
    """A fresh, migrated database: a temp SQLite file or a new PostgreSQL schema."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            url = f"sqlite:///{d}/{label}.db"
            sql = create_db_engine(url)
            upgrade(sql)
            sql.dispose()
            yield url
        return
    assert pg
    schema = f"bench_{label}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(pg.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in pg else "?"
    url = f"{pg}{sep}options=-csearch_path%3D{schema}"
    try:
        sql = create_db_engine(url)
        upgrade(sql)
        sql.dispose()
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def bulk_cases(sql: SqlEngine, n: int, due: int, chunk: int = 20_000) -> None:
    """``n`` waiting instances, each with one pending timer; the first ``due`` are due."""
    now = T0
    for start in range(0, n, chunk):
        ids = [f"{i:08d}-0000-0000-0000-000000000000" for i in range(start, min(n, start + chunk))]
        with sql.begin() as conn:
            conn.execute(insert(I), [
                {"id": i, "definition": "bench", "definition_version": 1, "ref": f"R{i[:8]}",
                 "state": "waiting", "data": {}, "version": 1, "created_at": now,
                 "updated_at": now, "started_at": now, "closed_at": None} for i in ids])
            conn.execute(insert(TM), [
                {"instance_id": i, "name": "wake", "kind": "timer", "deadline": None,
                 "state": "waiting", "due_at": DUE if start + k < due else FAR,
                 "first_due_at": None, "action": "fire:go", "status": "pending",
                 "attempts": 0, "repeat_count": 0, "created_at": now}
                for k, i in enumerate(ids)])
    if sql.dialect.name == "postgresql":
        with sql.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE timers"))
    else:
        with sql.begin() as conn:
            conn.execute(text("ANALYZE"))


def open_engine(url: str) -> Engine:
    return Engine.open(url, definitions=load_text(BENCH_YAML, "bench.yaml"),
                       clock=FakeClock(T0 + timedelta(days=2)),
                       directory={"service_desk": ["desk@example.org"]})


# -- (a) firings per second -----------------------------------------------------------------

def engine_rate(kind: str, pg: str | None, n: int, commit_every: int) -> float:
    with database(kind, pg, "fire") as url:
        sql = create_db_engine(url)
        bulk_cases(sql, n, n)
        sql.dispose()
        engine = open_engine(url)
        t = time.perf_counter()
        result = engine.tick(DUE + timedelta(hours=1), batch_size=500, commit_every=commit_every)
        elapsed = time.perf_counter() - t
        assert result.fired == n, result
        engine.close()
    return n / elapsed


def raw_rate(kind: str, pg: str | None, n: int, commit_every: int) -> float:
    """The floor: the same writes per firing with Core, no reads, no planning."""
    with database(kind, pg, "raw") as url:
        sql = create_db_engine(url)
        bulk_cases(sql, n, n)
        ids = [f"{i:08d}-0000-0000-0000-000000000000" for i in range(n)]
        now = T0 + timedelta(days=2)
        t = time.perf_counter()
        conn = sql.connect()
        conn.begin()
        bump = (update(I).where(I.c.id == bindparam("iid"), I.c.version == 1)
                .values(state="done", version=2, updated_at=now, closed_at=DUE))
        mark = (update(TM).where(TM.c.instance_id == bindparam("iid"), TM.c.status == "pending")
                .values(status="fired", fired_at=now))
        ins_h, ins_o = insert(H), insert(O)
        for k, i in enumerate(ids, 1):
            conn.execute(bump, {"iid": i})
            conn.execute(ins_h, {
                "instance_id": i, "event": "go", "from_state": "waiting", "to_state": "done",
                "actor_id": "system", "role": "system", "happened_at": DUE,
                "recorded_at": now, "note": None, "changes": {}})
            conn.execute(ins_o, {
                "instance_id": i, "recipients": ["desk@example.org"],
                "subject": f"Case {i} done", "body": "Done.", "template": "done",
                "urgent": False, "status": "pending", "attempts": 0, "next_attempt_at": now,
                "idempotency_key": f"{i}:v2:n0", "created_at": now})
            conn.execute(mark, {"iid": i})
            if k % commit_every == 0:
                conn.commit()
                conn.begin()
        conn.commit()
        conn.close()
        elapsed = time.perf_counter() - t
        sql.dispose()
    return n / elapsed


# -- (b) claim time and (c) tick memory -------------------------------------------------------

def claim_ms(url: str, repeats: int = 7) -> float:
    sql = create_db_engine(url)
    store = SqlStore(sql)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        got = store.claim_due_timers(DUE + timedelta(hours=1), "bench", T0 + timedelta(days=3),
                                     500, clock_now=T0)
        times.append((time.perf_counter() - t) * 1000)
        assert len(got) == 500, len(got)
        store.release_timers([g.id for g in got], "bench")
    sql.dispose()
    return statistics.median(times)


def claim_and_memory(kind: str, pg: str | None, sizes: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for size in sizes:
        with database(kind, pg, f"claim{size}") as url:
            sql = create_db_engine(url)
            t = time.perf_counter()
            bulk_cases(sql, size, 1000)
            out[f"setup_{size}_s"] = time.perf_counter() - t
            sql.dispose()
            out[f"claim_{size}_ms"] = claim_ms(url)
            if size == sizes[-1]:
                engine = open_engine(url)
                tracemalloc.start()
                t = time.perf_counter()
                result = engine.tick(DUE + timedelta(hours=1))
                out["tick_s"] = time.perf_counter() - t
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                out["tick_fired"] = result.fired
                out["tick_peak_mb"] = peak / 1e6
                out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                engine.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default=os.environ.get("ICSFLOW_TEST_PG"),
                        help="PostgreSQL URL (default $ICSFLOW_TEST_PG); SQLite always runs")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--big", type=int, default=None,
                        help="pending timers for (b)/(c) (default 1,000,000; --quick 50,000)")
    parser.add_argument("--sqlite-big", type=int, default=None,
                        help="pending timers for (b)/(c) on SQLite (default as --big)")
    parser.add_argument("--only", choices=["a", "bc"], default=None,
                        help="run only (a), or only (b) and (c)")
    args = parser.parse_args()
    n = 500 if args.quick else 3000
    big = args.big or (50_000 if args.quick else 1_000_000)
    kinds = ["sqlite"] + (["postgresql"] if args.pg else [])
    print(f"python {sys.version.split()[0]}, firings per run {n}, big {big}")
    for kind in kinds:
        print(f"\n== {kind}")
        for commit_every, label in ((1, "commit each"), (500, "batch 500")):
            if args.only == "bc":
                break
            e = engine_rate(kind, args.pg, n, commit_every)
            r = raw_rate(kind, args.pg, n, commit_every)
            print(f"(a) {label:<12} engine {e:8.0f}/s   raw Core {r:8.0f}/s   "
                  f"raw/engine {r / e:4.2f}x")
        if args.only == "a":
            continue
        size = args.sqlite_big if kind == "sqlite" and args.sqlite_big else big
        res = claim_and_memory(kind, args.pg, [10_000, size])
        small, large = res["claim_10000_ms"], res[f"claim_{size}_ms"]
        print(f"(b) claim 500 of 10,000: {small:.2f} ms; of {size:,}: {large:.2f} ms; "
              f"ratio {large / small:.2f} (setup {res[f'setup_{size}_s']:.0f} s)")
        print(f"(c) tick with {size:,} pending instances: fired {res['tick_fired']} in "
              f"{res['tick_s']:.2f} s, tracemalloc peak {res['tick_peak_mb']:.1f} MB, "
              f"process max RSS {res['maxrss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
