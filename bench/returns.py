"""Benchmark: a county's statutory returns imported, beside the canonical import of the same
events.

Run as ``python bench/returns.py [--lac 1500] [--cin 600] [--pg URL] [--only sqlite|pg]
[--quick]``. Generates a county (``workflow/transfer/returns/generate.py``: a four-year SSDA903
extract and four CIN censuses, part of the census children also looked after), then on each
store, in a fresh database:

* returns: ``import_returns`` as ``icsflow import DIR --format ssda903 --with census...`` runs
  it (read and check the files, compare with what icsflow holds, derive the events, dry run,
  replay with the ledger);
* canonical: the same derived events written as a canonical CSV and imported with
  ``import_file`` (``icsflow import FILE.csv``): the floor the returns' own work sits on.

Prints wall seconds, rows per second and the CPU seconds of this process, and checks both
databases end with the same cases in the same states. Target: 60 s each (issue 26).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# bench/ holds calendar.py, which would shadow the standard library's calendar module: run
# from the repository root instead of this folder.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import structlog  # noqa: E402
from sqlalchemy import text  # noqa: E402

from icsflow.workflow import Engine, FakeClock  # noqa: E402
from icsflow.workflow.transfer import import_file  # noqa: E402
from icsflow.workflow.transfer.generate import write_csv  # noqa: E402
from icsflow.workflow.transfer.returns.cin_census import merge_censuses  # noqa: E402
from icsflow.workflow.transfer.returns.generate import County, generate_county  # noqa: E402
from icsflow.workflow.transfer.returns.held import read_held  # noqa: E402
from icsflow.workflow.transfer.returns.importing import (  # noqa: E402
    derive,
    import_returns,
    read_return,
)
from icsflow.workflow.transfer.returns.records import CinReturn  # noqa: E402
from icsflow.workflow.transfer.rows import EventRow  # noqa: E402

NOW = datetime(2013, 4, 5, 12, 0, tzinfo=UTC)
CONTACT = "returns-import@icsflow.invalid"


def sources(county: County) -> list[tuple[str, str | Path]]:
    return [("ssda903", county.ssda903), *(("cin-census", p) for p in county.censuses)]


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def canonical_csv(county: County, folder: Path) -> tuple[Path, int]:
    """The events the returns turn into, as a canonical extract (derived on an empty
    database, as the first import of the returns derives them)."""
    engine = Engine.open(db=f"sqlite:///{folder}/derive.db", clock=FakeClock(NOW))
    try:
        censuses = [read_return("cin-census", p) for p in county.censuses]
        merged = merge_censuses([c for c in censuses if isinstance(c, CinReturn)])
        rows: list[EventRow] = derive(engine, [read_return("ssda903", county.ssda903), merged],
                                      read_held(engine), contact=CONTACT, skip=set()).ordered()
    finally:
        engine.close()
    out = []
    for r in rows:
        row = {"ref": r.ref, "definition": r.definition, "event": r.event,
               "at": r.at.isoformat(), "actor": r.actor, "role": r.role, "child": r.child or "",
               "family": "", "note": r.note or "", "id": r.row_id or ""}
        row.update({k: _cell(v) for k, v in r.data.items()})
        out.append(row)
    return write_csv(out, folder / "canonical.csv"), len(out)


def states(engine: Engine) -> Counter[tuple[str, str]]:
    return Counter((i.definition, i.state) for i in engine.list_cases())


def fresh_pg(url: str) -> None:
    from icsflow.storage.db import create_db_engine

    sql = create_db_engine(url)
    with sql.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    sql.dispose()


def run(label: str, urls: dict[str, str], county: County, extract: Path, rows: int,
        pg: bool) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    pictures = {}
    for path in ("returns", "canonical"):
        if pg:
            fresh_pg(urls[path])
        engine = Engine.open(db=urls[path], clock=FakeClock(NOW), migrate=True)
        try:
            start, cpu = time.perf_counter(), time.process_time()
            if path == "returns":
                report = import_returns(engine, sources(county), contact=CONTACT)
                assert report.ok, report.imported.problems[:5]
                applied = report.imported.applied
            else:
                done = import_file(engine, extract)
                assert done.ok, done.problems[:5]
                applied = done.applied
            seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu
            pictures[path] = states(engine)
        finally:
            engine.close()
        assert applied == rows, (path, applied, rows)
        out.append((label, path, f"{rows:,}", f"{seconds:,.1f}", f"{rows / seconds:,.0f}",
                    f"{cpu_s:,.1f}", "met" if seconds <= 60 else "not met"))
    assert pictures["returns"] == pictures["canonical"], "returns and canonical disagree"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lac", type=int, default=1500, help="looked-after children")
    parser.add_argument("--cin", type=int, default=600, help="census children")
    parser.add_argument("--seed", type=int, default=2012)
    parser.add_argument("--pg", default=None, metavar="URL",
                        help="PostgreSQL database to use (its public schema is dropped)")
    parser.add_argument("--quick", action="store_true", help="150 and 60 children")
    parser.add_argument("--only", choices=("sqlite", "pg"), default=None)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    lac, cin = (150, 60) if args.quick else (args.lac, args.cin)
    with tempfile.TemporaryDirectory(prefix="icsflow-bench-returns-") as name:
        folder = Path(name)
        start = time.perf_counter()
        county = generate_county(folder / "county", lac_children=lac, cin_children=cin,
                                 seed=args.seed)
        extract, rows = canonical_csv(county, folder)
        lines = {p.name: sum(1 for _ in p.open()) - 1 for p in county.ssda903.iterdir()}
        print(f"load average {os.getloadavg()[0]:.1f}; county of {lac:,} looked-after and "
              f"{county.cin_children:,} census children: 903 rows "
              + ", ".join(f"{k} {v:,}" for k, v in sorted(lines.items()))
              + f", {len(county.censuses)} censuses; {rows:,} events; made in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        table = [("store", "path", "events", "seconds", "events/s", "CPU s (this process)",
                  "60 s target")]
        if args.only != "pg":
            table += run("SQLite", {p: f"sqlite:///{folder}/{p}.db" for p in
                                    ("returns", "canonical")}, county, extract, rows, pg=False)
        if args.pg and args.only != "sqlite":
            table += run("PostgreSQL", {"returns": args.pg, "canonical": args.pg}, county,
                         extract, rows, pg=True)
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(c.rjust(w) if i > 1 else c.ljust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))), flush=True)


if __name__ == "__main__":
    main()
