"""Engine benchmarks (not a test): ``python bench/engine.py [--pg URL] [--quick]``.

Every rate is measured beside a *floor* doing the same durable work with the bare driver
(``sqlite3`` / ``psycopg``) in the same process, interleaved, three rounds, medians; so the
ratios hold on a loaded machine even when the absolute numbers do not.

  fire   ``Engine.fire`` committing each event, against the floor: read the case row and its
         pending timers, a version-checked UPDATE, cancel the state timer, insert the next
         timer, one history row, one outbox row, one commit.
  tick   ``Engine.tick`` firing due timers in batches of 500, against the floor: claim 500
         (one UPDATE ... RETURNING, committed), read their cases and pending timers (two
         queries), mark the timers fired, bump the cases, insert history and outbox rows, each
         statement sent once per batch with ``executemany``, one commit per batch.
  start  ``Engine.start`` committing each case, against the floor: insert the case row, its
         history row and its state timer, one commit.
  aps    APScheduler 3 (``SQLAlchemyJobStore`` on the same kind of database, its default
         thread pool) running the same number of past-due date jobs, each inserting one row.

``--only bc`` runs the older claim-time and memory measurements instead (claiming 500 among
10,000 and 1,000,000 pending timers; peak memory of one tick over them).
"""

# ruff: noqa: E402, E741
from __future__ import annotations

import sys

# bench/ holds calendar.py, which would shadow the standard library's calendar module.
sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("bench")]

import argparse
import json
import logging
import os
import platform
import resource
import sqlite3
import statistics
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog
from sqlalchemy import Engine as SqlEngine
from sqlalchemy import create_engine, event, insert, text

from icsflow.definitions.loader import load_text
from icsflow.storage.db import create_db_engine, upgrade
from icsflow.storage.repository import SqlStore
from icsflow.storage.tables import HistoryRow, InstanceRow, TimerRow
from icsflow.workflow import Actor, Engine, FakeClock

# The library logs each start and firing at info; a benchmark prints only its table.
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

BENCH_YAML = """
name: bench
version: 1
title: Bench
description: a timer-fired close, a user event that moves on and sets the next timer
roles:
  clerk: {}
  service_desk: {directory: true}
start_roles: [clerk]
initial: waiting
states:
  waiting: {}
  working: {}
  done: {final: true}
transitions:
  - event: expire
    from: waiting
    to: done
    notify: [{to: [service_desk], template: done}]
  - event: go
    from: waiting
    to: working
    roles: [clerk]
    notify: [{to: [service_desk], template: moved}]
  - event: close
    from: working
    to: done
    roles: [clerk]
timers:
  - name: wake
    state: waiting
    after: 1 day
    fire: expire
  - name: remind
    state: working
    after: 5 days
    fire: close
templates:
  done: {subject: "Case {{ ref }} done", body: "Done at {{ event_at }}."}
  moved: {subject: "Case {{ ref }} moved on", body: "Moved on at {{ event_at }}."}
"""

T0 = datetime(2024, 1, 8, 9, tzinfo=UTC)
DUE = T0 + timedelta(days=1)
FAR = T0 + timedelta(days=3650)
NOW = T0 + timedelta(days=2)
CLERK = Actor("clerk-1", "clerk")
I, H, TM = InstanceRow.__table__, HistoryRow.__table__, TimerRow.__table__
ROUNDS = 3


# -- databases -------------------------------------------------------------------------------

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


def case_id(k: int) -> str:
    return f"{k:08d}-0000-0000-0000-000000000000"


def bulk_cases(url: str, n: int, due: int, chunk: int = 20_000) -> list[str]:
    """``n`` waiting cases (a start history row, one pending state timer each); the first
    ``due`` timers are due at DUE, the others ten years out. Returns the case ids."""
    sql = create_db_engine(url)
    ids = [case_id(k) for k in range(n)]
    for start in range(0, n, chunk):
        part = ids[start:start + chunk]
        with sql.begin() as conn:
            conn.execute(insert(I), [
                {"id": i, "definition": "bench", "definition_version": 1, "ref": f"R{i[:8]}",
                 "state": "waiting", "data": {}, "version": 1, "created_at": T0,
                 "updated_at": T0, "started_at": T0, "closed_at": None} for i in part])
            conn.execute(insert(H), [
                {"instance_id": i, "event": "start", "from_state": None, "to_state": "waiting",
                 "actor_id": "clerk-1", "role": "clerk", "happened_at": T0, "recorded_at": T0,
                 "note": None, "changes": {}} for i in part])
            conn.execute(insert(TM), [
                {"instance_id": i, "name": "wake", "kind": "timer", "deadline": None,
                 "state": "waiting", "due_at": DUE if start + k < due else FAR,
                 "first_due_at": None, "action": "fire:expire", "status": "pending",
                 "attempts": 0, "repeat_count": 0, "created_at": T0}
                for k, i in enumerate(part)])
    if sql.dialect.name == "postgresql":
        with sql.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    else:
        with sql.begin() as conn:
            conn.execute(text("ANALYZE"))
    sql.dispose()
    return ids


def open_engine(url: str) -> Engine:
    return Engine.open(url, definitions=load_text(BENCH_YAML, "bench.yaml"),
                       clock=FakeClock(NOW), directory={"service_desk": ["desk@example.org"]})


# -- the bare driver -------------------------------------------------------------------------

class Driver:
    """The same SQL on sqlite3 or psycopg: ``?`` placeholders become ``%s``; ``IN (...)``
    lists are expanded on SQLite and ``= ANY(list)`` on PostgreSQL. SQLite gets the engine's
    settings (WAL, synchronous=NORMAL, foreign keys, BEGIN IMMEDIATE)."""

    def __init__(self, url: str) -> None:
        self.pg = url.startswith("postgresql")
        if self.pg:
            import psycopg

            dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
            self.conn: Any = psycopg.connect(dsn)
        else:
            self.conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                           "busy_timeout=30000"):
                self.conn.execute(f"PRAGMA {pragma}")
        self.cur = self.conn.cursor()

    def sql(self, q: str) -> str:
        return q.replace("?", "%s") if self.pg else q

    def ts(self, value: datetime) -> Any:
        return value if self.pg else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def jsonb(self, value: Any) -> Any:
        if self.pg:
            from psycopg.types.json import Json

            return Json(value)
        return json.dumps(value)

    def begin(self) -> None:
        if not self.pg:
            self.cur.execute("BEGIN IMMEDIATE")  # psycopg opens a transaction by itself

    def commit(self) -> None:
        self.conn.commit() if self.pg else self.cur.execute("COMMIT")

    def run(self, q: str, params: Any = ()) -> Any:
        return self.cur.execute(self.sql(q), params)

    def many(self, q: str, rows: list[Any]) -> None:
        self.cur.executemany(self.sql(q), rows)

    def in_list(self, q: str, ids: list[Any]) -> Any:
        """``q`` holds ``IN ({ids})``."""
        if self.pg:
            return self.cur.execute(q.replace("IN ({ids})", "= ANY(%s)").replace("?", "%s"),
                                    (ids,))
        return self.cur.execute(q.replace("{ids}", ",".join("?" * len(ids))), ids)

    def close(self) -> None:
        self.conn.close()


INS_HISTORY = ("INSERT INTO history (instance_id, event, from_state, to_state, actor_id, role, "
               "happened_at, recorded_at, note, changes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
INS_OUTBOX = ("INSERT INTO outbox (instance_id, recipients, subject, body, template, urgent, "
              "status, attempts, next_attempt_at, idempotency_key, created_at) "
              "VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)")
INS_TIMER = ("INSERT INTO timers (instance_id, name, kind, state, due_at, first_due_at, action, "
             "status, attempts, repeat_count, created_at) "
             "VALUES (?, ?, 'timer', ?, ?, ?, ?, 'pending', 0, 0, ?)")


def _check_version(cur: Any, iid: str) -> None:
    if cur.rowcount != 1:
        raise RuntimeError(f"floor: version conflict on {iid}")


# -- fire ------------------------------------------------------------------------------------

def fire_engine(url: str, ids: list[str]) -> float:
    engine = open_engine(url)
    t = time.perf_counter()
    for i in ids:
        engine.fire(i, "go", CLERK)
    elapsed = time.perf_counter() - t
    assert engine.get(ids[-1]).state == "working"
    engine.close()
    return len(ids) / elapsed


def fire_floor(url: str, ids: list[str]) -> float:
    db = Driver(url)
    now, nxt = db.ts(NOW), db.ts(NOW + timedelta(days=5))
    t = time.perf_counter()
    for i in ids:
        db.begin()
        row = db.run("SELECT id, state, data, version FROM instances WHERE id = ?", (i,)).fetchone()
        timers = db.run("SELECT id, name, state, due_at FROM timers WHERE instance_id = ? AND "
                        "status = 'pending' ORDER BY due_at, id", (i,)).fetchall()
        db.run("UPDATE instances SET state = ?, version = version + 1, updated_at = ? "
               "WHERE id = ? AND version = ?", ("working", now, i, row[3]))
        _check_version(db.cur, i)
        db.run("UPDATE timers SET status = 'cancelled', outcome = 'cancelled' "
               "WHERE id = ? AND status = 'pending'", (timers[0][0],))
        db.run(INS_HISTORY, (i, "go", "waiting", "working", "clerk-1", "clerk", now, now, None,
                             db.jsonb({})))
        db.run(INS_TIMER, (i, "remind", "working", nxt, nxt, "fire:close", now))
        db.run(INS_OUTBOX, (i, db.jsonb(["desk@example.org"]), f"Case R{i[:8]} moved on",
                            "Moved on.", "moved", False, now, f"{i}:v2:n0", now))
        db.commit()
    elapsed = time.perf_counter() - t
    db.close()
    return len(ids) / elapsed


# -- tick ------------------------------------------------------------------------------------

def tick_engine(url: str, n: int) -> float:
    engine = open_engine(url)
    t = time.perf_counter()
    result = engine.tick(DUE + timedelta(hours=1), batch_size=500, commit_every=500)
    elapsed = time.perf_counter() - t
    assert result.fired == n, result
    engine.close()
    return n / elapsed


def tick_floor(url: str, n: int) -> float:
    db = Driver(url)
    now, due, lease = db.ts(NOW), db.ts(DUE), db.ts(NOW + timedelta(seconds=30))
    fired = 0
    t = time.perf_counter()
    while True:
        db.begin()
        claimed = db.run(
            "UPDATE timers SET claimed_by = 'floor', claim_expires_at = ? WHERE id IN "
            "(SELECT id FROM timers WHERE status = 'pending' AND due_at <= ? "
            "AND claimed_by IS NULL ORDER BY due_at, id LIMIT 500) RETURNING id, instance_id",
            (lease, db.ts(DUE + timedelta(hours=1)))).fetchall()
        db.commit()
        if not claimed:
            break
        iids = [r[1] for r in claimed]
        db.begin()
        cases = {r[0]: r for r in db.in_list(
            "SELECT id, state, data, version FROM instances WHERE id IN ({ids})", iids)}
        db.in_list("SELECT id, instance_id, name, due_at FROM timers WHERE instance_id "
                   "IN ({ids}) AND status = 'pending' ORDER BY due_at, id", iids).fetchall()
        db.many("UPDATE timers SET status = 'fired', fired_at = ?, outcome = 'fired', "
                "attempts = attempts + 1, claimed_by = NULL, claim_expires_at = NULL "
                "WHERE id = ? AND claimed_by = 'floor'", [(now, r[0]) for r in claimed])
        db.many("UPDATE instances SET state = 'done', version = version + 1, updated_at = ?, "
                "closed_at = ? WHERE id = ? AND version = ?",
                [(now, due, i, cases[i][3]) for i in iids])
        db.many(INS_HISTORY, [(i, "expire", "waiting", "done", "system", "system", due, now,
                               None, db.jsonb({})) for i in iids])
        db.many(INS_OUTBOX, [(i, db.jsonb(["desk@example.org"]), f"Case R{i[:8]} done",
                              "Done.", "done", False, now, f"{i}:v2:n0", now) for i in iids])
        db.commit()
        fired += len(claimed)
    elapsed = time.perf_counter() - t
    db.close()
    assert fired == n, fired
    return n / elapsed


# -- start -----------------------------------------------------------------------------------

def start_engine(url: str, n: int) -> float:
    engine = open_engine(url)
    t = time.perf_counter()
    for k in range(n):
        engine.start("bench", ref=f"S{k:07d}", data=None, actor=CLERK)
    elapsed = time.perf_counter() - t
    engine.close()
    return n / elapsed


def start_floor(url: str, n: int) -> float:
    db = Driver(url)
    now, wake = db.ts(NOW), db.ts(NOW + timedelta(days=1))
    t = time.perf_counter()
    for k in range(n):
        i = str(uuid.uuid4())
        db.begin()
        db.run("INSERT INTO instances (id, definition, definition_version, ref, state, data, "
               "version, created_at, updated_at, started_at) "
               "VALUES (?, 'bench', 1, ?, 'waiting', ?, 1, ?, ?, ?)",
               (i, f"S{k:07d}", db.jsonb({}), now, now, now))
        db.run(INS_HISTORY, (i, "start", None, "waiting", "clerk-1", "clerk", now, now, None,
                             db.jsonb({})))
        db.run(INS_TIMER, (i, "wake", "waiting", wake, wake, "fire:expire", now))
        db.commit()
    elapsed = time.perf_counter() - t
    db.close()
    return n / elapsed


# -- APScheduler 3 ---------------------------------------------------------------------------

_APS_HITS: dict[str, Any] = {}


def aps_job(k: int) -> None:
    """One APScheduler job: one insert into the same database, then count it."""
    with _APS_HITS["engine"].begin() as conn:
        conn.execute(text("INSERT INTO aps_hits (k, at) VALUES (:k, :at)"),
                     {"k": k, "at": datetime.now(UTC).isoformat()})
    with _APS_HITS["lock"]:
        _APS_HITS["count"] += 1
        if _APS_HITS["count"] >= _APS_HITS["n"]:
            _APS_HITS["done"].set()


def _peer_sql(url: str) -> SqlEngine:
    """SQLAlchemy with its default pool; SQLite with the engine's own settings (WAL,
    synchronous=NORMAL, a busy timeout) so the peer is not slowed by a stricter default."""
    from icsflow.storage.db import normalise_url

    url = normalise_url(url)
    if not url.startswith("sqlite"):
        return create_engine(url)
    sql = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(sql, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000"):
            dbapi_conn.execute(f"PRAGMA {pragma}")
    return sql


def aps_rate(url: str, n: int) -> float:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    sql = _peer_sql(url)
    with sql.begin() as conn:
        conn.execute(text("CREATE TABLE aps_hits (k INTEGER, at VARCHAR(40))"))
    _APS_HITS.update(engine=sql, n=n, count=0, lock=threading.Lock(), done=threading.Event())
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=sql)},
        job_defaults={"misfire_grace_time": None, "coalesce": False, "max_instances": 1},
        timezone="UTC")
    scheduler.start(paused=True)
    past = datetime.now(UTC) - timedelta(minutes=5)
    for k in range(n):
        scheduler.add_job(aps_job, "date", run_date=past, args=[k], id=f"job{k}")
    t = time.perf_counter()
    scheduler.resume()
    finished = _APS_HITS["done"].wait(timeout=max(600, n))
    elapsed = time.perf_counter() - t
    scheduler.shutdown(wait=True)
    with sql.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM aps_hits")).scalar_one()
    sql.dispose()
    assert finished and rows == n, (finished, rows)
    return n / elapsed


# -- the run ---------------------------------------------------------------------------------

def measure_round(kind: str, pg: str | None, sizes: dict[str, int],
                  rates: dict[str, list[float]], skip_aps: bool) -> None:
    """One round of every measurement, each on a fresh database, engine and floor in turn."""
    n = sizes["fire"]
    for label, fn in (("fire engine", fire_engine), ("fire floor", fire_floor)):
        with database(kind, pg, "fire") as url:
            rates[label].append(fn(url, bulk_cases(url, n, 0)))
    n = sizes["tick"]
    for label, fn2 in (("tick engine", tick_engine), ("tick floor", tick_floor)):
        with database(kind, pg, "tick") as url:
            bulk_cases(url, n, n)
            rates[label].append(fn2(url, n))
    n = sizes["start"]
    for label, fn2 in (("start engine", start_engine), ("start floor", start_floor)):
        with database(kind, pg, "start") as url:
            open_engine(url).close()  # registers the definition, as an engine in use has
            rates[label].append(fn2(url, n))
    if not skip_aps:
        with database(kind, pg, "aps") as url:
            rates["aps"].append(aps_rate(url, sizes["tick"]))


def main_rates(args: argparse.Namespace, kinds: list[str]) -> None:
    sizes = {"fire": args.n_fire, "tick": args.n_tick, "start": args.n_start}
    print(f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, "
          f"{platform.machine()} x{os.cpu_count()}, load {os.getloadavg()[0]:.1f}, "
          f"sizes {sizes}, {args.rounds} rounds (median)")
    for kind in kinds:
        rates: dict[str, list[float]] = {k: [] for k in (
            "fire engine", "fire floor", "tick engine", "tick floor", "start engine",
            "start floor", "aps")}
        for r in range(args.rounds):
            measure_round(kind, args.pg, sizes, rates, args.no_aps)
            print(f"  {kind} round {r + 1}: " + ", ".join(
                f"{k} {v[-1]:.0f}/s" for k, v in rates.items() if v), flush=True)
        med = {k: statistics.median(v) for k, v in rates.items() if v}
        print(f"\n== {kind} (medians of {args.rounds}; load now {os.getloadavg()[0]:.1f})")
        targets = {"fire": 3.0 if kind == "sqlite" else 1.5, "tick": 2.0, "start": 2.0}
        for op, target in targets.items():
            e, f = med[f"{op} engine"], med[f"{op} floor"]
            verdict = "met" if f / e <= target else "MISSED"
            print(f"{op:<6} engine {e:8.0f}/s   floor {f:8.0f}/s   floor/engine {f / e:5.2f}x"
                  f"   target <= {target}x: {verdict}")
        if "aps" in med:
            e, a = med["tick engine"], med["aps"]
            verdict = "met" if e / a >= 2 else "MISSED"
            print(f"aps    APScheduler 3 {a:8.0f} jobs/s   tick/aps {e / a:5.2f}x"
                  f"   target >= 2x: {verdict}")


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
            t = time.perf_counter()
            bulk_cases(url, size, 1000)
            out[f"setup_{size}_s"] = time.perf_counter() - t
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


def main_claims(args: argparse.Namespace, kinds: list[str]) -> None:
    big = args.big or (50_000 if args.quick else 1_000_000)
    for kind in kinds:
        size = args.sqlite_big if kind == "sqlite" and args.sqlite_big else big
        res = claim_and_memory(kind, args.pg, [10_000, size])
        small, large = res["claim_10000_ms"], res[f"claim_{size}_ms"]
        print(f"== {kind}\n(b) claim 500 of 10,000: {small:.2f} ms; of {size:,}: {large:.2f} "
              f"ms; ratio {large / small:.2f} (setup {res[f'setup_{size}_s']:.0f} s)")
        print(f"(c) tick with {size:,} pending instances: fired {res['tick_fired']} in "
              f"{res['tick_s']:.2f} s, tracemalloc peak {res['tick_peak_mb']:.1f} MB, "
              f"process max RSS {res['maxrss_mb']:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default=os.environ.get("ICSFLOW_TEST_PG"),
                        help="PostgreSQL URL (default $ICSFLOW_TEST_PG); SQLite always runs")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--n-fire", type=int, default=None)
    parser.add_argument("--n-tick", type=int, default=None)
    parser.add_argument("--n-start", type=int, default=None)
    parser.add_argument("--no-aps", action="store_true", help="leave out APScheduler")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--big", type=int, default=None,
                        help="--only bc: pending timers (default 1,000,000; --quick 50,000)")
    parser.add_argument("--sqlite-big", type=int, default=None)
    parser.add_argument("--only", choices=["rates", "bc"], default="rates")
    args = parser.parse_args()
    args.n_fire = args.n_fire or (200 if args.quick else 1000)
    args.n_tick = args.n_tick or (500 if args.quick else 3000)
    args.n_start = args.n_start or (200 if args.quick else 1000)
    kinds = ["sqlite"] + (["postgresql"] if args.pg and not args.sqlite_only else [])
    run: Callable[[argparse.Namespace, list[str]], None] = (
        main_claims if args.only == "bc" else main_rates)
    run(args, kinds)


if __name__ == "__main__":
    main()
