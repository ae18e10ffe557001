"""Changing a process or the calendar under running cases (issue 14), over 2011-12 dates.

50 open Alerts move from v1 (10 working days to respond) to v2 (5); a closure day added on
2011-12-28 moves exactly the open deadlines whose windows contain it; a migration that needs an
unmapped state is refused without writing anything.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from icsflow.definitions.registry import examples_dir
from icsflow.workflow import Actor, Engine, WorkingCalendar
from icsflow.workflow.changes.migration import MigrationRefused
from icsflow.workflow.changes.reproject import calendar_check
from icsflow.workflow.clock import LONDON, FakeClock

IRO = Actor("iro-1", "iro")
TM = Actor("tm-1", "team_manager")
# The first shipped Alert ladder (10 working days, escalating by itself), as version 1 of
# alert_dispute: the shipped alert_dispute is now version 2 (escalation at the IRO's decision).
BASE_TEXT = (examples_dir() / "alert_auto_escalation.yaml").read_text(encoding="utf-8").replace(
    "name: alert_auto_escalation", "name: alert_dispute", 1)
CLOSURE = date(2011, 12, 28)


def at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), LONDON)


def write_version(folder: Path, version: int, *, response_days: int = 10,
                  rename: tuple[str, str] | None = None) -> Path:
    """A copy of the shipped Alert process as another version (a manager's edit)."""
    text = BASE_TEXT.replace("version: 1", f"version: {version}", 1)
    assert text.count("after: 10 working days") == 1
    text = text.replace("after: 10 working days", f"after: {response_days} working days")
    if rename is not None:
        text = text.replace(rename[0], rename[1])
    target = folder / f"alert_dispute_v{version}.yaml"
    target.write_text(text, encoding="utf-8")
    return target


def _base(tmp_path: Path) -> Path:
    folder = tmp_path / "base"
    folder.mkdir(exist_ok=True)
    return write_version(folder, 1)


def open_engine(tmp_path: Path, clock: FakeClock, *extra: Path,
                calendar: WorkingCalendar | None = None) -> Engine:
    return Engine.open(db=f"sqlite:///{tmp_path / 'changes.db'}",
                       definitions=[_base(tmp_path), *extra], clock=clock,
                       calendar=calendar,
                       directory={"iro_service_manager": ["ism@council.example"]})


def start_alert(engine: Engine, ref: str, day: date) -> str:
    data = {"team_manager_email": "tm@council.example", "concern": "Plan drift"}
    return engine.start("alert_dispute", ref=ref, data=data, actor=IRO, at=at(day),
                        version=1).id


def test_fifty_open_alerts_move_from_ten_to_five_working_days(tmp_path: Path) -> None:
    cal = WorkingCalendar()
    clock = FakeClock(at(date(2011, 11, 1)))
    engine = open_engine(tmp_path, clock)
    days = [date(2011, 11, 21) + timedelta(days=i % 30) for i in range(50)]
    ids = [start_alert(engine, f"ALERT-{i:02d}", d) for i, d in enumerate(days)]
    engine.close()

    now = at(date(2011, 12, 23), 9)
    clock.set(now)
    engine = open_engine(tmp_path, clock, write_version(tmp_path, 2, response_days=5))
    before = {i: engine.get(i) for i in ids}
    plan = engine.migrate("alert_dispute", 2, dry_run=True)
    assert len(plan.cases) == 50
    by_id = {c.instance_id: c for c in plan.cases}
    # A response already due before now was breached by time alone (no tick has run): it
    # stays as it is, as it would had a tick marked it; the rest move to 5 working days.
    past = {iid for iid, day in zip(ids, days, strict=True)
            if cal.add_working_days(day, 10) < now.date()}
    assert past and len(past) < 50
    for iid, day in zip(ids, days, strict=True):
        case = by_id[iid]
        assert (case.from_version, case.to_version, case.to_state) == (1, 2, "alert")
        if iid in past:
            assert case.deadlines == [] and case.timers_added == []
            continue
        [move] = case.deadlines
        old, new = cal.add_working_days(day, 10), cal.add_working_days(day, 5)
        assert (move.name, move.old, move.new) == ("response_due", old.isoformat(),
                                                   new.isoformat())
        assert move.breached_now == (new < now.date())
        assert any(t.startswith("response_breached ") for t in case.timers_cancelled)
        assert f"response_breached {(new + timedelta(days=1)).isoformat()} 00:00" \
            in case.timers_added
    # The dry run wrote nothing.
    for iid in ids:
        after = engine.get(iid)
        assert (after.version, after.row_version, after.deadlines) == (
            1, before[iid].row_version, before[iid].deadlines)

    done = engine.migrate("alert_dispute", 2, actor=Actor("manager-1", "system"))
    assert sum(c.outcome == "migrated" for c in done.cases) == 50
    for iid, day in zip(ids, days, strict=True):
        inst = engine.get(iid)
        new = cal.add_working_days(day, 5)
        assert inst.version == 2 and inst.state == "alert"
        last = inst.history[-1]
        assert last.event == "migrated" and last.actor == "manager-1"
        assert (last.changes["from_version"], last.changes["to_version"]) == (1, 2)
        if iid in past:
            assert inst.deadlines == {"response_due": cal.add_working_days(day, 10)}
            assert last.changes["deadlines"] == {}
            continue
        assert inst.deadlines == {"response_due": new}
        assert last.changes["deadlines"]["response_due"]["old"] == \
            cal.add_working_days(day, 10).isoformat()
        assert last.changes["deadlines"]["response_due"]["new"] == new.isoformat()
        breach = [t for t in inst.timers if t.name == "response_breached"]
        assert [t.due_at.astimezone(LONDON).date() for t in breach] == [new + timedelta(days=1)]
    # Running again finds nothing left to move; the moved timers fire on the new dates.
    assert engine.migrate("alert_dispute", 2, dry_run=True).cases == []
    engine.tick(now=now)
    escalated = {i for i in ids if engine.get(i).state != "alert"}  # stage1 or beyond
    expected = {i for i, d in zip(ids, days, strict=True)
                if cal.add_working_days(d, 5) < now.date()}
    assert escalated == expected and expected and len(expected) < 50
    engine.close()


def test_a_closure_day_moves_exactly_the_deadlines_whose_window_contains_it(
        tmp_path: Path) -> None:
    clock = FakeClock(at(date(2011, 12, 1)))
    engine = open_engine(tmp_path, clock)
    days = [date(2011, 12, 1) + timedelta(days=i) for i in range(0, 30)]
    ids = {start_alert(engine, f"A-{d.isoformat()}", d): d for d in days}
    cal = WorkingCalendar()
    # One answered (met) and one breached deadline whose windows contain the closure.
    met_id = next(i for i, d in ids.items() if d == date(2011, 12, 19))
    clock.set(at(date(2011, 12, 20), 12))
    engine.fire(met_id, "respond", actor=TM, at=at(date(2011, 12, 20), 12))
    now = at(date(2012, 1, 4), 9)
    clock.set(now)
    engine.tick(now=now)
    states = {i: engine.get(i) for i in ids}
    breached = [i for i, inst in states.items()
                if any(d.status.value == "breached" for d in inst.deadline_list)]
    assert breached
    engine.close()

    closed = WorkingCalendar(closures={CLOSURE: "Christmas shutdown"})
    engine = open_engine(tmp_path, clock, calendar=closed)
    assert calendar_check(engine) > 0  # noticed, but nothing moved
    assert all(engine.get(i).row_version == states[i].row_version for i in ids)

    plan = engine.reproject(dry_run=True)
    expected = {}
    for iid, inst in states.items():
        for d in inst.deadline_list:
            if d.status.value != "live":
                continue
            anchor, n = _anchor_of(inst, d.name)
            assert cal.add_working_days(anchor, n) == d.due  # the oracle agrees before
            if anchor < CLOSURE <= d.due:
                expected[(iid, d.name)] = (d.due, closed.add_working_days(anchor, n))
    got = {(s.instance_id, s.deadline): (date.fromisoformat(s.old), date.fromisoformat(s.new))
           for s in plan.shifts}
    assert got == expected and expected
    assert all(s.reason == "2011-12-28 Christmas shutdown added" for s in plan.shifts)
    # Met and breached deadlines whose windows contain the closure stay where they were.
    settled = {(i, d.name) for i, inst in states.items() for d in inst.deadline_list
               if d.status.value != "live" and d.due >= CLOSURE
               and _anchor_of(inst, d.name)[0] < CLOSURE}
    assert (met_id, "response_due") in settled and len(settled) > 1
    assert not settled & set(got)
    assert all(engine.get(i).row_version == states[i].row_version for i in ids)

    engine.reproject()
    for (iid, name), (old, new) in expected.items():
        inst = engine.get(iid)
        assert inst.deadlines[name] == new
        last = inst.history[-1]
        assert last.event == "reprojected"
        assert last.changes["deadlines"][name] == {
            "old": old.isoformat(), "new": new.isoformat(),
            "reason": "2011-12-28 Christmas shutdown added"}
        explained = engine.explain(iid)[name]
        assert {"day": "2011-12-28", "reason": "Christmas shutdown"} in explained["skipped"]
        assert explained["reprojections"][-1]["new"] == new.isoformat()
        at_breach = [t.due_at.astimezone(LONDON).date() for t in inst.timers
                     if t.deadline == name and t.name.endswith("_breached")]
        assert at_breach == ([new + timedelta(days=1)] if name != "decision_due" else [])
    # Nothing else moved, and the calendar is now the recorded one.
    for iid in set(ids) - {k[0] for k in expected}:
        assert engine.get(iid).row_version == states[iid].row_version
    assert calendar_check(engine) == 0
    assert engine.reproject(dry_run=True).shifts == []
    engine.close()


def _anchor_of(inst, name: str) -> tuple[date, int]:  # noqa: ANN001
    """The Alert process's rules, written out: where each deadline counts from, and how far."""
    entered = {h.to_state: h.at for h in inst.history if h.to_state != h.from_state}
    first_stage = next((h.at for h in inst.history if h.to_state.startswith("stage")), None)
    responded = [h.at for h in inst.history if h.to_state.endswith("_responded")]
    anchor, n = {"response_due": (inst.history[0].at, 10),
                 "decision_due": (responded[-1] if responded else None, 5),
                 "formal_due": (first_stage, 20)}.get(name, (None, 5))
    if anchor is None:
        anchor = entered[name.removesuffix("_due")]
    return anchor.astimezone(LONDON).date(), n


def test_a_state_with_no_counterpart_refuses_the_whole_run_and_writes_nothing(
        tmp_path: Path) -> None:
    clock = FakeClock(at(date(2011, 12, 1)))
    engine = open_engine(tmp_path, clock)
    waiting = start_alert(engine, "ALERT-WAIT", date(2011, 12, 1))
    answered = start_alert(engine, "ALERT-ANSWERED", date(2011, 12, 2))
    clock.set(at(date(2011, 12, 5), 12))
    engine.fire(answered, "respond", actor=TM, at=at(date(2011, 12, 5), 12))
    engine.close()
    v3 = write_version(tmp_path, 3, rename=("alert_responded", "awaiting_decision"))
    engine = open_engine(tmp_path, clock, v3)
    before = {i: engine.get(i) for i in (waiting, answered)}
    with pytest.raises(MigrationRefused) as refused:
        engine.migrate("alert_dispute", 3)
    assert "alert_responded" in str(refused.value) and "ALERT-ANSWERED" in str(refused.value)
    assert [c[0] for c in refused.value.cases] == [answered]
    for iid, inst in before.items():
        assert engine.get(iid) == inst  # nothing written, not even the other case
    with pytest.raises(MigrationRefused):
        engine.migrate("alert_dispute", 3, mapping={"alert_responded": "no_such_state"})

    plan = engine.migrate("alert_dispute", 3,
                          mapping={"alert_responded": "awaiting_decision"})
    assert {c.ref: c.outcome for c in plan.cases} == {"ALERT-WAIT": "migrated",
                                                       "ALERT-ANSWERED": "migrated"}
    moved = engine.get(answered)
    assert (moved.version, moved.state) == (3, "awaiting_decision")
    assert moved.history[-1].changes["state_map"] == {"alert_responded": "awaiting_decision"}
    # The decision deadline kept its original anchor (the response), not the migration.
    assert moved.deadlines["decision_due"] == WorkingCalendar().add_working_days(
        date(2011, 12, 5), 5)
    assert engine.get(waiting).deadlines["response_due"] == WorkingCalendar().add_working_days(
        date(2011, 12, 1), 10)
    engine.close()
