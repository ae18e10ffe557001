"""Benchmark: ``icsflow report`` on a county year beside a plain SQL scan of the history table.

Run as ``python bench/report.py [--children 1500] [--db URL]``. It builds a year (1 April 2011 to
31 March 2012) through the Engine API in logical time (each event at its own date, recorded at
that moment by a fake clock; no timers run, so no email is made): about 1,500 children with
looked-after review cycles, child protection conferences, Alerts and dual status, about 15,000
history rows. Then, in the same run, it times

* the report as the CLI builds it (``build_report``: load, fold, figures, JSON), best of 3,
  with the number of SQL statements it issued;
* ``SELECT * FROM history`` fetched whole, best of 3: the floor any report reading history has.

A fresh SQLite file by default; ``--db`` takes a PostgreSQL URL (its tables must be empty).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

# bench/ holds a calendar.py that would shadow the standard library's: use the repository root.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from sqlalchemy import event, text  # noqa: E402

from icsflow.workflow import Actor, Engine  # noqa: E402
from icsflow.workflow.clock import LONDON, FakeClock  # noqa: E402
from icsflow.workflow.logging import configure_logging  # noqa: E402
from icsflow.workflow.reports import Window, build_report, final_states  # noqa: E402

YEAR_START = date(2011, 4, 1)
YEAR_END = date(2012, 3, 31)
TM = "tm@council.example"
PN = [f"PN{i}" for i in range(8)]
DIRECTORY = {k: [f"{k}@council.example"] for k in (
    "iro_service_manager", "admin", "head_of_service", "director", "service_manager",
    "minute_manager")}


def at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, clock_time(hour), LONDON)


class Generator:
    """One county year through the API, deterministic for a seed."""

    def __init__(self, engine: Engine, clock: FakeClock, seed: int = 2011) -> None:
        self.engine = engine
        self.clock = clock
        self.rng = random.Random(seed)
        self.events = 0

    def day(self, after: date, low: int, high: int) -> date:
        return after + timedelta(days=self.rng.randint(low, high))

    def start(self, name: str, ref: str, child: str, role: str, day: date, **data: Any) -> str:
        self.clock.set(at(day))
        self.events += 1
        return self.engine.start(name, ref=ref, data=data, actor=Actor(f"{role}-1", role),
                                 at=at(day), child=child).id

    def fire(self, case: str, event_name: str, role: str, day: date | datetime,
             **data: Any) -> None:
        moment = day if isinstance(day, datetime) else at(day, 12)
        self.clock.set(moment)
        self.events += 1
        self.engine.fire(case, event_name, actor=Actor(f"{role}-1", role), data=data or None,
                         at=moment)

    def looked_after(self, child: str, iros: int) -> None:
        began = self.day(YEAR_START - timedelta(days=60), 0, 400)
        case = self.start("initial_review", f"LAC-{child}", child, "social_worker", began,
                          looked_after_on=began.isoformat(), team_manager_email=TM)
        asked = self.day(began, 1, 18)
        self.fire(case, "request_review", "social_worker", asked)
        iro = f"iro-{self.rng.randint(1, iros):02d}"
        self.fire(case, "allocate", "admin", asked + timedelta(days=1), iro_id=iro,
                  iro_email=f"{iro}@council.example")
        held = self.day(began, 14, 35)
        for gap in (90, 180, 180):
            if held > YEAR_END:
                return
            self.fire(case, "schedule", "admin", held - timedelta(days=7),
                      review_date=held.isoformat())
            self.fire(case, "hold", "iro", held, held_on=held.isoformat(),
                      participation=self.rng.choice(PN))
            self.fire(case, "distribute_minutes", "admin", self.day(held, 1, 10))
            held = self.day(held, gap - 20, gap + 10)

    def protection(self, child: str) -> None:
        strategy = self.day(YEAR_START - timedelta(days=30), 0, 380)
        case = self.start("cp_conference", f"CP-{child}", child, "cpc", strategy,
                          strategy_discussion_on=strategy.isoformat(), team_manager_email=TM)
        held = self.day(strategy, 10, 25)
        if held > YEAR_END:
            return
        self.fire(case, "hold_icpc", "cpc", at(held), held_at=at(held), plan_made=True)
        self.fire(case, "distribute_minutes", "admin", at(held) + timedelta(
            hours=self.rng.choice((4, 20, 30, 70))))
        for gap in (90, 180):
            held = self.day(held, gap - 20, gap + 10)
            if held > YEAR_END:
                return
            self.fire(case, "hold_review", "cpc", at(held), held_at=at(held),
                      plan_continues=self.rng.random() < 0.7)
            self.fire(case, "distribute_minutes", "admin", at(held) + timedelta(hours=6))
            if self.engine.get(case).closed:
                return

    def alert(self, n: int) -> None:
        raised = self.day(YEAR_START, 0, 360)
        case = self.start("alert_dispute", f"ALERT-{n}", f"child-{n:04d}", "iro", raised,
                          concern="plan drift", team_manager_email=TM,
                          iro_email="iro@council.example",
                          category=self.rng.choice(["plan_progress", "care_plan", "practice"]))
        self.fire(case, "respond", "team_manager", self.day(raised, 2, 20))
        if self.rng.random() < 0.3:
            self.fire(case, "escalate", "iro", self.day(raised, 21, 25))
        self.fire(case, "resolve", "iro", self.day(raised, 26, 40))

    def year(self, children: int) -> None:
        iros = max(1, children * 55 // 100 // 60)
        for k in range(children):
            child = f"child-{k:05d}"
            roll = self.rng.random()
            if roll < 0.55:
                self.looked_after(child, iros)
            elif roll < 0.95:
                self.protection(child)
            else:  # both: dual status starts (and ends) by itself, from the processes' signals
                self.looked_after(child, iros)
                self.protection(child)
        for n in range(max(1, children // 12)):
            self.alert(n)


def best_of(runs: int, work: Any) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=1500)
    parser.add_argument("--db", default=None, help="database URL (default: a temp SQLite file)")
    args = parser.parse_args()
    configure_logging(level="warning")
    # tmpfs when there is one: building the year is about the engine, not the disk.
    shm = Path("/dev/shm")
    folder = tempfile.mkdtemp(prefix="icsflow-report-bench-",
                              dir=shm if shm.is_dir() else None)
    url = args.db or f"sqlite:///{folder}/year.db"
    clock = FakeClock(at(YEAR_START))
    engine = Engine.open(db=url, clock=clock, directory=DIRECTORY)
    t0 = time.perf_counter()
    gen = Generator(engine, clock)
    gen.year(args.children)
    built = time.perf_counter() - t0
    sql = engine.store.engine
    with sql.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM history")).scalar_one()
        conn.rollback()
    print(f"year built through the API: {args.children} children, {gen.events} events, "
          f"{rows} history rows in {built:.1f} s ({sql.dialect.name})")
    statements: list[str] = []

    def count(*a: Any) -> None:
        statements.append(a[2])

    window = Window.resolve(start=None, end=None, as_at=YEAR_END, known_at=None,
                            today=YEAR_END)
    finals = final_states(engine.definitions)
    event.listen(sql, "before_cursor_execute", count)
    report_s, report = best_of(3, lambda: build_report(sql, window, final_states=finals))
    event.remove(sql, "before_cursor_execute", count)
    per_run = [s for s in statements if s.lstrip().upper().startswith("SELECT")]

    def scan() -> int:
        with sql.connect() as conn:
            n = len(conn.execute(text("SELECT * FROM history")).all())
            conn.rollback()
        return n

    scan_s, scanned = best_of(3, scan)
    data = report.to_json()
    print(f"report (as at {YEAR_END}): {report_s:.3f} s, {len(per_run) // 3} SELECTs per report")
    print(f"plain scan of history ({scanned} rows): {scan_s:.3f} s")
    print(f"ratio report/scan: {report_s / scan_s:.1f}x")
    print(f"figures: {data['lac_reviews']['held']} reviews held, "
          f"{data['cp_conferences']['initial_held']} initial conferences, "
          f"{data['alerts']['raised']} Alerts, dual status at as-at "
          f"{data['dual_status']['at_as_at']}")
    engine.close()


if __name__ == "__main__":
    main()
