"""v2 cases beside v3 cases (issue 25): running cases stay on the version they started on, the
report counts both alike, and ``migrate`` moves a v2 case to v3, where the new events work.

"v3" is the shipped version that brought issue 25's rules; later versions that only relabel
and reword (issue 28) keep them, so the tests read the shipped version as ``SHIPPED``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from conftest import DIRECTORY, at

from icsflow.definitions.registry import builtin_dir, load_default
from icsflow.workflow import Actor, Engine
from icsflow.workflow.clock import FakeClock
from icsflow.workflow.reports import Window, build_report, final_states

V2 = Path(__file__).resolve().parent / "shipped_v2"
REVIEW = {"team_manager_email": "tm@council.example", "social_worker_email": "sw@council.example"}
IRO = Actor("iro-1", "iro")
SHIPPED = load_default().latest("initial_review").version  # v3's rules, relabelled since
DUAL_SHIPPED = load_default().latest("dual_status").version


@pytest.fixture()
def engine(tmp_path: Path) -> Iterator[Engine]:
    opened = Engine.open(db=f"sqlite:///{tmp_path / 'versions.db'}",
                         definitions=[builtin_dir(), V2], clock=FakeClock(at("2012-04-01")),
                         directory=DIRECTORY)
    try:
        yield opened
    finally:
        opened.close()


def _start(engine: Engine, ref: str, day: str, version: int) -> str:
    return engine.start("initial_review", ref=ref, data={"looked_after_on": day, **REVIEW},
                        actor=Actor("sw-1", "social_worker"), at=at(day),
                        version=version).id


def _hold(engine: Engine, case: str, day: str) -> None:
    """The first review by the ordinary steps (request, allocation, booking), then held."""
    if engine.get(case).state in ("awaiting_request", "request_overdue"):
        engine.fire(case, "request_review", Actor("sw-1", "social_worker"), at=at(day, 7))
        engine.fire(case, "allocate", Actor("ism-1", "iro_service_manager"),
                    data={"iro_id": "iro-1", "iro_email": "iro@council.example"},
                    at=at(day, 8))
    engine.fire(case, "schedule", Actor("admin-1", "admin"), data={"review_date": day},
                at=at(day, 9))
    engine.fire(case, "hold", IRO, data={"held_on": day, "participation": "PN1"},
                at=at(day, 11))


def test_new_cases_start_on_v3_and_running_ones_stay_on_v2(engine: Engine) -> None:
    old = _start(engine, "R-OLD", "2012-05-01", 2)
    new = engine.start("initial_review", ref="R-NEW", data={"looked_after_on": "2012-05-01",
                                                             **REVIEW},
                       actor=Actor("sw-1", "social_worker"), at=at("2012-05-01"))
    assert engine.get(old).version == 2 and new.version == SHIPPED
    _hold(engine, old, "2012-05-25")
    assert "next_review_reminder" in engine.get(old).deadlines  # v2's reminder deadline
    assert "request_early_review" not in engine.definition("initial_review", 2).events


def test_the_report_counts_v2_and_v3_reviews_alike(engine: Engine) -> None:
    v2 = _start(engine, "R-2", "2012-05-01", 2)
    v3 = _start(engine, "R-3", "2012-05-01", SHIPPED)
    _hold(engine, v2, "2012-05-25")  # in time (due 29 May)
    _hold(engine, v3, "2012-05-25")
    engine.fire(v3, "record_review", IRO, data={"held_on": "2012-08-20",
                                                "participation": "PN2"}, at=at("2012-08-20"))
    late2 = _start(engine, "R-2L", "2012-06-01", 2)
    late3 = _start(engine, "R-3L", "2012-06-01", SHIPPED)
    for case in (late2, late3):  # both due 3 July 2012 (after the Jubilee), held late
        _hold(engine, case, "2012-07-10")
    window = Window.resolve(start=None, end=None, as_at=date(2013, 3, 31), known_at=None,
                            today=date(2013, 3, 31), tz=engine.calendar.tz)
    figures = build_report(engine.store.engine, window,  # type: ignore[attr-defined]
                           final_states=final_states(engine.definitions)).to_json()
    lac = figures["lac_reviews"]
    assert (lac["held"], lac["in_timescale"]) == (5, 3)
    assert lac["initial"] == {"held": 4, "in_timescale": 2, "percent_in_timescale": 50.0}
    assert lac["second"]["in_timescale"] == 1 and lac["participation"]["PN2"] == 1
    # Both late initial reviews were missed by their due day; later reviews not yet due are not.
    missed = {(i.ref, i.on) for i in build_report(
        engine.store.engine, window,  # type: ignore[attr-defined]
        final_states=final_states(engine.definitions)).items("lac_reviews.missed")}
    assert {("R-2L", date(2012, 7, 3)), ("R-3L", date(2012, 7, 3))} <= missed


def test_migrate_moves_a_v2_review_case_to_v3_where_an_early_review_works(
        engine: Engine) -> None:
    case = _start(engine, "R-1", "2012-05-01", 2)
    _hold(engine, case, "2012-05-25")
    plan = engine.migrate("initial_review", SHIPPED, dry_run=True, now=at("2012-06-01"))
    assert [c.ref for c in plan.cases] == ["R-1"]
    engine.migrate("initial_review", SHIPPED, now=at("2012-06-01"))
    moved = engine.get(case)
    assert moved.version == SHIPPED and moved.state == "held"
    assert moved.deadlines["review_due"] == date(2012, 8, 24)
    assert "next_review_reminder" not in moved.deadlines
    moved = engine.fire(case, "request_early_review", IRO,
                        data={"reason": "iro_direction", "review_by": "2012-07-13"},
                        at=at("2012-06-04"))
    assert moved.deadlines["review_due"] == date(2012, 7, 13)


def test_migrating_makes_a_v2_monitoring_deadline_a_marker_of_v3(tmp_path: Path) -> None:
    """dual_status v2 tracked "prolonged from" as a deadline; v3 as a marker: a migrated case's
    live row becomes a marker (never overdue), its breach timer gone, its date the same."""
    clock = FakeClock(at("2012-01-09"))
    with Engine.open(f"sqlite:///{tmp_path / 'm.db'}", clock=clock,
                     definitions=[builtin_dir(), V2]) as engine:
        case = engine.start("dual_status", ref="DS-1", version=2, actor=Actor("cpc-1", "cpc"),
                            data={"became_dual_on": "2011-11-01"}, at=at("2011-11-01"))
        assert "prolonged_from" in case.deadlines
        plan = engine.migrate("dual_status", DUAL_SHIPPED)
        [moved] = [m for m in plan.cases[0].deadlines if m.name == "prolonged_from"]
        assert moved.action == "now a tracked date"
        after = engine.get(case.id)
        assert after.version == DUAL_SHIPPED and "prolonged_from" not in after.deadlines
        assert after.markers["prolonged_from"] == case.deadlines["prolonged_from"]
        assert not [t for t in after.timers if t.name == "prolonged_from:breach"]
