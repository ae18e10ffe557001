"""Benchmark: moving many open cases (``migrate``) and re-projecting their deadlines.

Run as ``python bench/changes.py [N]`` (default 2000 open Alerts on SQLite in a temp folder).
Prints the seconds for a dry-run and an applied migration v1 -> v2 (10 -> 5 working days), and
for a dry-run and an applied calendar re-projection after a closure day, with cases per second.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from icsflow.definitions.loader import load_text
from icsflow.definitions.registry import builtin_dir
from icsflow.workflow import Actor, Engine, FakeClock, WorkingCalendar
from icsflow.workflow.clock import LONDON


def main(n: int) -> None:
    text = (builtin_dir() / "alert_dispute.yaml").read_text(encoding="utf-8")
    v1 = load_text(text, "alert_dispute.yaml")
    v2 = load_text(text.replace("version: 1", "version: 2", 1)
                   .replace("after: 10 working days", "after: 5 working days"), "v2.yaml")
    folder = Path(tempfile.mkdtemp())
    db = f"sqlite:///{folder / 'bench.db'}"
    clock = FakeClock(datetime(2011, 12, 1, 9, tzinfo=LONDON))
    data = {"team_manager_email": "tm@example.org", "concern": "Plan drift"}
    with Engine.open(db, definitions=[v1], clock=clock) as engine:
        for i in range(n):
            day = date(2011, 12, 1) + timedelta(days=i % 20)
            engine.start("alert_dispute", f"A-{i:05d}", data, Actor("iro-1", "iro"),
                         at=datetime.combine(day, datetime.min.time(), LONDON))
    clock.set(datetime(2011, 12, 2, 9, tzinfo=LONDON))
    with Engine.open(db, definitions=[v1, v2], clock=clock) as engine:
        for dry in (True, False):
            t = time.perf_counter()
            plan = engine.migrate("alert_dispute", 2, dry_run=dry)
            s = time.perf_counter() - t
            print(f"migrate {'dry-run' if dry else 'applied'}: {len(plan.cases)} cases in "
                  f"{s:.2f} s ({len(plan.cases) / s:.0f} cases/s)")
    closed = WorkingCalendar(closures={date(2011, 12, 12): "Staff day"})
    with Engine.open(db, definitions=[v1, v2], clock=clock, calendar=closed) as engine:
        for dry in (True, False):
            t = time.perf_counter()
            plan = engine.reproject(dry_run=dry)
            s = time.perf_counter() - t
            print(f"reproject {'dry-run' if dry else 'applied'}: {len(plan.shifts)} deadlines "
                  f"moved of {n} open cases in {s:.2f} s ({n / s:.0f} cases/s)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
