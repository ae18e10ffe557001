"""``list --as-at``: a case rebuilt from its history and deadline rows, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from icsflow.storage.reads import DeadlineRowInfo
from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.cli.case_views import (
    csv_text,
    end_of_day,
    overdue_first,
    rows_for,
    unknown_choice,
    view_as_at,
)
from icsflow.workflow.instance import HistoryEntry, Instance

CAL = WorkingCalendar()
RECORDED = datetime(2026, 1, 1, tzinfo=UTC)  # everything was typed in long after (backdated)


def at(day: str) -> datetime:
    return datetime.fromisoformat(day + "T10:00+00:00")


def entry(n: int, event: str, frm: str | None, to: str, day: str) -> HistoryEntry:
    return HistoryEntry(event, frm, to, "a", "iro", at(day), RECORDED + timedelta(minutes=n))


def row(n: int, rid: int, due: str, met: str | None = None,
        status: str = "live") -> DeadlineRowInfo:
    d = date.fromisoformat(due)
    return DeadlineRowInfo(rid, "c1", "response_due", d, end_of_day(d, CAL),
                           status, at(met) if met else None, RECORDED + timedelta(minutes=n))


# Started 1 Dec (due 15 Dec), responded 8 Dec, reopened 12 Dec (due 3 Jan), never answered.
CASE = Instance(
    id="c1", definition="alert", version=1, ref="C-1", state="alert", data={},
    deadline_list=(), timers=(),
    history=(entry(0, "start", None, "alert", "2011-12-01"),
             entry(1, "respond", "alert", "responded", "2011-12-08"),
             entry(2, "reopen", "responded", "alert", "2011-12-12")))
ROWS = [row(0, 1, "2011-12-15", met="2011-12-08", status="met"), row(2, 2, "2012-01-03")]
LIVE_IN = {"response_due": ("alert",)}


def view(day: str):  # noqa: ANN201 - test helper
    return view_as_at(CASE, end_of_day(date.fromisoformat(day), CAL), ROWS, LIVE_IN)


def test_before_the_start_the_case_is_not_there() -> None:
    assert view("2011-11-30") is None


def test_each_day_shows_the_state_and_the_deadline_counting_then() -> None:
    assert [(d.name, d.due) for d in view("2011-12-05").deadlines] == \
        [("response_due", date(2011, 12, 15))]
    responded = view("2011-12-09")
    assert responded.state == "responded" and responded.deadlines == ()
    reopened = view("2011-12-20")
    assert reopened.state == "alert"
    assert [d.due for d in reopened.deadlines] == [date(2012, 1, 3)]


def test_overdue_days_count_working_days_after_the_due_day() -> None:
    day = date(2012, 1, 10)
    moment = end_of_day(day, CAL)
    late = overdue_first([view("2012-01-10")], moment)
    [r] = rows_for(late, moment, day, CAL, overdue=True)
    assert (r["deadline"], r["due"], r["working_days_overdue"]) == ("response_due",
                                                                    "2012-01-03", 5)
    assert csv_text([r]).splitlines()[1].endswith(",false,response_due,2012-01-03,5")
    assert overdue_first([view("2012-01-03")], end_of_day(date(2012, 1, 3), CAL)) == []


def test_unknown_names_get_the_nearest_one() -> None:
    assert unknown_choice("state", "alert", ["alert", "responded"]) is None
    assert unknown_choice("state", "respnded", ["alert", "responded"]).endswith(
        "did you mean 'responded'?")
