"""A county year replayed (not a test): ``python bench/county.py [--pg URL] [--children N]``.

The demo's year (``icsflow demo``: Alerts, looked-after reviews, child protection conferences,
dual status that starts by itself from the children's conferences and reviews) copied for
``--children`` children (1,500 by default), each copy shifted by 0-7 weeks so that the county's
work spreads over the year, then replayed day by day through the public API in logical time: a
fake clock, ``Engine.tick`` each morning, the day's starts and events through ``Engine.start``
and ``Engine.fire``. Emails stay queued in the outbox (dispatch is measured by
``bench/dispatch.py``). Each replay runs in a fresh process on a fresh database (a temp SQLite
file or a new PostgreSQL schema) so its peak RSS is its own; 1x and 10x are printed with wall
time, operations per second and the growth ratio (10x time / 1x time; linear is 10), the 1x
time the median of ``--repeat`` replays (3).
"""

# ruff: noqa: E402
from __future__ import annotations

import sys

sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("bench")]

import argparse
import json
import logging
import os
import re
import resource
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog
from sqlalchemy import create_engine, text

from icsflow.workflow import Actor, Engine, FakeClock
from icsflow.workflow.cli.demo import (
    CASES,
    DIRECTORY,
    DOMAIN,
    FIRST_DAY,
    LAST_DAY,
    DemoCase,
    Step,
)
from icsflow.workflow.clock import LONDON
from icsflow.workflow.errors import WorkflowError

structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})")
WEEKS = 8  # copy k starts k % 8 weeks after the demo's dates


def _shift_value(value: str, days: int) -> str:
    m = DATE.match(value)
    if not m:
        return value
    moved = date.fromisoformat(m.group(1)) + timedelta(days=days)
    return moved.isoformat() + value[len(m.group(1)):]


def _copy_data(d: dict[str, str], k: int) -> dict[str, str]:
    """Copy ``k``'s data: dates moved by ``k % 8`` weeks, its own addresses and IROs."""
    days = 7 * (k % WEEKS)
    out = {key: _shift_value(v, days).replace(f"@{DOMAIN}", f".{k}@{DOMAIN}")
           for key, v in d.items()}
    if "iro_id" in out:  # each IRO takes a few copies: inside the caseload band
        out["iro_id"] = f"{out['iro_id']}-{k // 7}"
    return out


def _copy(case: DemoCase, k: int) -> DemoCase:
    """Copy ``k`` of a demo case: its own child, refs and addresses, dates moved by weeks; its
    steps are copied one by one, on their day (``_copy_step``)."""
    days = 7 * (k % WEEKS)
    return replace(case, ref=f"{case.ref}-{k:05d}", on=_shift_value(case.on, days),
                   data=_copy_data(case.data, k), steps=(), child=f"{case.child}-{k:05d}")


def _copy_step(step: Step, k: int) -> Step:
    return replace(step, on=_shift_value(step.on, 7 * (k % WEEKS)), data=_copy_data(step.data, k))


class County:
    """The county's scripted year, made one day at a time: the copies of the demo's cases that
    start on a day and the steps due on it, in the order of copy then case (as a list of every
    copy would give them). Holding the whole year cost about 8 MB per 1,500 children: the
    script's memory, not the engine's, which the peak RSS is meant to show."""

    def __init__(self, children: int) -> None:
        per_copy = len({c.child for c in CASES})
        self.copies = -(-children // per_copy)
        self.cases = self.copies * len(CASES)
        self._starts: dict[str, list[tuple[int, int]]] = {}
        self._steps: dict[str, list[tuple[int, int, int]]] = {}
        for ci, case in enumerate(CASES):
            for w in range(WEEKS):
                self._starts.setdefault(_shift_value(case.on, 7 * w), []).append((ci, w))
                for si, step in enumerate(case.steps):
                    self._steps.setdefault(_shift_value(step.on, 7 * w), []).append((ci, si, w))

    def starts(self, day: str) -> list[DemoCase]:
        found = sorted((k, ci) for ci, w in self._starts.get(day, ())
                       for k in range(w, self.copies, WEEKS))
        return [_copy(CASES[ci], k) for k, ci in found]

    def steps(self, day: str) -> list[tuple[DemoCase, Step]]:
        found = sorted((k, ci, si) for ci, si, w in self._steps.get(day, ())
                       for k in range(w, self.copies, WEEKS))
        return [(_copy(CASES[ci], k), _copy_step(CASES[ci].steps[si], k))
                for k, ci, si in found]


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, datetime.min.time().replace(hour=hour), LONDON)


def replay(url: str, county: County) -> dict[str, Any]:
    """The year, day by day: tick at 07:00, starts at 10:00, events at 11:00. The time taken
    to make each day's script (about 1 %) is left out of the replay's seconds."""
    clock = FakeClock(_at(FIRST_DAY, 0))
    engine = Engine.open(db=url, clock=clock, directory=DIRECTORY,
                         admin_address=f"icsflow.admin@{DOMAIN}", sender=f"icsflow@{DOMAIN}")
    ids: dict[str, str] = {}
    counts: Counter[str] = Counter()
    last = LAST_DAY + timedelta(weeks=WEEKS)
    input_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    scripting = 0.0
    t = time.perf_counter()
    day = FIRST_DAY
    while day <= last:
        key = day.isoformat()
        clock.set(_at(day, 7))
        result = engine.tick(now=_at(day, 7))
        counts["timers"] += result.fired + result.breached + result.skipped
        made = time.perf_counter()
        starts, steps = county.starts(key), county.steps(key)
        scripting += time.perf_counter() - made
        for c in starts:
            if c.auto:
                continue
            clock.set(_at(day, 10))
            inst = engine.start(c.definition, ref=c.ref, data=c.data,
                                actor=Actor(f"{c.role}-{c.ref.lower()}", c.role),
                                at=_at(day, 10), child=c.child)
            ids[c.ref] = inst.id
            counts["starts"] += 1
        for c, s in steps:
            clock.set(_at(day, 11))
            if c.ref not in ids:  # started by itself (dual status): found by its child
                found = [i for i in engine.list(definition=c.definition, child=c.child)
                         if not i.closed]
                if not found:
                    counts["refused"] += 1
                    continue
                ids[c.ref] = found[0].id
            try:
                engine.fire(ids[c.ref], s.event, Actor(f"{s.role}-{c.ref.lower()}", s.role),
                            data=s.data or None, at=_at(day, 11))
                counts["events"] += 1
            except WorkflowError:
                counts["refused"] += 1
        day += timedelta(days=1)
    seconds = time.perf_counter() - t - scripting
    engine.close()
    return {"seconds": seconds, **counts, "input_mb": input_mb,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


@contextmanager
def database(kind: str, pg: str | None) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            yield f"sqlite:///{d}/county.db"
        return
    assert pg
    schema = f"county_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in pg else "?"
    try:
        yield f"{pg}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def one(kind: str, pg: str | None, children: int) -> dict[str, Any]:
    """One replay in a fresh process (its peak RSS is its own)."""
    cmd = [sys.executable, __file__, "--one", kind, "--children", str(children)]
    if pg:
        cmd += ["--pg", pg]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default=os.environ.get("ICSFLOW_TEST_PG"),
                        help="PostgreSQL URL (default $ICSFLOW_TEST_PG); SQLite always runs")
    parser.add_argument("--children", type=int, default=1500)
    parser.add_argument("--scales", default="1,10", help="comma-separated multiples")
    parser.add_argument("--repeat", type=int, default=3,
                        help="replays of the first scale; the growth is against their median")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--one", choices=["sqlite", "postgresql"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        with database(args.one, args.pg) as url:
            print(json.dumps(replay(url, County(args.children))))
        return
    kinds = ["sqlite"] + (["postgresql"] if args.pg and not args.sqlite_only else [])
    scales = [int(s) for s in args.scales.split(",")]
    print(f"county year: {args.children:,} children ({County(args.children).cases:,} cases) "
          f"x {scales}; load {os.getloadavg()[0]:.1f}")
    for kind in kinds:
        base: float | None = None
        for scale in scales:
            runs = [one(kind, args.pg, args.children * scale)
                    for _ in range(max(1, args.repeat) if base is None else 1)]
            # The first scale's time is the growth's denominator: on a shared machine one
            # replay can be a third slower than the next, so it is the median of a few.
            runs.sort(key=lambda r: float(r["seconds"]))
            r = runs[len(runs) // 2]
            if len(runs) > 1:
                print(f"{kind:<10} {scale:>3}x  replays: "
                      + ", ".join(f"{x['seconds']:.1f} s" for x in runs) + " (the median below)",
                      flush=True)
            ops = r.get("timers", 0) + r.get("starts", 0) + r.get("events", 0)
            base = base if base is not None else r["seconds"] / scale
            growth = r["seconds"] / base
            print(f"{kind:<10} {scale:>3}x  {r['seconds']:8.1f} s  {ops / r['seconds']:7.0f} "
                  f"ops/s  (timers {r.get('timers', 0):,}, starts {r.get('starts', 0):,}, "
                  f"events {r.get('events', 0):,}, refused {r.get('refused', 0):,})  "
                  f"peak RSS {r['rss_mb']:.0f} MB (the replay added "
                  f"{r['rss_mb'] - r['input_mb']:.0f} MB)  growth {growth:.1f}x for {scale}x",
                  flush=True)


if __name__ == "__main__":
    main()
