"""Migration and re-projection on every store (SQLite always, PostgreSQL with
ICSFLOW_TEST_PG): one case one transaction, a crash part-way leaves each case moved or not."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from engine_support import ALERT_YAML, IRO, START_DATA, alert_definition, backend  # noqa: F401

from icsflow.storage.repository import SqlUnitOfWork
from icsflow.workflow import FakeClock, WorkingCalendar
from icsflow.workflow.clock import LONDON

V2 = alert_definition(ALERT_YAML.replace("version: 1", "version: 2")
                      .replace("after: 10 working days", "after: 5 working days"))


def _at(day: int) -> datetime:
    return datetime(2012, 5, day, 10, tzinfo=LONDON)


def test_migrate_and_reproject_one_case_per_transaction(backend, monkeypatch) -> None:  # noqa: ANN001, F811
    # Before every deadline here is due: a move happens while they are all still live (one
    # already past due would be breached by time and stay as it is).
    clock = FakeClock(datetime(2012, 5, 24, 9, tzinfo=LONDON))
    with backend.open(clock) as engine:
        ids = [engine.start("alert", f"C-{d}", START_DATA, IRO, at=_at(d)).id
               for d in (21, 22, 23)]
    with backend.open(clock, definitions=[alert_definition(), V2]) as engine:
        real = SqlUnitOfWork.apply
        calls = {"n": 0}

        def crash_on_second(self: SqlUnitOfWork, change: Any, **kw: Any) -> Any:
            calls["n"] += 1
            out = real(self, change, **kw)
            if calls["n"] == 2:
                raise RuntimeError("power cut")
            return out

        monkeypatch.setattr(SqlUnitOfWork, "apply", crash_on_second)
        with pytest.raises(RuntimeError):
            engine.migrate("alert", 2)
        monkeypatch.setattr(SqlUnitOfWork, "apply", real)
        versions = [engine.get(i).version for i in ids]
        assert versions == [2, 1, 1]  # the first moved whole, the second not at all
        assert [h.event for h in engine.get(ids[1]).history] == ["start"]
        plan = engine.migrate("alert", 2)
        assert [c.ref for c in plan.cases] == ["C-22", "C-23"]
        cal = WorkingCalendar()
        for i, d in zip(ids, (21, 22, 23), strict=True):
            inst = engine.get(i)
            assert inst.version == 2
            assert inst.deadlines["response_due"] == cal.add_working_days(date(2012, 5, d), 5)
            assert [h.event for h in inst.history].count("migrated") == 1
    # 2012-05-29 closed: only the windows containing it (C-22 and C-23 start before it) move.
    closed = WorkingCalendar(closures={date(2012, 5, 29): "Staff day"})
    with backend.open(clock, definitions=[alert_definition(), V2], calendar=closed) as engine:
        plan = engine.reproject(dry_run=True)
        assert {s.ref for s in plan.shifts} == {"C-21", "C-22", "C-23"} - {
            r for r, d in (("C-21", 21), ("C-22", 22), ("C-23", 23))
            if WorkingCalendar().add_working_days(date(2012, 5, d), 5) < date(2012, 5, 29)}
        engine.reproject()
        for i, d in zip(ids, (21, 22, 23), strict=True):
            assert engine.get(i).deadlines["response_due"] == closed.add_working_days(
                date(2012, 5, d), 5)
        assert engine.reproject(dry_run=True).shifts == []
