"""Benchmark: ``icsflow import`` of a county year against firing the same events through the API.

Run as ``python bench/import.py [--children 1500] [--pg URL] [--quick]``. Generates a year
(about 1,500 children, 15,000 events across the four processes, every row valid by
construction), then on each store, in a fresh database:

* direct: each row through ``Engine.start`` / ``Engine.fire`` of ``Engine.open``, with
  ``tick(now=row.at)`` before it (what an embedding service replaying history would write);
* import: ``import_file`` (read, parse, dry run in a scratch SQLite database, then the replay
  with its ledger), the same as ``icsflow import FILE``.

Prints rows per second and the ratio, and checks both databases hold the same cases.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

# bench/ holds calendar.py, which would shadow the standard library's calendar module: run
# from the repository root instead of this folder.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import structlog  # noqa: E402
from sqlalchemy import text  # noqa: E402

from icsflow.workflow import Actor, Engine, FakeClock  # noqa: E402
from icsflow.workflow.transfer import import_file  # noqa: E402
from icsflow.workflow.transfer.generate import generate_year, write_csv  # noqa: E402
from icsflow.workflow.transfer.rows import CANONICAL, parse_at  # noqa: E402

NOW = datetime(2012, 4, 5, 12, 0, tzinfo=UTC)


def fire_directly(engine: Engine, path: Path) -> int:
    canonical = set(CANONICAL)
    ids: dict[tuple[str, str], str] = {}
    with path.open(encoding="utf-8") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: parse_at(r["at"]))
    for r in rows:
        at = parse_at(r["at"])
        engine.tick(now=at)
        data = {k: v for k, v in r.items() if k not in canonical and v}
        actor = Actor(r["actor"], r["role"])
        key = (r["definition"], r["ref"])
        if r["event"] == "start":
            ids[key] = engine.start(r["definition"], r["ref"], data, actor, at=at,
                                    child=r["child"] or None, family=r["family"] or None).id
        else:
            engine.fire(ids[key], r["event"], actor, data=data or None, note=r["note"] or None,
                        at=at)
    engine.tick(now=NOW)
    return len(rows)


def states(engine: Engine) -> Counter[tuple[str, str]]:
    return Counter((i.definition, i.state) for i in engine.list())


def fresh_pg(url: str) -> None:
    from icsflow.storage.db import create_db_engine

    sql = create_db_engine(url)
    with sql.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    sql.dispose()


def run(label: str, url_for: dict[str, str], extract: Path, rows: int,
        pg: bool) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    results: dict[str, float] = {}
    cpu: dict[str, float] = {}
    pictures = {}
    for path in ("direct", "import"):
        if pg:
            fresh_pg(url_for[path])
        engine = Engine.open(db=url_for[path], clock=FakeClock(NOW), migrate=True)
        try:
            start = time.perf_counter()
            cpu_start = time.process_time()
            if path == "direct":
                fire_directly(engine, extract)
            else:
                report = import_file(engine, extract)
                assert report.ok, report.problems[:5]
                assert report.applied == rows
            results[path] = time.perf_counter() - start
            cpu[path] = time.process_time() - cpu_start
            pictures[path] = states(engine)
        finally:
            engine.close()
    assert pictures["direct"] == pictures["import"], "import and direct API disagree"
    ratio = results["import"] / results["direct"]
    cpu_ratio = cpu["import"] / cpu["direct"]
    for path in ("direct", "import"):
        seconds = results[path]
        out.append((label, path, f"{rows:,}", f"{seconds:,.1f}", f"{rows / seconds:,.0f}",
                    f"{ratio:.2f}x" if path == "import" else "", f"{cpu[path]:,.1f}",
                    f"{cpu_ratio:.2f}x" if path == "import" else ""))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=2011)
    parser.add_argument("--pg", default=None, metavar="URL",
                        help="PostgreSQL database to use (its public schema is dropped)")
    parser.add_argument("--quick", action="store_true", help="150 children")
    parser.add_argument("--only", choices=("sqlite", "pg"), default=None)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    children = 150 if args.quick else args.children
    with tempfile.TemporaryDirectory(prefix="icsflow-bench-import-") as folder:
        start = time.perf_counter()
        year = generate_year(children, seed=args.seed)
        extract = write_csv(year, Path(folder) / "year.csv")
        made = time.perf_counter() - start
        by_process = Counter(r["definition"] for r in year)
        print(f"load average {os.getloadavg()[0]:.1f}; generated {len(year):,} rows for "
              f"{children:,} children in {made:.0f} s: "
              + ", ".join(f"{k} {v:,}" for k, v in sorted(by_process.items())), flush=True)
        table = [("store", "path", "rows", "seconds", "rows/s", "import/direct",
                  "CPU s (this process)", "CPU import/direct")]
        if args.only != "pg":
            table += run("SQLite", {p: f"sqlite:///{folder}/{p}.db" for p in ("direct",
                                                                                 "import")},
                         extract, len(year), pg=False)
        if args.pg and args.only != "sqlite":
            table += run("PostgreSQL", {"direct": args.pg, "import": args.pg}, extract,
                         len(year), pg=True)
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(c.rjust(w) if i > 1 else c.ljust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))


if __name__ == "__main__":
    main()
