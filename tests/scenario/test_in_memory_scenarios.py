"""Two of the service's walks (2011-12) on the in-memory store of ``icsflow.workflow.testing``
as on SQLite: an unanswered Alert over Christmas, and a child's dual status started and ended
by signals between processes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from conftest import DIRECTORY, Case, at

from icsflow.workflow import Actor, Engine, FakeClock
from icsflow.workflow.testing import in_memory_engine

ALERT = {"team_manager_email": "tm@council.example", "iro_email": "iro@council.example",
         "service_manager_email": "sm@council.example", "concern": "Plan drift",
         "category": "plan_progress"}
REVIEW = {"looked_after_on": "2011-09-05", "team_manager_email": "tm@council.example",
          "iro_email": "iro@council.example"}
CONFERENCE = {"strategy_discussion_on": "2011-10-03", "cpc_email": "cpc@council.example",
              "team_manager_email": "tm@council.example"}


@pytest.fixture(params=["sqlite", "memory"])
def either(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    clock = FakeClock(at("2011-04-01"))
    options = dict(clock=clock, directory=DIRECTORY,
                   admin_address="icsflow-admin@council.example")
    engine = (Engine.open(db=f"sqlite:///{tmp_path / 'scenario.db'}", **options)
              if request.param == "sqlite" else in_memory_engine(**options))
    try:
        yield Case(engine, clock)
    finally:
        engine.close()


def test_an_unanswered_alert_over_christmas_asks_the_iro_then_goes_up_the_line(
        either: Case) -> None:
    inst = either.start("alert_dispute", "A-1", "iro", "2011-12-19", **ALERT)
    assert inst.deadlines == {"response_due": date(2012, 1, 5)}
    either.tick("2012-01-06", 12)
    inst = either.engine.get(inst.id)
    assert inst.state == "alert" and inst.history[-1].event == "no_response"
    assert inst.history[-1].at == at("2012-01-06", 0)  # recorded at the breach, not the tick
    assert inst.deadlines == {"response_due": date(2012, 1, 5),
                              "escalation_decision_due": date(2012, 1, 13)}
    either.tick("2012-01-20", 12)
    assert either.templates(inst.id) == ["response_reminder", "no_response", "decision_overdue"]
    inst = either.fire(inst.id, "escalate", "iro", "2012-01-23")
    assert inst.state == "stage1"
    assert {d.name: d.status.value for d in inst.deadline_list}["escalation_decision_due"] \
        == "breached"


def test_a_plan_made_while_looked_after_starts_dual_status_which_ends_with_the_plan(
        either: Case) -> None:
    def start(name: str, ref: str, day: str, data: dict[str, object]):  # noqa: ANN202
        either.clock.set(at(day))
        return either.engine.start(name, ref=ref, data=data, actor=Actor("admin-1", "admin"),
                                   at=at(day), child="CH-42", family="F-9")

    review = start("initial_review", "LAC-42", "2011-09-05", REVIEW)
    conf = start("cp_conference", "CP-42", "2011-10-03", CONFERENCE)
    either.fire(conf.id, "hold_icpc", "cpc", "2011-10-20", held_at="2011-10-20T10:00",
                plan_made="true")
    [dual] = [i for i in either.engine.list(child="CH-42") if i.definition == "dual_status"]
    assert dual.state == "dual_status" and dual.data["became_dual_on"] == "2011-10-20"
    assert dual.history[0].note == f"signal cp_plan_started from cp_conference {conf.id}"
    either.fire(conf.id, "distribute_minutes", "admin", "2011-10-21")
    either.fire(conf.id, "hold_review", "cpc", "2012-01-16", held_at="2012-01-16T10:00",
                plan_continues="false")
    dual = either.engine.get(dual.id)
    assert dual.state == "single_plan_lac" and dual.closed and dual.data["dual_days"] == 88
    assert not either.engine.get(review.id).closed
