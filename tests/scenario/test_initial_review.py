"""initial_review around the Diamond Jubilee and through the review cycle."""

from datetime import date

import pytest

from icsflow.workflow.errors import ValidationError

DATA = {"looked_after_on": "2012-05-28", "team_manager_email": "tm@council.example",
        "social_worker_email": "sw@council.example"}


def test_review_and_request_due_dates_skip_the_jubilee(case) -> None:
    inst = case.start("initial_review", "R-1", "social_worker", "2012-05-28", **DATA)
    assert inst.state == "awaiting_request"
    assert inst.deadlines == {"review_due": date(2012, 6, 27), "request_due": date(2012, 6, 6),
                              "booklet_due": date(2012, 6, 20)}


def test_a_late_request_is_recorded_with_its_lead_time(case) -> None:
    inst = case.start("initial_review", "R-1", "social_worker", "2012-05-28", **DATA)
    case.tick("2012-06-04", 1)
    assert case.templates(inst.id) == ["request_reminder"]  # 2 working days before 6 June
    inst = case.fire(inst.id, "request_review", "social_worker", "2012-06-12")
    assert [h.event for h in inst.history] == ["start", "request_not_made", "request_review"]
    assert inst.state == "awaiting_allocation"
    assert inst.data["requested_on"] == "2012-06-12"
    assert inst.data["late_request"] is True
    assert inst.data["lead_time_working_days"] == 11
    overdue = case.outbox(inst.id)[1]
    assert overdue.template == "request_overdue"
    assert set(overdue.recipients) == {"sw@council.example", "tm@council.example",
                                       "iro-admin@council.example"}
    # Allocation is due at the next weekly allocation meeting (Tuesday 19 June).
    assert inst.deadlines == {"review_due": date(2012, 6, 27), "allocation_due": date(2012, 6, 19),
                              "booklet_due": date(2012, 6, 20)}


def test_an_early_request_is_not_late(case) -> None:
    inst = case.start("initial_review", "R-1", "social_worker", "2012-05-28", **DATA)
    inst = case.fire(inst.id, "request_review", "team_manager", "2012-06-01")
    assert inst.data["late_request"] is False
    assert inst.data["lead_time_working_days"] == 16


def test_the_cycle_reviews_within_timescale_then_3_and_6_months(case) -> None:
    inst = case.start("initial_review", "R-1", "social_worker", "2012-05-28", **DATA)
    inst = case.fire(inst.id, "request_review", "social_worker", "2012-06-01")
    inst = case.fire(inst.id, "allocate", "iro_service_manager", "2012-06-05",
                     iro_id="iro-7", iro_email="iro7@council.example")
    assert inst.state == "allocated"
    inst = case.fire(inst.id, "schedule", "iro", "2012-06-06", review_date="2012-06-26")
    assert inst.data["scheduled_out_of_timescale"] is False
    assert inst.markers["review_meeting"] == date(2012, 6, 26)
    case.tick("2012-06-19", 1)  # 5 working days before 26 June
    assert case.templates(inst.id)[-1] == "meet_child"
    inst = case.fire(inst.id, "hold", "iro", "2012-06-26", held_on="2012-06-26",
                     participation="PN1")
    assert inst.state == "held"
    assert inst.data["within_timescale"] is True and inst.data["reviews_held"] == 1
    assert inst.data["answered_review_due"] == "2012-06-27"
    # The second review within 3 months of the first, from the meeting; minutes apart. The
    # reminder 20 working days before it is a timer, not a deadline (v3).
    assert inst.deadlines == {"review_due": date(2012, 9, 26), "minutes_due": date(2012, 7, 3),
                              "record_due": date(2012, 7, 24)}
    reminder = next(t for t in inst.timers if t.name == "next_review_due_soon")
    assert reminder.due_at.date() == date(2012, 8, 28)  # 29 August 2012, 00:00 London
    inst = case.fire(inst.id, "distribute_minutes", "iro", "2012-07-02")
    assert inst.state == "next_review"
    assert inst.deadlines["review_due"] == date(2012, 9, 26)
    assert "minutes_due" not in inst.deadlines and "record_due" not in inst.deadlines
    inst = case.fire(inst.id, "schedule", "iro", "2012-09-03", review_date="2012-09-20")
    inst = case.fire(inst.id, "hold", "iro", "2012-09-20", held_on="2012-09-20",
                     participation="PN5")
    inst = case.fire(inst.id, "distribute_minutes", "admin", "2012-09-24")
    # Later ones within 6 months of the previous.
    assert inst.deadlines["review_due"] == date(2013, 3, 20)


def test_booking_after_the_due_date_tells_the_iro_service_manager(case) -> None:
    inst = case.start("initial_review", "R-1", "social_worker", "2012-05-28", **DATA)
    inst = case.fire(inst.id, "request_review", "social_worker", "2012-06-01")
    inst = case.fire(inst.id, "allocate", "admin", "2012-06-05",
                     iro_id="iro-7", iro_email="iro7@council.example")
    inst = case.fire(inst.id, "schedule", "iro", "2012-06-06", review_date="2012-06-29")
    assert inst.data["scheduled_out_of_timescale"] is True
    out = case.outbox(inst.id)[-1]
    assert (out.template, out.recipients) == ("out_of_timescale", ("ism@council.example",))
    case.tick("2012-06-28", 9)  # review_due (27 June) breached before the review was held
    assert case.templates(inst.id)[-1] == "review_overdue"
    inst = case.fire(inst.id, "hold", "iro", "2012-06-29", held_on="2012-06-29",
                     participation="PN0")
    assert inst.data["within_timescale"] is False


def test_schedule_needs_a_review_date(case) -> None:
    inst = case.start("initial_review", "R-1", "social_worker", "2012-05-28", **DATA)
    inst = case.fire(inst.id, "request_review", "social_worker", "2012-06-01")
    inst = case.fire(inst.id, "allocate", "admin", "2012-06-05",
                     iro_id="iro-7", iro_email="iro7@council.example")
    with pytest.raises(ValidationError, match="review_date"):
        case.fire(inst.id, "schedule", "iro", "2012-06-06")
    assert case.engine.get(inst.id).state == "allocated"
