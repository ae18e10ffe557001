"""dual_status from September 2011: monitoring from 3 months, monthly."""

from datetime import date

import pytest

from icsflow.workflow.errors import InvalidTransition

DATA = {"became_dual_on": "2011-09-15", "cpc_email": "cpc@council.example",
        "iro_email": "iro@council.example"}


def test_discussion_due_ten_working_days_after_becoming_dual(case) -> None:
    inst = case.start("dual_status", "D-1", "cpc", "2011-09-15", **DATA)
    assert inst.deadlines["discussion_due"] == date(2011, 9, 29)
    assert inst.markers["prolonged_from"] == date(2011, 12, 15)


def test_still_dual_after_three_months_is_marked_prolonged_and_repeats_monthly(case) -> None:
    inst = case.start("dual_status", "D-1", "cpc", "2011-09-15", **DATA)
    case.tick("2011-12-16", 12)
    inst = case.engine.get(inst.id)
    assert inst.data["prolonged"] is True and inst.data["months_dual"] == 3
    assert case.templates(inst.id).count("prolonged") == 1
    case.tick("2012-03-16", 12)
    inst = case.engine.get(inst.id)
    assert inst.data["months_dual"] == 6
    assert case.templates(inst.id).count("prolonged") == 4
    monthly = [h.at.astimezone(case.engine.calendar.tz).date().isoformat()
               for h in inst.history if h.event == "mark_prolonged"]
    assert monthly == ["2011-12-15", "2012-01-15", "2012-02-15", "2012-03-15"]


def test_monthly_monitoring_goes_on_until_a_single_plan(case) -> None:
    inst = case.start("dual_status", "D-1", "cpc", "2011-09-15", **DATA)
    case.tick("2014-01-01", 12)
    inst = case.engine.get(inst.id)
    assert [h.event for h in inst.history].count("mark_prolonged") == 25  # no silent stop
    inst = case.fire(inst.id, "end_cp_plan", "cpc", "2014-01-02")
    case.tick("2014-06-01", 12)
    assert [h.event for h in case.engine.get(inst.id).history].count("mark_prolonged") == 25


def test_agreed_plan_must_be_after_becoming_dual_and_ends_recording_dual_days(case) -> None:
    inst = case.start("dual_status", "D-1", "cpc", "2011-09-15", **DATA)
    with pytest.raises(InvalidTransition, match="single_plan_by"):
        case.fire(inst.id, "agree_plan", "iro", "2011-09-20", single_plan_by="2011-09-01")
    inst = case.fire(inst.id, "agree_plan", "iro", "2011-09-20", single_plan_by="2011-11-30")
    assert inst.state == "single_plan_agreed"
    assert inst.deadlines["single_plan_due"] == date(2011, 11, 30)
    case.tick("2011-11-23", 1)
    assert case.templates(inst.id)[-1] == "single_plan_reminder"
    inst = case.fire(inst.id, "end_cp_plan", "cpc", "2011-11-29")
    assert inst.state == "single_plan_lac"
    assert inst.data["dual_days"] == 75
    assert "prolonged" not in inst.data or not inst.data["prolonged"]
