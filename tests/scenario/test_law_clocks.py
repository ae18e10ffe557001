"""The law's other clocks (issue 25), walked over real dates on the shipped v3 processes:
verdicts by logical time in the report, opened in error, early reviews, leaving care at 18,
eligible children, short breaks beyond reg. 48, core groups, transfer-in conferences, the
flags on the child's timeline, and reminders that are never overdue."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from click.testing import CliRunner
from conftest import Case, at

from icsflow.workflow import Actor
from icsflow.workflow.errors import InvalidTransition
from icsflow.workflow.reports import Window, build_report, final_states
from icsflow.workflow.timeline import child_timeline

REVIEW = {"team_manager_email": "tm@council.example", "social_worker_email": "sw@council.example"}
CONFERENCE = {"team_manager_email": "tm@council.example", "cpc_email": "cpc@council.example"}
IRO = Actor("iro-1", "iro")
ADMIN = Actor("admin-1", "admin")


def statuses(inst) -> dict[str, tuple[str, str]]:  # noqa: ANN001
    """Each deadline row, latest per name: (due date, status)."""
    return {d.name: (d.due.isoformat(), d.status.value) for d in inst.deadline_list}


def report(case: Case, as_at: str):  # noqa: ANN201
    day = date.fromisoformat(as_at)
    window = Window.resolve(start=None, end=None, as_at=day, known_at=None, today=day,
                            tz=case.engine.calendar.tz)
    return build_report(case.engine.store.engine, window,  # type: ignore[attr-defined]
                        final_states=final_states(case.engine.definitions))


def start_review(case: Case, ref: str, day: str, child: str | None = None, **data: object):  # noqa: ANN201
    case.clock.set(at(day))
    return case.engine.start("initial_review", ref=ref, data={"looked_after_on": day,
                                                              **REVIEW, **data},
                             actor=Actor("sw-1", "social_worker"), at=at(day), child=child)


# -- verdicts by logical time, missed reviews ------------------------------------------------

def test_a_review_missed_before_the_child_left_care_is_breached_and_counted_with_no_tick(
        case: Case) -> None:
    inst = start_review(case, "R-1", "2012-10-15")
    assert inst.deadlines["review_due"] == date(2012, 11, 12)
    # Entered afterwards, with no tick in between: the child left care on 20 November.
    case.engine.fire(inst.id, "cancel", ADMIN, data={"cancel_reason": "no_longer_looked_after"},
                     at=at("2012-11-20"))
    inst = case.engine.get(inst.id)
    assert statuses(inst)["review_due"] == ("2012-11-12", "breached")
    figures = report(case, "2013-03-31")
    assert figures.to_json()["lac_reviews"]["missed"] == 1
    (item,) = figures.items("lac_reviews.missed")
    assert item.ref == "R-1" and "not held: cancel 2012-11-20" in item.detail


def test_a_review_still_to_come_when_the_child_left_care_is_cancelled_and_not_missed(
        case: Case) -> None:
    inst = start_review(case, "R-1", "2012-10-15")
    case.engine.fire(inst.id, "cancel", ADMIN, data={"cancel_reason": "no_longer_looked_after"},
                     at=at("2012-11-09"))
    assert statuses(case.engine.get(inst.id))["review_due"] == ("2012-11-12", "cancelled")
    assert report(case, "2013-03-31").to_json()["lac_reviews"]["missed"] == 0


# -- opened in error ----------------------------------------------------------------------------

def _dual(case: Case, child: str) -> list:
    return [c for c in case.engine.list_cases("dual_status") if c.child == child]


def _plan(case: Case, child: str, day: str, held: str):  # noqa: ANN202
    case.clock.set(at(day))
    conf = case.engine.start("cp_conference", ref=f"CP-{child}", child=child,
                             data={"strategy_discussion_on": day, **CONFERENCE},
                             actor=Actor("cpc-1", "cpc"), at=at(day))
    return case.fire(conf.id, "hold_icpc", "cpc", held, held_at=f"{held}T10:00",
                     plan_made="true")


def test_a_looked_after_case_opened_in_error_closes_dual_status_with_no_further_email(
        case: Case) -> None:
    _plan(case, "CH-1", "2012-05-01", "2012-05-15")
    review = start_review(case, "R-1", "2012-05-28", child="CH-1")
    (dual,) = _dual(case, "CH-1")
    assert dual.ref == "DS-CH-1" and dual.state == "dual_status"
    case.fire(review.id, "cancel", "admin", "2012-06-04", cancel_reason="opened_in_error")
    dual = case.engine.get(dual.id)
    assert dual.state == "closed_in_error" and dual.closed
    assert dual.history[-1].note == f"signal looked_after_withdrawn from initial_review {review.id}"
    assert statuses(dual)["discussion_due"] == ("2012-06-13", "cancelled")  # Jubilee skipped
    assert [d.status.value for d in dual.deadline_list if d.name == "prolonged_from"] == ["marker"]
    case.tick("2013-06-01")  # a year on: no discussion reminder, no "prolonged" email
    assert case.templates(dual.id) == []
    assert report(case, "2012-06-30").to_json()["dual_status"]["month_end"]["2012-05"] == 0


def test_a_plan_ended_as_opened_in_error_closes_dual_status(case: Case) -> None:
    review = start_review(case, "R-1", "2012-05-01", child="CH-2")
    conf = _plan(case, "CH-2", "2012-05-01", "2012-05-15")
    case.fire(conf.id, "distribute_minutes", "admin", "2012-05-16")
    (dual,) = _dual(case, "CH-2")
    conf = case.fire(conf.id, "end_plan", "cpc", "2012-05-21", end_reason="opened_in_error")
    assert conf.state == "plan_ended"
    assert case.engine.get(dual.id).state == "closed_in_error"
    assert not case.engine.get(review.id).closed


# -- early reviews (reg. 33(3)) -----------------------------------------------------------------

def test_an_early_review_moves_review_due_and_the_cycle_runs_on_from_the_review_held(
        case: Case) -> None:
    inst = start_review(case, "R-1", "2012-05-28")
    inst = case.fire(inst.id, "record_review", "iro", "2012-06-20", held_on="2012-06-20",
                     participation="PN1")
    assert inst.deadlines["review_due"] == date(2012, 9, 20)
    inst = case.fire(inst.id, "request_early_review", "iro", "2012-07-02",
                     reason="iro_direction", review_by="2012-07-20")
    assert inst.deadlines["review_due"] == date(2012, 7, 20)
    assert [m.template for m in case.outbox(inst.id)][-1:] == ["early_review"]
    inst = case.fire(inst.id, "schedule", "admin", "2012-07-03", review_date="2012-07-18")
    inst = case.fire(inst.id, "hold", "iro", "2012-07-18", held_on="2012-07-18",
                     participation="PN2")
    assert inst.data["within_timescale"] is True and inst.data["review_by"] is None
    assert inst.deadlines["review_due"] == date(2013, 1, 18)  # 6 months after the second


def test_an_early_review_date_after_the_review_due_or_in_the_past_is_refused(
        case: Case) -> None:
    inst = start_review(case, "R-1", "2012-05-28")
    for review_by in ("2012-06-28", "2012-05-31"):
        try:
            case.fire(inst.id, "request_early_review", "social_worker", "2012-06-01",
                      reason="welfare_concern", review_by=review_by)
        except InvalidTransition as refused:
            assert "review_by" in str(refused)
        else:
            raise AssertionError(f"review_by {review_by} was accepted")
    assert case.engine.get(inst.id).deadlines["review_due"] == date(2012, 6, 27)


# -- leaving care at 18, eligible children ------------------------------------------------------

def test_the_18th_birthday_ends_the_case_in_left_care_with_its_deadlines_cancelled(
        case: Case) -> None:
    inst = start_review(case, "R-1", "2012-01-09", child="CH-3", date_of_birth="1995-03-14")
    inst = case.fire(inst.id, "record_review", "iro", "2012-02-01", held_on="2012-02-01",
                     participation="PN1")
    assert inst.deadlines["review_due"] == date(2012, 5, 1)
    inst = case.fire(inst.id, "record_review", "iro", "2012-04-30", held_on="2012-04-30",
                     participation="PN1")
    assert inst.markers["eighteenth_birthday"] == date(2013, 3, 14)
    assert inst.deadlines["review_due"] == date(2012, 10, 30)
    inst = case.fire(inst.id, "record_review", "iro", "2012-10-29", held_on="2012-10-29",
                     participation="PN1")
    assert inst.deadlines["review_due"] == date(2013, 4, 29)
    case.tick("2013-03-14", 1)
    inst = case.engine.get(inst.id)
    assert inst.state == "left_care" and inst.closed
    assert inst.history[-1].event == "reach_eighteen"
    assert inst.history[-1].at == at("2013-03-14", 0)
    assert inst.data["left_care_on"] == "2013-03-14"
    assert statuses(inst)["review_due"] == ("2013-04-29", "cancelled")
    case.tick("2013-06-01")
    assert "review_overdue" not in case.templates(inst.id)
    assert report(case, "2013-06-01").to_json()["lac_reviews"]["missed"] == 0


def test_a_29_february_birthday_is_counted_on_1_march(case: Case) -> None:
    inst = start_review(case, "R-1", "2012-05-28", date_of_birth="1996-02-29")
    assert inst.markers["sixteenth_birthday"] == date(2012, 2, 29)
    assert inst.markers["eighteenth_birthday"] == date(2014, 3, 1)
    assert inst.markers["fourteenth_birthday"] == date(2010, 3, 1)


def test_an_eligible_child_has_a_pathway_plan_due_3_months_after_becoming_eligible(
        case: Case) -> None:
    # Looked after from before 16: eligible on the 16th birthday, 13 weeks having passed.
    inst = start_review(case, "R-1", "2012-05-28", date_of_birth="1996-09-03")
    assert inst.markers["eligible_from"] == date(2012, 9, 3)
    assert inst.deadlines["pathway_plan_due"] == date(2012, 12, 3)
    # Looked after from 16 and a half: eligible 13 weeks later.
    late = start_review(case, "R-2", "2012-05-28", date_of_birth="1995-11-20")
    assert late.markers["thirteen_weeks_since_14"] == date(2012, 8, 27)
    assert late.markers["eligible_from"] == date(2012, 8, 27)
    assert late.deadlines["pathway_plan_due"] == date(2012, 11, 27)
    late = case.fire(late.id, "record_pathway_plan", "social_worker", "2012-10-15")
    assert statuses(late)["pathway_plan_due"] == ("2012-11-27", "met")
    # Looked after at 17 and a half: 18 comes before 13 weeks do, never eligible.
    never = start_review(case, "R-3", "2012-05-28", date_of_birth="1994-08-01")
    assert "eligible_from" not in never.markers and "pathway_plan_due" not in never.deadlines
    # On short breaks alone (reg. 48): not an eligible child (reg. 40(2)).
    breaks = start_review(case, "R-4", "2012-05-28", date_of_birth="1996-09-03",
                          short_breaks=True)
    assert "pathway_plan_due" not in breaks.deadlines


# -- short breaks beyond reg. 48 ----------------------------------------------------------------

def test_a_short_break_longer_than_17_days_moves_the_child_to_the_reg_33_cycle(
        case: Case) -> None:
    inst = start_review(case, "R-1", "2012-05-01", short_breaks=True)
    assert inst.deadlines["review_due"] == date(2012, 8, 1)
    inst = case.fire(inst.id, "record_short_break", "social_worker", "2012-05-14",
                     break_from="2012-05-11", break_to="2012-05-13")
    assert inst.data["short_breaks"] is True and inst.data["short_break_days_in_year"] == 3
    inst = case.fire(inst.id, "record_short_break", "social_worker", "2012-06-01",
                     break_from="2012-06-01", break_to="2012-06-18")
    assert inst.data["short_breaks"] is False and inst.data["reg33_from"] == "2012-06-01"
    # 20 working days from that day, 4 and 5 June 2012 (the Jubilee) not counted
    assert inst.deadlines["review_due"] == date(2012, 7, 3)
    assert inst.history[-1].changes["short_breaks"] is False
    (mail,) = [m for m in case.outbox(inst.id) if m.template == "short_breaks_ended"][:1]
    assert "3 July 2012" in mail.subject
    inst = case.fire(inst.id, "record_review", "iro", "2012-06-27", held_on="2012-06-27",
                     participation="PN1")
    assert inst.deadlines["review_due"] == date(2012, 9, 27)  # the second review: 3 months


def test_more_than_75_days_of_short_breaks_in_12_months_moves_the_child_too(
        case: Case) -> None:
    inst = start_review(case, "R-1", "2012-01-02", short_breaks=True)
    starts = ["2012-01-06", "2012-02-03", "2012-03-02", "2012-04-06", "2012-05-04",
              "2012-06-01", "2012-07-06", "2012-08-03"]
    for first in starts:  # 8 breaks of 10 days: the eighth makes 80
        last = date.fromisoformat(first).replace(day=date.fromisoformat(first).day + 9)
        inst = case.fire(inst.id, "record_short_break", "admin", first, break_from=first,
                         break_to=last.isoformat())
    assert inst.data["short_break_days_in_year"] == 80
    assert inst.data["reg33_from"] == "2012-08-03" and inst.data["short_breaks"] is False
    assert [h.changes.get("short_breaks") for h in inst.history
            if h.event == "record_short_break"] == [None] * 7 + [False]


def test_short_breaks_a_year_apart_start_the_count_again(case: Case) -> None:
    inst = start_review(case, "R-1", "2012-01-02", short_breaks=True)
    inst = case.fire(inst.id, "record_short_break", "admin", "2012-01-06",
                     break_from="2012-01-06", break_to="2012-01-20")
    inst = case.fire(inst.id, "record_short_break", "admin", "2013-01-07",
                     break_from="2013-01-07", break_to="2013-01-21")
    assert inst.data["short_break_year_from"] == "2013-01-07"
    assert inst.data["short_break_days_in_year"] == 15 and inst.data["short_breaks"] is True


# -- conferences --------------------------------------------------------------------------------

def test_the_first_core_group_is_due_10_working_days_after_the_plan(case: Case) -> None:
    conf = _plan(case, "CH-4", "2013-01-14", "2013-01-31")
    assert conf.deadlines["core_group_due"] == date(2013, 2, 14)
    case.tick("2013-02-15", 1)
    assert "core_group_overdue" in case.templates(conf.id)
    conf = case.fire(conf.id, "hold_core_group", "social_worker", "2013-02-18")
    assert statuses(conf)["core_group_due"] == ("2013-02-14", "breached")


def test_a_transfer_in_notified_on_20_december_2012_is_due_on_15_january_2013(
        case: Case) -> None:
    inst = case.start("cp_transfer_in", "TI-1", "cpc", "2012-12-20", notified_on="2012-12-20",
                      from_council="Derbyshire", **CONFERENCE)
    assert inst.deadlines == {"conference_due": date(2013, 1, 15)}
    inst = case.fire(inst.id, "hold_conference", "cpc", "2013-01-14",
                     held_at="2013-01-14T10:00", plan_made="true")
    assert inst.data["transfer_within_timescale"] is True and inst.data["plan_live"] is True
    assert inst.deadlines["review_conference_due"] == date(2013, 4, 12)  # 14 Apr is a Sunday


def test_a_late_transfer_in_conference_is_counted_held_and_missed(case: Case) -> None:
    inst = case.start("cp_transfer_in", "TI-3", "cpc", "2012-12-20", notified_on="2012-12-20",
                      **CONFERENCE)
    case.engine.fire(inst.id, "hold_conference", Actor("cpc-1", "cpc"),
                     data={"held_at": "2013-01-18T10:00", "plan_made": "false"},
                     at=at("2013-01-18"))
    figures = report(case, "2013-03-31")
    assert [i.ref for i in figures.items("cp_conferences.transfer_in_held")] == ["TI-3"]
    assert figures.items("cp_conferences.transfer_in_in_timescale") == []
    (missed,) = figures.items("cp_conferences.missed")
    assert missed.detail == "conference_due 2013-01-15; held late 2013-01-18"


def test_a_transfer_in_starts_with_the_notification_date_alone(case: Case) -> None:
    inst = case.start("cp_transfer_in", "TI-2", "admin", "2012-12-20", notified_on="2012-12-20")
    assert inst.state == "awaiting_conference"
    assert inst.deadlines == {"conference_due": date(2013, 1, 15)}


def test_a_plan_ended_by_a_move_away_records_the_receiving_conference_and_starts_nothing(
        case: Case) -> None:
    conf = _plan(case, "CH-5", "2012-09-03", "2012-09-20")
    conf = case.fire(conf.id, "distribute_minutes", "admin", "2012-09-21")
    conf = case.fire(conf.id, "end_plan", "cpc", "2012-11-12", end_reason="moved_away",
                     receiving_council="Derbyshire", receiving_conference_on="2012-11-09")
    assert conf.state == "plan_ended" and conf.data["plan_ended_on"] == "2012-11-09"
    assert case.engine.list_cases("cp_transfer_in") == []
    other = _plan(case, "CH-6", "2012-09-03", "2012-09-20")
    other = case.fire(other.id, "end_plan", "cpc", "2012-10-01", end_reason="left_uk")
    assert other.data["end_reason"] == "left_uk"


def test_a_passed_single_plan_date_prompts_an_earlier_conference_or_joint_review(
        case: Case) -> None:
    start_review(case, "R-1", "2012-05-01", child="CH-7")
    _plan(case, "CH-7", "2012-05-01", "2012-05-15")
    (dual,) = _dual(case, "CH-7")
    case.fire(dual.id, "agree_plan", "iro", "2012-05-22", single_plan_by="2012-07-31")
    case.tick("2012-08-01", 1)
    dual = case.engine.get(dual.id)
    assert dual.data["earlier_meeting_prompted_on"] == "2012-08-01"
    mails = [m for m in case.outbox(dual.id) if m.template == "single_plan_overdue"
             and m.recipients]
    assert mails and all("earlier conference or a joint review" in m.subject for m in mails)
    assert "cpc@council.example" in mails[0].recipients


# -- reminders and markers are never overdue ----------------------------------------------------

def test_list_overdue_shows_no_reminder(case: Case, tmp_path: Path) -> None:
    inst = start_review(case, "R-1", "2012-05-28")
    inst = case.fire(inst.id, "record_review", "iro", "2012-06-20", held_on="2012-06-20",
                     participation="PN1")
    case.tick("2012-09-01")  # past the reminder 20 working days before 20 September
    assert "next_review_due" in case.templates(inst.id)
    db = f"sqlite:///{tmp_path / 'scenario.db'}"
    listed = CliRunner().invoke(
        __import__("icsflow.workflow.cli", fromlist=["cli"]).cli,
        ["--db", db, "list", "--overdue", "--as-at", "2012-09-01", "--format", "csv"])
    assert listed.exit_code == 0, listed.output
    assert "reminder" not in listed.stdout and "R-1" not in listed.stdout


# -- flags on the child's timeline --------------------------------------------------------------

def test_a_placement_move_with_no_review_before_it_is_flagged_naming_reg_32_2(
        case: Case) -> None:
    inst = start_review(case, "R-1", "2012-05-01", child="CH-8")
    inst = case.fire(inst.id, "record_review", "iro", "2012-05-25", held_on="2012-05-25",
                     participation="PN1")
    case.fire(inst.id, "record_change", "social_worker", "2012-06-08",
              change_kind="placement_move", changed_on="2012-06-08")  # 10 working days on
    case.fire(inst.id, "record_change", "social_worker", "2012-08-13",
              change_kind="placement_move", changed_on="2012-08-13")  # no review since May
    timeline = child_timeline("CH-8", [case.engine.get(inst.id)], at("2012-09-01"),
                              case.engine.calendar)
    (flag,) = timeline.flags
    assert flag.rule == "reg 32(2)" and flag.at == at("2012-08-13", 12)
    assert "2012-08-13" in flag.text and "last review was held on 2012-05-25" in flag.text
    shown = timeline.to_json()
    assert shown["flags"][0]["rule"] == "reg 32(2)"
    assert shown["events"][0]["event"] == "flag: reg 32(2)"  # newest first, on the timeline


def test_a_change_the_early_review_asked_for_considered_is_not_flagged(case: Case) -> None:
    inst = start_review(case, "R-1", "2012-01-02", child="CH-9")
    inst = case.fire(inst.id, "record_review", "iro", "2012-01-27", held_on="2012-01-27",
                     participation="PN1")
    case.fire(inst.id, "request_early_review", "social_worker", "2012-03-01",
              reason="significant_change", review_by="2012-03-30")
    case.fire(inst.id, "record_review", "iro", "2012-03-28", held_on="2012-03-28",
              participation="PN1")
    case.fire(inst.id, "record_change", "social_worker", "2012-06-01",
              change_kind="care_plan_change", changed_on="2012-06-01")
    timeline = child_timeline("CH-9", [case.engine.get(inst.id)], at("2012-07-01"),
                              case.engine.calendar)
    assert timeline.flags == ()


def test_a_17_year_old_leaving_care_with_no_review_first_is_flagged_naming_reg_39(
        case: Case) -> None:
    inst = start_review(case, "R-1", "2012-01-09", child="CH-10", date_of_birth="1995-06-01")
    inst = case.fire(inst.id, "record_review", "iro", "2012-02-01", held_on="2012-02-01",
                     participation="PN1")
    case.fire(inst.id, "cancel", "admin", "2012-07-02", cancel_reason="no_longer_looked_after")
    timeline = child_timeline("CH-10", [case.engine.get(inst.id)], at("2012-08-01"),
                              case.engine.calendar)
    assert [f.rule for f in timeline.flags] == ["reg 39"]
    # A review just before leaving care is the review first: no flag.
    other = start_review(case, "R-2", "2012-01-09", child="CH-11", date_of_birth="1995-06-01")
    case.fire(other.id, "record_review", "iro", "2012-06-25", held_on="2012-06-25",
              participation="PN1")
    case.fire(other.id, "cancel", "admin", "2012-07-02", cancel_reason="no_longer_looked_after")
    assert child_timeline("CH-11", [case.engine.get(other.id)], at("2012-08-01"),
                          case.engine.calendar).flags == ()


def test_markers_are_tracked_dates_on_the_timeline_never_live_deadlines(case: Case) -> None:
    inst = start_review(case, "R-1", "2012-05-28", child="CH-12", date_of_birth="1996-09-03")
    timeline = child_timeline("CH-12", [case.engine.get(inst.id)], at("2013-01-01"),
                              case.engine.calendar)
    live = {d.name for d in timeline.live_deadlines(inst)}
    tracked = {d.name for d in timeline.tracked_dates(inst)}
    assert "eighteenth_birthday" in tracked and "eligible_from" in tracked
    assert not live & tracked and "review_due" in live
