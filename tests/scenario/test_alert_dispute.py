"""alert_dispute over Christmas 2011 and the Diamond Jubilee."""

from datetime import date

import pytest
from conftest import at

from icsflow.workflow.errors import InvalidTransition, PermissionDenied

DATA = {"team_manager_email": "tm@council.example", "iro_email": "iro@council.example",
        "service_manager_email": "sm@council.example", "concern": "Plan drift",
        "category": "plan_progress"}


def test_raised_before_christmas_the_response_is_due_after_the_new_year(case) -> None:
    inst = case.start("alert_dispute", "A-1", "iro", "2011-12-19", **DATA)
    # 26, 27 December and 2 January are bank holidays in 2011-12.
    assert inst.deadlines == {"response_due": date(2012, 1, 5)}


def test_no_response_leaves_the_alert_at_its_stage_and_asks_the_iro_to_decide(case) -> None:
    inst = case.start("alert_dispute", "A-1", "iro", "2011-12-19", **DATA)
    case.tick("2012-01-05", 23)
    assert case.engine.get(inst.id).state == "alert"
    case.tick("2012-01-06", 12)
    inst = case.engine.get(inst.id)
    assert inst.state == "alert"  # escalating is the IRO's decision
    overdue = inst.history[-1]
    assert (overdue.event, overdue.role) == ("no_response", "system")
    assert overdue.at == at("2012-01-06", 0)  # recorded at the breach, not at the tick
    assert case.templates(inst.id) == ["response_reminder", "no_response"]
    asked = case.outbox(inst.id)[1]
    assert set(asked.recipients) == {"iro@council.example", "tm@council.example",
                                     "sm@council.example"}
    assert "asked to decide" in asked.subject and "Friday 13 January 2012" in asked.body
    # The response is still outstanding (breached) and the IRO's decision is now due too.
    assert inst.deadlines == {"response_due": date(2012, 1, 5),
                              "escalation_decision_due": date(2012, 1, 13)}
    assert {d.name: d.status.value for d in inst.deadline_list}["response_due"] == "breached"
    case.tick("2012-01-20", 12)
    inst = case.engine.get(inst.id)
    assert inst.state == "alert"  # still at its Alert stage on 20 January 2012
    up_the_line = case.outbox(inst.id)[-1]
    assert up_the_line.template == "decision_overdue"
    assert set(up_the_line.recipients) == {"iro@council.example", "ism@council.example"}


def test_the_iro_escalates_after_the_missed_response_and_the_decision_is_met(case) -> None:
    inst = case.start("alert_dispute", "A-1", "iro", "2011-12-19", **DATA)
    case.tick("2012-01-06", 12)
    inst = case.fire(inst.id, "escalate", "iro", "2012-01-09")
    assert inst.state == "stage1" and inst.data["highest_stage"] == "stage1"
    statuses = {d.name: d.status.value for d in inst.deadline_list}
    assert statuses["escalation_decision_due"] == "met"
    assert inst.deadlines == {"stage1_due": date(2012, 1, 16), "formal_due": date(2012, 2, 6)}


def test_the_iro_may_extend_with_a_new_date_instead(case) -> None:
    inst = case.start("alert_dispute", "A-1", "iro", "2011-12-19", **DATA)
    case.tick("2012-01-06", 12)
    with pytest.raises(InvalidTransition):
        case.fire(inst.id, "extend", "iro", "2012-01-09", extended_to="2012-01-02")
    inst = case.fire(inst.id, "extend", "iro", "2012-01-09", extended_to="2012-01-16")
    assert inst.state == "alert"
    assert inst.deadlines == {"response_due": date(2012, 1, 16)}
    assert case.templates(inst.id)[-1] == "extended"
    inst = case.fire(inst.id, "respond", "team_manager", "2012-01-13", response="Done")
    assert inst.data["responded_late"] is False and inst.data["responded_on"] == "2012-01-13"


def test_stage1_is_answered_by_the_fieldwork_service_manager(case) -> None:
    inst = case.start("alert_dispute", "A-1", "iro", "2011-12-19", **DATA)
    inst = case.fire(inst.id, "escalate", "iro", "2011-12-20")
    with pytest.raises(PermissionDenied, match="service_manager"):
        case.fire(inst.id, "respond", "iro_service_manager", "2011-12-21")
    inst = case.fire(inst.id, "respond", "service_manager", "2011-12-21", response="Agreed")
    assert inst.state == "stage1_responded"


def test_the_raising_iros_address_is_required(case) -> None:
    from icsflow.workflow.errors import ValidationError

    with pytest.raises(ValidationError, match="iro_email"):
        case.start("alert_dispute", "A-1", "iro", "2011-12-19",
                   **{k: v for k, v in DATA.items() if k != "iro_email"})


def test_reminder_goes_two_working_days_before_the_deadline(case) -> None:
    inst = case.start("alert_dispute", "A-1", "iro", "2011-12-19", **DATA)
    case.tick("2012-01-02", 23)  # a bank holiday (New Year's Day substitute)
    assert case.templates(inst.id) == []
    case.tick("2012-01-03", 1)
    [reminder] = case.outbox(inst.id)
    assert reminder.template == "response_reminder"
    assert reminder.recipients == ("tm@council.example",)
    assert "Thursday 5 January 2012" in reminder.subject


def test_a_response_on_time_meets_the_deadline_and_the_iro_resolves(case) -> None:
    inst = case.start("alert_dispute", "A-1", "iro", "2011-12-19", **DATA)
    inst = case.fire(inst.id, "respond", "team_manager", "2012-01-04", response="Plan updated")
    assert inst.state == "alert_responded"
    assert inst.deadlines == {"decision_due": date(2012, 1, 11)}
    met = {d.name: d.status.value for d in inst.deadline_list}
    assert met["response_due"] == "met"
    inst = case.fire(inst.id, "resolve", "iro", "2012-01-06")
    assert inst.state == "resolved" and inst.closed
    assert inst.timers == () or all(t.status != "pending" for t in inst.timers)


def test_only_the_team_manager_responds_to_an_alert(case) -> None:
    inst = case.start("alert_dispute", "A-1", "iro", "2011-12-19", **DATA)
    with pytest.raises(PermissionDenied, match="team_manager"):
        case.fire(inst.id, "respond", "iro", "2011-12-20")
    assert case.engine.get(inst.id).history == inst.history


def test_the_iro_may_skip_a_stage_and_refer_to_cafcass_at_any_point(case) -> None:
    inst = case.start("alert_dispute", "A-1", "iro", "2011-12-19", **DATA)
    inst = case.fire(inst.id, "escalate_to_stage2", "iro", "2011-12-21")
    assert inst.state == "stage2"
    assert inst.deadlines["stage2_due"] == date(2011, 12, 30)  # skips 26 and 27 December
    inst = case.fire(inst.id, "refer_to_cafcass", "iro", "2011-12-22")
    assert inst.state == "referred_to_cafcass"
    with pytest.raises(InvalidTransition):
        case.fire(inst.id, "resolve", "iro", "2011-12-23")


# -- the example that escalates by itself, for councils that want it ----------------------------

@pytest.fixture()
def auto(tmp_path):  # noqa: ANN001, ANN201
    from conftest import DIRECTORY, Case

    from icsflow.definitions.registry import examples_dir
    from icsflow.workflow import Engine
    from icsflow.workflow.clock import FakeClock

    clock = FakeClock(at("2011-04-01"))
    engine = Engine.open(db=f"sqlite:///{tmp_path / 'auto.db'}", clock=clock,
                         definitions=[examples_dir() / "alert_auto_escalation.yaml"],
                         directory=DIRECTORY)
    try:
        yield Case(engine, clock)
    finally:
        engine.close()


def test_example_nobody_responding_escalates_to_stage1_the_morning_after(auto) -> None:
    inst = auto.start("alert_auto_escalation", "A-1", "iro", "2011-12-19", **DATA)
    auto.tick("2012-01-06", 12)
    inst = auto.engine.get(inst.id)
    assert inst.state == "stage1"
    assert inst.history[-1].at == at("2012-01-06", 0)
    assert inst.deadlines == {"stage1_due": date(2012, 1, 13), "formal_due": date(2012, 2, 3)}


def test_example_unanswered_stages_climb_to_stage3_then_suggest_cafcass(auto) -> None:
    inst = auto.start("alert_auto_escalation", "A-2", "iro", "2012-05-14", **DATA)
    auto.tick("2012-07-31", 12)
    inst = auto.engine.get(inst.id)
    assert inst.state == "stage3"
    local = auto.engine.calendar.local_date
    hops = [(h.event, h.to_state, local(h.at).isoformat()) for h in inst.history[1:]]
    assert hops == [("no_response", "stage1", "2012-05-29"),
                    ("no_response", "stage2", "2012-06-08"),
                    ("no_response", "stage3", "2012-06-16")]
    assert "consider_cafcass" in auto.templates(inst.id)
