"""One child across processes (2011-12): dual status starts and ends by itself, from signals."""

from __future__ import annotations

from datetime import date

import pytest
from conftest import Case, at

from icsflow.workflow import Actor
from icsflow.workflow.errors import ValidationError

CHILD = "CH-2011-042"
REVIEW = {"looked_after_on": "2011-09-05", "team_manager_email": "tm@council.example",
          "iro_email": "iro@council.example"}
CONFERENCE = {"strategy_discussion_on": "2011-10-03", "cpc_email": "cpc@council.example",
              "team_manager_email": "tm@council.example"}


def _ref(name: str, child: str, day: str) -> str:
    """A reference of its own for each case (a reference names one case)."""
    return f"{name.split('_')[-1][:3].upper()}-{child}-{day}"


def _start(case: Case, name: str, day: str, data: dict[str, object], child: str = CHILD):
    case.clock.set(at(day))
    return case.engine.start(name, ref=_ref(name, child, day), data=data,
                             actor=Actor("admin-1", "admin"), at=at(day), child=child,
                             family="F-9")


def _dual(case: Case, child: str = CHILD) -> list:
    return [i for i in case.engine.list(child=child) if i.definition == "dual_status"]


def test_a_plan_made_while_looked_after_starts_dual_status_which_closes_at_the_review(
        case: Case) -> None:
    review = _start(case, "initial_review", "2011-09-05", REVIEW)
    conf = _start(case, "cp_conference", "2011-10-03", CONFERENCE)
    assert _dual(case) == []  # a strategy discussion is not a plan
    case.fire(conf.id, "hold_icpc", "cpc", "2011-10-20", held_at="2011-10-20T10:00",
              plan_made="true")
    [dual] = _dual(case)
    assert dual.state == "dual_status" and dual.child == CHILD and dual.family == "F-9"
    assert dual.data["became_dual_on"] == "2011-10-20"  # the later of the two
    assert dual.data["cpc_email"] == "cpc@council.example"
    start = dual.history[0]
    assert (start.actor, start.role) == ("system", "system")
    assert start.note == f"signal cp_plan_started from cp_conference {conf.id}"
    case.fire(conf.id, "distribute_minutes", "admin", "2011-10-21")
    case.fire(conf.id, "hold_review", "cpc", "2012-01-16", held_at="2012-01-16T10:00",
              plan_continues="false")
    dual = case.engine.get(dual.id)
    assert dual.state == "single_plan_lac" and dual.closed
    assert dual.history[-1].event == "end_cp_plan"
    assert dual.history[-1].note == f"signal cp_plan_ended from cp_conference {conf.id}"
    assert dual.data["dual_days"] == 88
    assert not case.engine.get(review.id).closed  # the review cycle goes on
    # Ended is not met: the discussion deadline of the closed case is cancelled; "prolonged
    # from" is a marker (dual_status v3), closed with the case, never cancelled or breached.
    statuses = {d.name: (d.status.value, d.met_at is not None) for d in dual.deadline_list}
    assert statuses["prolonged_from"] == ("marker", True)


def test_becoming_looked_after_with_a_live_plan_starts_dual_status_and_leaving_care_ends_it(
        case: Case) -> None:
    conf = _start(case, "cp_conference", "2011-10-03", CONFERENCE)
    case.fire(conf.id, "hold_icpc", "cpc", "2011-10-20", held_at="2011-10-20T10:00",
              plan_made="true")
    assert _dual(case) == []  # not looked after yet
    review = _start(case, "initial_review", "2011-11-14",
                    {**REVIEW, "looked_after_on": "2011-11-11"})
    [dual] = _dual(case)
    assert dual.data["became_dual_on"] == "2011-11-11"
    assert dual.data["iro_email"] == "iro@council.example"
    case.fire(review.id, "cancel", "admin", "2011-12-19", cancel_reason="no_longer_looked_after")
    dual = case.engine.get(dual.id)
    assert dual.state == "single_plan_cp"
    assert dual.history[-1].note == f"signal looked_after_ended from initial_review {review.id}"


def test_another_childs_cases_are_not_heard(case: Case) -> None:
    _start(case, "initial_review", "2011-09-05", REVIEW, child="CH-A")
    conf = _start(case, "cp_conference", "2011-10-03", CONFERENCE, child="CH-B")
    case.fire(conf.id, "hold_icpc", "cpc", "2011-10-20", held_at="2011-10-20T10:00",
              plan_made="true")
    assert _dual(case, "CH-A") == [] and _dual(case, "CH-B") == []


def test_an_initial_conference_without_a_plan_is_not_dual_status(case: Case) -> None:
    _start(case, "initial_review", "2011-09-05", REVIEW)
    conf = _start(case, "cp_conference", "2011-10-03", CONFERENCE)
    case.fire(conf.id, "hold_icpc", "cpc", "2011-10-20", held_at="2011-10-20T10:00",
              plan_made="false")
    assert _dual(case) == []


def test_starting_dual_status_by_hand_still_works_and_a_second_is_not_started(
        case: Case) -> None:
    dual = _start(case, "dual_status", "2011-09-15",
                  {"became_dual_on": "2011-09-15", "cpc_email": "cpc@council.example"})
    _start(case, "initial_review", "2011-09-05", REVIEW)
    conf = _start(case, "cp_conference", "2011-10-03", CONFERENCE)
    case.fire(conf.id, "hold_icpc", "cpc", "2011-10-20", held_at="2011-10-20T10:00",
              plan_made="true")
    assert [d.id for d in _dual(case)] == [dual.id]  # one open dual-status case per child


def test_a_review_held_with_no_minutes_still_has_its_next_review_due(case: Case) -> None:
    review = _start(case, "initial_review", "2011-09-05", REVIEW)
    case.fire(review.id, "request_review", "social_worker", "2011-09-07")
    case.fire(review.id, "allocate", "admin", "2011-09-08", iro_id="iro-3",
              iro_email="iro3@council.example")
    case.fire(review.id, "schedule", "iro", "2011-09-09", review_date="2011-09-30")
    inst = case.fire(review.id, "hold", "iro", "2011-09-30", held_on="2011-09-30",
                     participation="PN6")
    assert inst.state == "held" and inst.data["participation"] == "PN6"
    assert inst.deadlines["review_due"] == date(2011, 12, 30)  # 3 months after the meeting
    # Minutes never distributed: the cycle still runs and the minutes stay overdue.
    case.tick("2011-12-01", 9)
    inst = case.engine.get(review.id)
    assert inst.deadlines["review_due"] == date(2011, 12, 30)
    late = {d.name: d.status.value for d in inst.deadline_list if d.name in
            ("minutes_due", "record_due")}
    assert late == {"minutes_due": "breached", "record_due": "breached"}
    review_rows = [d for d in inst.deadline_list if d.name == "review_due"]
    assert [d.status.value for d in review_rows] == ["met", "live"]


def test_a_case_cancelled_before_its_review_shows_the_deadline_cancelled(case: Case) -> None:
    review = _start(case, "initial_review", "2011-09-05", REVIEW)
    case.fire(review.id, "request_review", "social_worker", "2011-09-07")
    inst = case.fire(review.id, "cancel", "admin", "2011-09-20",
                     cancel_reason="no_longer_looked_after")
    statuses = {d.name: d.status.value for d in inst.deadline_list}
    assert statuses["review_due"] == "cancelled"
    assert statuses["booklet_due"] == "cancelled"
    assert "met" not in [d.status.value for d in inst.deadline_list if d.name != "request_due"]


def test_the_booklet_is_a_task_reminded_to_the_admin_team(case: Case) -> None:
    review = _start(case, "initial_review", "2011-09-05", REVIEW)
    assert review.deadlines["booklet_due"] == date(2011, 9, 26)  # 5 working days before 3 Oct
    case.tick("2011-09-22", 9)
    assert case.templates(review.id)[-1] == "booklet_reminder"
    inst = case.fire(review.id, "send_booklet", "admin", "2011-09-23")
    assert inst.data["booklet_sent_on"] == "2011-09-23"
    assert [d.status.value for d in inst.deadline_list if d.name == "booklet_due"] == ["met"]


def test_short_breaks_first_review_in_3_months_then_6(case: Case) -> None:
    review = _start(case, "initial_review", "2011-09-05", {**REVIEW, "short_breaks": "true"})
    assert review.deadlines["review_due"] == date(2011, 12, 5)
    case.fire(review.id, "request_review", "social_worker", "2011-10-03")
    case.fire(review.id, "allocate", "admin", "2011-10-04", iro_id="iro-3",
              iro_email="iro3@council.example")
    case.fire(review.id, "schedule", "iro", "2011-10-05", review_date="2011-11-30")
    inst = case.fire(review.id, "hold", "iro", "2011-11-30", held_on="2011-11-30",
                     participation="PN1")
    assert inst.deadlines["review_due"] == date(2012, 5, 30)


def test_conference_on_friday_before_christmas_has_minutes_due_wednesday(case: Case) -> None:
    conf = _start(case, "cp_conference", "2011-12-05", {**CONFERENCE,
                                                         "strategy_discussion_on": "2011-12-05"})
    inst = case.fire(conf.id, "hold_icpc", "cpc", "2011-12-23", held_at="2011-12-23T15:00",
                     plan_made="true")
    # Christmas Day (Sunday) and Boxing Day, with the substitute day 27 December.
    assert inst.deadlines["minutes_due"] == date(2011, 12, 28)
    assert inst.deadlines["review_conference_due"] == date(2012, 3, 23)
    case.tick("2011-12-29", 1)
    [mail] = [m for m in case.outbox(conf.id) if m.template == "minutes_overdue"]
    assert "Wednesday 28 December 2011" in mail.body and "Saturday" not in mail.body


def test_a_plan_ends_outside_a_review_conference_only_with_a_reason(case: Case) -> None:
    import pytest

    from icsflow.workflow.errors import ValidationError

    conf = _start(case, "cp_conference", "2011-10-03", CONFERENCE)
    case.fire(conf.id, "hold_icpc", "cpc", "2011-10-20", held_at="2011-10-20T10:00",
              plan_made="true")
    case.fire(conf.id, "distribute_minutes", "admin", "2011-10-21")
    with pytest.raises(ValidationError, match="end_reason"):
        case.fire(conf.id, "end_plan", "cpc", "2011-11-30")
    inst = case.fire(conf.id, "end_plan", "cpc", "2011-11-30", end_reason="moved_away")
    assert inst.state == "plan_ended" and inst.data["plan_ended_on"] == "2011-11-30"
    statuses = {d.name: d.status.value for d in inst.deadline_list}
    assert statuses["review_conference_due"] == "cancelled"


def test_a_target_date_in_the_past_is_refused(case: Case) -> None:
    import pytest

    from icsflow.workflow.errors import InvalidTransition

    dual = _start(case, "dual_status", "2011-09-15",
                  {"became_dual_on": "2011-09-01", "cpc_email": "cpc@council.example"})
    with pytest.raises(InvalidTransition, match="event_date"):
        case.fire(dual.id, "agree_plan", "iro", "2011-10-10", single_plan_by="2011-10-01")


def test_allocation_is_due_at_the_next_weekly_meeting_and_closures_move_it(case: Case) -> None:
    review = _start(case, "initial_review", "2011-12-12", {**REVIEW,
                                                          "looked_after_on": "2011-12-12"})
    inst = case.fire(review.id, "request_review", "social_worker", "2011-12-22")
    # Tuesday 27 December 2011 is the substitute Christmas holiday: the meeting moves to 28th.
    assert inst.data["allocation_meeting_on"] == "2011-12-28"
    assert inst.deadlines["allocation_due"] == date(2011, 12, 28)


def test_allocating_an_iro_above_the_handbook_band_asks_for_a_reason(case: Case) -> None:
    import pytest

    from icsflow.workflow.errors import InvalidTransition

    ids = []
    for n in range(71):
        inst = _start(case, "initial_review", "2011-09-05", REVIEW, child=f"CH-{n}")
        case.fire(inst.id, "request_review", "social_worker", "2011-09-06")
        ids.append(inst.id)
    for iid in ids[:70]:
        inst = case.engine.fire(iid, "allocate", Actor("ism-1", "iro_service_manager"),
                                data={"iro_id": "iro-busy", "iro_email": "busy@council.example"})
    assert inst.data["iro_caseload"] == 70
    with pytest.raises(InvalidTransition, match="above_band_reason"):
        case.engine.fire(ids[70], "allocate", Actor("ism-1", "iro_service_manager"),
                         data={"iro_id": "iro-busy", "iro_email": "busy@council.example"})
    inst = case.engine.fire(ids[70], "allocate", Actor("ism-1", "iro_service_manager"),
                            data={"iro_id": "iro-busy", "iro_email": "busy@council.example",
                                  "above_band_reason": "Sibling group already with this IRO"})
    assert inst.data["iro_caseload"] == 71


def test_the_weekly_allocation_list_knows_the_family_and_the_caseloads(case: Case) -> None:
    from icsflow.workflow.allocation import allocation_list

    older = _start(case, "initial_review", "2011-09-05", REVIEW, child="CH-SIB-1")
    case.fire(older.id, "request_review", "social_worker", "2011-09-06")
    case.engine.fire(older.id, "allocate", Actor("ism-1", "iro_service_manager"),
                     data={"iro_id": "iro-7", "iro_email": "iro7@council.example"})
    younger = _start(case, "initial_review", "2011-12-12",
                     {**REVIEW, "looked_after_on": "2011-12-12", "out_of_county": "true"},
                     child="CH-SIB-2")
    case.fire(younger.id, "request_review", "social_worker", "2011-12-13")
    listing = allocation_list(case.engine.list(open_only=True), date(2011, 12, 19),
                              case.engine.calendar)
    [row] = listing.rows
    assert row.ref == _ref("initial_review", "CH-SIB-2", "2011-12-12")
    assert row.child == "CH-SIB-2" and row.out_of_county
    assert row.review_due == date(2012, 1, 12) and row.working_days_left == 15
    assert row.family_iros == ("iro-7",)  # the IRO who already knows the family (F-9)
    assert listing.caseloads == {"iro-7": 1} and listing.above_band == []
    assert "family IRO: iro-7" in listing.text()


def test_strategy_meeting_minutes_are_tracked_like_conferences(case: Case) -> None:
    meeting = _start(case, "strategy_meeting", "2011-12-19",
                     {"concern": "Complex abuse", "cpc_email": "cpc@council.example"})
    inst = case.fire(meeting.id, "hold", "cpc", "2011-12-23", held_at="2011-12-23T15:00")
    assert inst.deadlines == {"minutes_due": date(2011, 12, 28)}
    case.tick("2011-12-29", 1)
    assert case.templates(meeting.id) == ["minutes_overdue"]
    inst = case.fire(meeting.id, "schedule", "admin", "2011-12-30", meeting_date="2012-01-10")
    inst = case.fire(meeting.id, "hold", "cpc", "2012-01-10", held_at="2012-01-10T10:00")
    inst = case.fire(meeting.id, "distribute_minutes", "admin", "2012-01-11")
    rows = [d.status.value for d in inst.deadline_list if d.name == "minutes_due"]
    assert rows == ["breached", "met"] and inst.data["meetings_held"] == 2


def test_the_allocation_weekday_is_the_councils_setting(tmp_path) -> None:  # noqa: ANN001
    from icsflow.workflow import Engine
    from icsflow.workflow.clock import FakeClock

    clock = FakeClock(at("2011-12-12"))
    with Engine.open(db=f"sqlite:///{tmp_path / 'w.db'}", clock=clock,
                     settings={"allocation_weekday": "Thursday"}) as engine:
        inst = engine.start("initial_review", ref="R-1", actor=Actor("sw-1", "social_worker"),
                            data={**REVIEW, "looked_after_on": "2011-12-12"},
                            at=at("2011-12-12"))
        inst = engine.fire(inst.id, "request_review", Actor("sw-1", "social_worker"),
                           at=at("2011-12-13"))
        assert inst.deadlines["allocation_due"] == date(2011, 12, 15)


def test_a_review_due_on_a_saturday_is_due_the_friday_before(case: Case) -> None:
    review = _start(case, "initial_review", "2011-09-05", REVIEW)
    case.fire(review.id, "request_review", "social_worker", "2011-09-07")
    case.fire(review.id, "allocate", "admin", "2011-09-08", iro_id="iro-3",
              iro_email="iro3@council.example")
    case.fire(review.id, "schedule", "iro", "2011-09-09", review_date="2011-10-14")
    inst = case.fire(review.id, "hold", "iro", "2011-10-14", held_on="2011-10-14",
                     participation="PN1")
    # 3 months after Friday 14 October 2011 is Saturday 14 January 2012: no email may carry a
    # weekend due date, and "not more than 3 months" is met by the Friday.
    assert inst.deadlines["review_due"] == date(2012, 1, 13)


def test_a_case_a_signal_starts_has_a_reference_of_its_own_and_later_spells_are_numbered(
        case: Case) -> None:
    """Dual status used to borrow the reference of the case that started it, so that
    reference named two cases and `fire REF` could not tell which."""
    _start(case, "initial_review", "2011-09-05", REVIEW)
    conf = case.engine.start("cp_conference", ref="CP-03", data=CONFERENCE, child=CHILD,
                             actor=Actor("admin-1", "admin"), at=at("2011-10-03"))
    case.fire(conf.id, "hold_icpc", "cpc", "2011-10-20", held_at="2011-10-20T10:00",
              plan_made="true")
    [dual] = _dual(case)
    assert dual.ref == f"DS-{CHILD}"
    assert [c.id for c in case.engine.find("CP-03")] == [conf.id]  # one case, the conference
    case.fire(conf.id, "distribute_minutes", "admin", "2011-10-21")
    case.engine.fire(conf.id, "end_plan", Actor("cpc-1", "cpc"),
                     data={"end_reason": "other"}, at=at("2011-11-01"))
    second = case.engine.start("cp_conference", ref="CP-04", data=CONFERENCE, child=CHILD,
                               actor=Actor("admin-1", "admin"), at=at("2011-12-01"))
    case.fire(second.id, "hold_icpc", "cpc", "2011-12-15", held_at="2011-12-15T10:00",
              plan_made="true")
    assert sorted(d.ref for d in _dual(case)) == [f"DS-{CHILD}", f"DS-{CHILD}-2"]


def test_a_reference_another_case_has_is_refused_at_start(case: Case) -> None:
    _start(case, "initial_review", "2011-09-05", REVIEW)
    taken = _ref("initial_review", CHILD, "2011-09-05")
    with pytest.raises(ValidationError, match=f"ref: '{taken}' is already the reference of "
                                              "another case"):
        case.engine.start("cp_conference", ref=taken, data=CONFERENCE, child=CHILD,
                          actor=Actor("admin-1", "admin"), at=at("2011-10-03"))
    assert [c.definition for c in case.engine.find(taken)] == ["initial_review"]
