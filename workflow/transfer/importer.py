"""``icsflow import``: check a whole extract, then replay it; all or nothing, and idempotent.

1. Read (CSV or XLSX), map (``--map`` profile), parse: every row-level problem is collected.
2. Leave out rows the ledger already holds (matched by ``id``, else by a hash of the content).
3. Replay the remaining rows once, on the real database, in ONE transaction with a savepoint
   per row (``storage.batch``): a row that would not be allowed in the state the case is in by
   then (timers included), a wrong role, a missing field, is rolled back to its savepoint and
   named, and the replay goes on to find every other problem.
4. Commit only when nothing was wrong; a problem, or ``--dry-run``, rolls the whole replay
   back: nothing written. Each row's ledger entry is in its own row's savepoint.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine as SqlEngine
from sqlalchemy.pool import ConnectionPoolEntry

from icsflow.storage.db import create_db_engine, ensure_schema
from icsflow.storage.imports import copy_cases, has_instances, known_keys
from icsflow.storage.repository import SqlStore
from icsflow.workflow.engine import Engine
from icsflow.workflow.instance import TickResult
from icsflow.workflow.transfer.mapping import MappingProfile
from icsflow.workflow.transfer.replay import (
    ReplayResult,
    find_case,
    replay,
    replay_engine,
)
from icsflow.workflow.transfer.rows import EventRow, Problem, parse_rows, sort_rows
from icsflow.workflow.transfer.table import RawTable, read_table


@dataclass
class ImportReport:
    """The outcome of one import (or dry run); ``problems`` non-empty means nothing written."""

    source: str
    rows: int = 0
    already_imported: int = 0
    applied: int = 0
    started: int = 0
    held_back: int = 0
    timers: TickResult = field(default_factory=TickResult)
    problems: list[Problem] = field(default_factory=list)
    dry_run: bool = False
    emails: str = "replayed"
    left_out: list[Problem] = field(default_factory=list)  # refused by the dry run, skipped

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"file": self.source, "ok": self.ok, "dry_run": self.dry_run,
                "rows": self.rows, "already_imported": self.already_imported,
                "applied": self.applied, "cases_started": self.started,
                "held_back_after_until": self.held_back, "timers": self.timers.as_dict(),
                "emails": self.emails, "problems": [str(p) for p in self.problems]}


def until_instant(until: date | datetime | None, engine: Engine) -> datetime:
    """``--until DATE``: timers up to the end of that day (not later than now)."""
    now = engine.clock.now()
    if until is None:
        return now
    if isinstance(until, datetime):
        return min(until, now)
    end = datetime.combine(until + timedelta(days=1), time(0), tzinfo=engine.calendar.tz)
    return min(end - timedelta(microseconds=1), now)


def load_rows(path: str | Path, engine: Engine, profile: MappingProfile | None = None,
              ) -> tuple[RawTable, list[EventRow], list[Problem]]:
    """Read, map and parse an extract."""
    table = read_table(path)
    if profile is not None:
        table = profile.apply(table)
    rows, problems = parse_rows(table, engine.definitions)
    return table, rows, problems


def import_rows(engine: Engine, table: RawTable, rows: list[EventRow],
                problems: list[Problem], *, until: date | datetime | None = None,
                dry_run: bool = False, send: bool = False,
                progress: Callable[[int], None] | None = None,
                on_total: Callable[[int], None] | None = None) -> ImportReport:
    """Check everything, then (unless ``dry_run`` or a problem) apply the new rows."""
    return import_event_rows(engine, table.source, len(table.rows), rows, problems,
                             until=until, dry_run=dry_run, send=send, progress=progress,
                             on_total=on_total)


def import_event_rows(engine: Engine, source: str, count: int, rows: list[EventRow],
                      problems: list[Problem], *, until: date | datetime | None = None,
                      dry_run: bool = False, send: bool = False,
                      progress: Callable[[int], None] | None = None,
                      on_total: Callable[[int], None] | None = None,
                      leave_out: Callable[[list[Problem]], set[str]] | None = None,
                      ) -> ImportReport:
    """``import_rows`` for rows made elsewhere (the statutory returns derive theirs):
    ``source`` names the import in the ledger, ``count`` the rows it read. With
    ``leave_out``, a row the dry run refuses does not refuse the import: ``leave_out(problems)``
    names the keys of the rows to drop with it (a whole child's), the problems go into
    ``report.left_out``, and the rest is checked again."""
    report = ImportReport(source, rows=count, dry_run=dry_run,
                          emails="pending" if send else "replayed")
    sql = _sql(engine)
    done = known_keys(sql, [r.key for r in rows])
    new = sort_rows(r for r in rows if r.key not in done)
    report.already_imported = len(rows) - len(new)
    end = until_instant(until, engine)
    if on_total is not None:
        on_total(len(new))
    while True:
        cases = existing_cases(engine, new)
        replayer, store = replay_engine(engine, hold_emails=not send)
        try:
            result = replay(replayer, store, new, until=end, cases=cases, collect=True,
                            write_ledger=True, source=Path(source).name, progress=progress)
        except BaseException:
            store.finish(commit=False)
            raise
        dropped = leave_out(result.problems) if leave_out and result.problems else set()
        if not dropped:
            break
        store.finish(commit=False)  # again without the children left out
        report.left_out.extend(result.problems)
        new = [r for r in new if r.key not in dropped]
    report.problems = sorted([*problems, *result.problems], key=lambda p: (p.source, p.line))
    # All or nothing: one replay in one transaction, each row in its own savepoint; a refused
    # row is rolled back to its savepoint and named, and any problem (or a dry run) rolls the
    # whole replay back.
    store.finish(commit=not (report.problems or dry_run))
    _fill(report, result)
    return report


def import_file(engine: Engine, path: str | Path, *, profile: MappingProfile | None = None,
                until: date | datetime | None = None, dry_run: bool = False,
                send: bool = False, progress: Callable[[int], None] | None = None,
                on_total: Callable[[int], None] | None = None) -> ImportReport:
    """``icsflow import FILE``: the Python entry point (the CLI calls this)."""
    table, rows, problems = load_rows(path, engine, profile)
    return import_rows(engine, table, rows, problems, until=until, dry_run=dry_run,
                       send=send, progress=progress, on_total=on_total)


def _fill(report: ImportReport, result: ReplayResult) -> None:
    report.applied = result.applied
    report.started = result.started
    report.held_back = result.held_back
    report.timers = result.timers


def _sql(engine: Engine) -> SqlEngine:
    store = engine.store
    if not isinstance(store, SqlStore):
        raise TypeError("import needs an engine on an SQL store")
    return store.engine


def existing_cases(engine: Engine, rows: list[EventRow]) -> dict[tuple[str, str], str]:
    """Cases the new rows continue (started by an earlier import or by hand)."""
    found: dict[tuple[str, str], str] = {}
    for case in dict.fromkeys(r.case for r in rows):
        inst = find_case(engine, *case)
        if inst is not None:
            found[case] = inst.id
    return found


def check_rows(engine: Engine, rows: list[EventRow], cases: dict[tuple[str, str], str],
               end: datetime, inspect: Callable[[Engine, ReplayResult], None] | None = None,
               *, seed: bool = True) -> ReplayResult:
    """Replay ``rows`` in a scratch SQLite database seeded (``seed``) with the cases they
    continue (``cases``: (definition, ref) -> id in ``engine``) and the open cases of their
    children (signals between a child's cases read them); ``inspect`` reads the scratch engine
    before it is thrown away."""
    sql = _sql(engine)
    seeded = list(cases.values())
    if seed and has_instances(sql):
        children = {r.child for r in rows if r.child} | {
            i.child for i in (engine.get(iid) for iid in seeded) if i.child}
        for child in sorted(children):
            seeded.extend(i.id for i in engine.list(child=child, open_only=True))
    with tempfile.TemporaryDirectory(prefix="icsflow-import-") as folder:
        scratch_sql = create_db_engine(f"sqlite:///{folder}/check.db")
        try:
            _fast(scratch_sql)
            ensure_schema(scratch_sql, migrate=True)
            copy_cases(sql, scratch_sql, seeded)
            scratch = Engine(SqlStore(scratch_sql), engine.definitions, clock=engine.clock,
                             calendar=engine.calendar, directory=engine.directory,
                             admin_address=engine.admin_address, sender=engine.sender)
            replayer, store = replay_engine(scratch, hold_emails=True)
            try:
                result = replay(replayer, store, rows, until=end, cases=cases, collect=True,
                                write_ledger=False)
                if inspect is not None:  # before the scratch replay is rolled back
                    inspect(replayer, result)
            finally:
                store.close()
            return result
        finally:
            scratch_sql.dispose()


def _fast(sql: SqlEngine) -> None:
    """The scratch database is thrown away: no need to wait for the disk."""
    from sqlalchemy import event

    @event.listens_for(sql, "connect")
    def _connect(dbapi_conn: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA synchronous=OFF")
        cur.close()


__all__ = ["ImportReport", "import_file", "import_rows", "import_event_rows", "load_rows",
           "until_instant", "check_rows", "existing_cases"]
