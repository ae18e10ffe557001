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


def test_nobody_responding_escalates_to_stage1_the_morning_after(case) -> None:
    inst = case.start("alert_dispute", "A-1", "iro", "2011-12-19", **DATA)
    case.tick("2012-01-05", 23)
    assert case.engine.get(inst.id).state == "alert"
    case.tick("2012-01-06", 12)
    inst = case.engine.get(inst.id)
    assert inst.state == "stage1"
    escalation = inst.history[-1]
    assert (escalation.event, escalation.role) == ("no_response", "system")
    # recorded at the breach (midnight after the due date), not at the tick
    assert escalation.at == at("2012-01-06", 0)
    assert case.templates(inst.id) == ["response_reminder", "no_response"]
    no_response = case.outbox(inst.id)[1]
    assert set(no_response.recipients) == {"iro@council.example", "tm@council.example",
                                           "sm@council.example", "ism@council.example"}
    assert "escalated" in no_response.subject
    # Stage 1 gets its own 5 working days, and formal_due its 20, from the escalation.
    assert inst.deadlines == {"stage1_due": date(2012, 1, 13), "formal_due": date(2012, 2, 3)}


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


def test_unanswered_stages_climb_to_stage3_then_suggest_cafcass(case) -> None:
    inst = case.start("alert_dispute", "A-2", "iro", "2012-05-14", **DATA)
    # response_due 10 working days: 2012-05-28; stage1 5 working days skips the jubilee.
    case.tick("2012-07-31", 12)
    inst = case.engine.get(inst.id)
    assert inst.state == "stage3"
    local = case.engine.calendar.local_date
    hops = [(h.event, h.to_state, local(h.at).isoformat()) for h in inst.history[1:]]
    assert hops == [("no_response", "stage1", "2012-05-29"),
                    ("no_response", "stage2", "2012-06-08"),
                    ("no_response", "stage3", "2012-06-16")]
    assert "consider_cafcass" in case.templates(inst.id)
    assert "formal_overdue" in case.templates(inst.id)


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
