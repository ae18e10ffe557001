"""cp_conference: initial conference, 24-hour minutes, review conferences."""

from datetime import date

DATA = {"strategy_discussion_on": "2011-04-20", "cpc_email": "cpc@council.example",
        "team_manager_email": "tm@council.example", "social_worker_email": "sw@council.example"}


def test_initial_conference_due_skips_easter_and_the_royal_wedding(case) -> None:
    inst = case.start("cp_conference", "P-1", "cpc", "2011-04-20", **DATA)
    # 22 and 25 April (Easter), 29 April (royal wedding), 2 May (Early May) are not counted.
    assert inst.deadlines == {"icpc_due": date(2011, 5, 17)}


def test_plan_made_then_minutes_within_24_hours_and_review_in_3_months(case) -> None:
    inst = case.start("cp_conference", "P-1", "cpc", "2011-04-20", **DATA)
    inst = case.fire(inst.id, "schedule", "admin", "2011-04-21", conference_date="2011-05-10")
    inst = case.fire(inst.id, "hold_icpc", "cpc", "2011-05-10",
                     held_at="2011-05-10T14:00", plan_made="true")
    assert inst.state == "icpc_minutes"
    assert inst.data["icpc_within_timescale"] is True
    # "Within 24 hours" is the next working day; the review clock runs from the conference;
    # the first core group within 10 working days of it (v3; Working Together 2013).
    assert inst.deadlines == {"minutes_due": date(2011, 5, 11),
                              "review_conference_due": date(2011, 8, 10),
                              "core_group_due": date(2011, 5, 24)}
    case.tick("2011-05-11", 15)
    assert case.templates(inst.id) == []
    case.tick("2011-05-12", 1)
    assert case.templates(inst.id) == ["minutes_overdue"]
    inst = case.fire(inst.id, "distribute_minutes", "cpc", "2011-05-12")
    assert inst.state == "plan"
    inst = case.fire(inst.id, "hold_core_group", "social_worker", "2011-05-20")
    assert inst.deadlines == {"review_conference_due": date(2011, 8, 10)}
    inst = case.fire(inst.id, "hold_review", "cpc", "2011-08-08",
                     held_at="2011-08-08T10:00", plan_continues="true")
    inst = case.fire(inst.id, "distribute_minutes", "admin", "2011-08-08")
    assert inst.deadlines == {"review_conference_due": date(2012, 2, 8)}
    inst = case.fire(inst.id, "hold_review", "cpc", "2012-02-01",
                     held_at="2012-02-01T10:00", plan_continues="false")
    inst = case.fire(inst.id, "distribute_minutes", "cpc", "2012-02-01")
    assert inst.state == "plan_ended" and inst.closed


def test_no_plan_ends_in_no_plan(case) -> None:
    inst = case.start("cp_conference", "P-1", "cpc", "2011-04-20", **DATA)
    inst = case.fire(inst.id, "hold_icpc", "cpc", "2011-05-18",
                     held_at="2011-05-18T10:00", plan_made="false")
    assert inst.data["icpc_within_timescale"] is False
    assert "icpc_overdue" in case.templates(inst.id)
    inst = case.fire(inst.id, "distribute_minutes", "cpc", "2011-05-18")
    assert inst.state == "no_plan"


def test_timeliness_counts_when_the_conference_was_held_not_when_it_was_recorded(case) -> None:
    inst = case.start("cp_conference", "P-1", "cpc", "2011-04-20", **DATA)
    # Held on the due date (17 May 2011), recorded two days later.
    inst = case.fire(inst.id, "hold_icpc", "cpc", "2011-05-19",
                     held_at="2011-05-17T15:00", plan_made="true")
    assert inst.data["icpc_within_timescale"] is True
