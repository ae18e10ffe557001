"""A verdict depends only on logical time: a deadline whose due instant passed before the event
that closed, cancelled or superseded it is breached, whether or not a tick ran in between; only
a deadline still in the future is cancelled. The same events with any ticks in between give the
same verdicts (a property test), and a missed review counts in the report."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from icsflow.definitions.loader import load_text
from icsflow.workflow import Actor, Engine, FakeClock
from icsflow.workflow.clock import LONDON
from icsflow.workflow.errors import WorkflowError
from icsflow.workflow.reports import Window, build_report, final_states

DIRECTORY = {"admin": ["admin@council.example"], "iro_service_manager": ["ism@council.example"]}
SW = Actor("sw-1", "social_worker")
ADMIN = Actor("admin-1", "admin")
IRO = Actor("iro-1", "iro")


def at(day: str, hour: int = 10) -> datetime:
    return datetime.combine(date.fromisoformat(day), time(hour), LONDON)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    clock = FakeClock(at("2012-10-15"))
    with Engine.open(f"sqlite:///{tmp_path / 'v.db'}", clock=clock, directory=DIRECTORY) as e:
        yield e


def _review_case(e: Engine) -> str:
    """Looked after on Monday 15 October 2012: the first review is due by 12 November."""
    case = e.start("initial_review", ref="LAC-1", child="CH-1", actor=SW, at=at("2012-10-15"),
                   data={"looked_after_on": "2012-10-15",
                         "team_manager_email": "tm@council.example"})
    assert case.deadlines["review_due"] == date(2012, 11, 12)
    return case.id


def _status(e: Engine, case_id: str, name: str) -> tuple[str, datetime | None]:
    d = next(d for d in e.get(case_id).deadline_list if d.name == name)
    return d.status.value, d.met_at


def _report(e: Engine, as_at: str = "2013-03-31") -> dict[str, object]:
    sql = e.store.engine  # type: ignore[attr-defined]
    window = Window(date(2012, 4, 1), date(2013, 3, 31), date.fromisoformat(as_at), None)
    return build_report(sql, window, final_states=final_states(e.definitions))


@pytest.mark.parametrize("tick_between", [False, True])
def test_a_review_missed_before_the_child_left_care_is_breached_and_counted_missed(
        engine: Engine, tick_between: bool) -> None:
    case_id = _review_case(engine)
    if tick_between:
        engine.tick(now=at("2012-11-14"))
    engine.fire(case_id, "cancel", actor=ADMIN, at=at("2012-11-20"),
                data={"cancel_reason": "no_longer_looked_after"})
    assert _status(engine, case_id, "review_due") == ("breached", at("2012-11-20"))
    report = _report(engine)
    assert report.to_json()["lac_reviews"]["missed"] == 1
    (item,) = report.items("lac_reviews.missed")
    assert item.on == date(2012, 11, 12)
    assert item.detail == "review_due 2012-11-12; not held: cancel 2012-11-20"


def test_a_review_cancelled_before_it_was_due_was_never_due(engine: Engine) -> None:
    case_id = _review_case(engine)
    engine.fire(case_id, "cancel", actor=ADMIN, at=at("2012-11-09"),
                data={"cancel_reason": "no_longer_looked_after"})
    assert _status(engine, case_id, "review_due") == ("cancelled", None)
    assert _report(engine).to_json()["lac_reviews"]["missed"] == 0


def test_a_review_held_late_counts_as_held_out_of_timescale_and_as_missed_its_due_day(
        engine: Engine) -> None:
    case_id = _review_case(engine)
    engine.fire(case_id, "request_review", actor=SW, at=at("2012-10-16"))
    engine.fire(case_id, "allocate", actor=ADMIN, at=at("2012-10-17"),
                data={"iro_id": "iro-1", "iro_email": "iro@council.example"})
    engine.fire(case_id, "schedule", actor=IRO, at=at("2012-10-18"),
                data={"review_date": "2012-11-15"})
    engine.fire(case_id, "hold", actor=IRO, at=at("2012-11-15"),
                data={"held_on": "2012-11-15", "participation": "PN1"})
    report = _report(engine, as_at="2013-01-31")  # before the next review is due
    figures = report.to_json()["lac_reviews"]
    assert (figures["held"], figures["in_timescale"], figures["missed"]) == (1, 0, 1)
    assert report.items("lac_reviews.missed")[0].detail.endswith("held late 2012-11-15")
    # The next review fell due on 15 February 2013 and was not held by the year's end.
    later = _report(engine).items("lac_reviews.missed")
    assert [(i.on, i.detail.split("; ")[1]) for i in later] == [
        (date(2012, 11, 12), "held late 2012-11-15"), (date(2013, 2, 15), "not held yet")]


def test_a_booklet_not_sent_before_the_review_is_breached_without_a_tick(
        engine: Engine) -> None:
    """booklet_due ends when the review is held (only send_booklet meets it): held after the
    booklet's date, it is breached, tick or no tick."""
    case_id = _review_case(engine)
    engine.fire(case_id, "request_review", actor=SW, at=at("2012-10-16"))
    engine.fire(case_id, "allocate", actor=ADMIN, at=at("2012-10-17"),
                data={"iro_id": "iro-1", "iro_email": "iro@council.example"})
    engine.fire(case_id, "schedule", actor=IRO, at=at("2012-10-18"),
                data={"review_date": "2012-11-09"})
    engine.fire(case_id, "hold", actor=IRO, at=at("2012-11-09"),
                data={"held_on": "2012-11-09", "participation": "PN1"})
    assert _status(engine, case_id, "booklet_due") == ("breached", at("2012-11-09"))


# -- any interleaving of ticks gives the same verdicts -------------------------------------------

CYCLE = """
name: cycle
version: 1
title: A meeting cycle with minutes
roles:
  chair: {address: chair_email}
  admin: {directory: true}
start_roles: [admin]
data:
  chair_email: {type: email}
  held_on: {type: date}
initial: open
states:
  open: {}
  scheduled: {}
  held: {}
  closed: {final: true}
  cancelled: {final: true}
transitions:
  - {event: schedule, from: [open, held], to: scheduled, roles: [chair]}
  - {event: hold, from: scheduled, to: held, roles: [chair], set: {held_on: required}}
  - {event: send_pack, from: [open, scheduled], roles: [admin]}
  - {event: distribute, from: [held, scheduled], roles: [chair]}
  - {event: close, from: [held], to: closed, roles: [chair]}
  - {event: cancel, from: "*", to: cancelled, roles: [admin]}
deadlines:
  meeting_due:
    live_in: [open, scheduled, held]
    met_by: [hold]
    cancelled_by: [cancel]
    rules:
      - {when: "not data.held_on", anchor: start, after: 10 working days}
      - {anchor: field held_on, after: 15 working days}
  pack_due:
    live_in: [open, scheduled]
    met_by: [send_pack]
    anchor: start
    after: 5 working days
  minutes_due:
    live_in: [held, scheduled]
    anchor: field held_on
    after: 3 working days
    met_by: [distribute]
    cancelled_by: [cancel]
timers:
  - {name: meeting_reminder, deadline: meeting_due, before: 2 working days,
     notify: [{to: [chair], template: nudge}]}
  - {name: meeting_late, deadline: meeting_due, at: breach,
     notify: [{to: [admin], template: nudge}]}
  - {name: minutes_late, deadline: minutes_due, at: breach,
     notify: [{to: [admin], template: nudge}]}
templates:
  nudge: {subject: "Case {{ ref }}", body: "Something is due."}
"""
EVENTS = ("schedule", "hold", "send_pack", "distribute", "close", "cancel")
ACTORS = {"schedule": Actor("c-1", "chair"), "hold": Actor("c-1", "chair"),
          "send_pack": ADMIN, "distribute": Actor("c-1", "chair"),
          "close": Actor("c-1", "chair"), "cancel": ADMIN}
START = at("2012-01-02")


def _verdicts(e: Engine, case_id: str) -> list[tuple[str, str, date, datetime | None]]:
    sql = e.store.engine  # type: ignore[attr-defined]
    with sql.connect() as conn:
        rows = conn.execute(text("SELECT name, status, due_date, met_at FROM deadlines "
                                 "WHERE instance_id = :i ORDER BY id"), {"i": case_id}).all()
    return [(r[0], r[1], r[2] if isinstance(r[2], date) else date.fromisoformat(r[2]),
             r[3]) for r in rows]


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated database, copied for every run (migrating takes longer than a run)."""
    path = tmp_path_factory.mktemp("template") / "cycle.db"
    Engine.open(f"sqlite:///{path}", definitions=load_text(CYCLE, "cycle.yaml")).close()
    return path


def _run(template: Path, steps: list[tuple[str, int]], ticks: set[int]) -> object:
    clock = FakeClock(START)
    folder = Path(tempfile.mkdtemp(dir=template.parent))
    shutil.copy(template, folder / "run.db")
    with Engine.open(f"sqlite:///{folder / 'run.db'}", clock=clock, directory=DIRECTORY,
                     definitions=load_text(CYCLE, "cycle.yaml")) as e:
        case = e.start("cycle", ref="M-1", actor=ADMIN, at=START,
                       data={"chair_email": "chair@council.example"})
        day = 0
        for event, gap in steps:
            for t in sorted(k for k in ticks if day <= k < day + gap):
                e.tick(now=START + timedelta(days=t, hours=1))
            day += gap
            when = START + timedelta(days=day, hours=2)
            data = {"held_on": when.date().isoformat()} if event == "hold" else None
            try:
                e.fire(case.id, event, actor=ACTORS[event], data=data, at=when)
            except WorkflowError:
                pass  # refused alike in every run: timers here never change the state
        e.tick(now=START + timedelta(days=day + 60))
        return _verdicts(e, case.id)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(EVENTS), st.integers(0, 12)), max_size=8),
       ticks=st.sets(st.integers(0, 100), max_size=6))
def test_any_interleaving_of_ticks_gives_the_same_verdicts(
        migrated: Path, steps: list[tuple[str, int]], ticks: set[int]) -> None:
    without = _run(migrated, steps, set())
    with_ticks = _run(migrated, steps, ticks)
    often = _run(migrated, steps, set(range(0, 101, 3)))
    assert without == with_ticks == often
