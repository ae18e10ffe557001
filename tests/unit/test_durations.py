"""Duration syntax (definitions.durations) and its meaning on the calendar (workflow.durations)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from icsflow.definitions.durations import ACCEPTED_FORMS
from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.durations import (
    Duration,
    DurationSyntaxError,
    Roll,
    Unit,
    apply_duration,
    parse_duration,
)

CAL = WorkingCalendar()
LONDON = ZoneInfo("Europe/London")
D = date.fromisoformat


# -- syntax --------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("10 working days", Duration(10, Unit.WORKING_DAYS)),
    ("1 working day", Duration(1, Unit.WORKING_DAYS)),
    ("  20   Working   Days ", Duration(20, Unit.WORKING_DAYS)),
    ("0 working days", Duration(0, Unit.WORKING_DAYS)),
    ("3 months", Duration(3, Unit.MONTHS)),
    ("1 MONTH", Duration(1, Unit.MONTHS)),
    ("6 Months", Duration(6, Unit.MONTHS)),
    ("7 days", Duration(7, Unit.DAYS)),
    ("1 day", Duration(1, Unit.DAYS)),
    ("2 weeks", Duration(2, Unit.WEEKS)),
    ("1 week", Duration(1, Unit.WEEKS)),
    ("24 hours", Duration(24, Unit.HOURS)),
    ("1 hour", Duration(1, Unit.HOURS)),
    ("007 days", Duration(7, Unit.DAYS)),
])
def test_accepted_forms(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", [
    "", "   ", "10", "working days", "ten working days", "-5 days", "+5 days", "1.5 days",
    "10 workingdays", "10working days", "10 business days", "3 mnths", "3 months later",
    "3 months 2 days", "10 working", "P3M", "10 working days,", "１０ days",
])
def test_refused_forms_quote_the_input_and_list_the_forms(text: str) -> None:
    with pytest.raises(DurationSyntaxError) as info:
        parse_duration(text)
    message = str(info.value)
    assert repr(text) in message
    assert ACCEPTED_FORMS in message
    for form in ("working day(s)", "day(s)", "week(s)", "month(s)", "hour(s)"):
        assert form in message


def test_syntax_error_is_a_value_error() -> None:
    assert issubclass(DurationSyntaxError, ValueError)


@pytest.mark.parametrize(("duration", "text"), [
    (Duration(1, Unit.WORKING_DAYS), "1 working day"),
    (Duration(10, Unit.WORKING_DAYS), "10 working days"),
    (Duration(0, Unit.WORKING_DAYS), "0 working days"),
    (Duration(3, Unit.MONTHS), "3 months"),
    (Duration(1, Unit.MONTHS), "1 month"),
    (Duration(24, Unit.HOURS), "24 hours"),
    (Duration(1, Unit.WEEKS), "1 week"),
    (Duration(2, Unit.DAYS), "2 days"),
])
def test_canonical_form(duration: Duration, text: str) -> None:
    assert str(duration) == text


@given(st.integers(min_value=0, max_value=10_000), st.sampled_from(list(Unit)))
def test_canonical_form_round_trips(amount: int, unit: Unit) -> None:
    duration = Duration(amount, unit)
    assert parse_duration(str(duration)) == duration


def test_duration_is_frozen_and_validated() -> None:
    d = Duration(3, Unit.MONTHS)
    with pytest.raises(AttributeError):
        d.amount = 4  # type: ignore[misc]
    with pytest.raises(ValueError):
        Duration(-1, Unit.DAYS)
    assert Duration(2, "weeks").unit is Unit.WEEKS  # type: ignore[arg-type]


# -- meaning -------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "text", "deadline"), [
    ("2012-05-28", "20 working days", "2012-06-27"),
    ("2011-04-15", "20 working days", "2011-05-19"),
    ("2022-09-05", "20 working days", "2022-10-04"),
    ("2023-12-23", "20 working days", "2024-01-24"),
    ("2023-11-30", "3 months", "2024-02-29"),
    ("2022-08-31", "6 months", "2023-02-28"),
    ("2012-01-31", "1 month", "2012-02-29"),
    ("2012-03-31", "1 month", "2012-04-30"),
    ("2012-05-15", "3 months", "2012-08-15"),
    ("2012-12-31", "2 months", "2013-02-28"),
    ("2012-12-15", "1 month", "2013-01-15"),
    ("2012-05-28", "7 days", "2012-06-04"),
    ("2012-05-28", "2 weeks", "2012-06-11"),
    ("2012-05-28", "0 working days", "2012-05-28"),
])
def test_forward(start: str, text: str, deadline: str) -> None:
    assert apply_duration(D(start), parse_duration(text), CAL) == D(deadline)


@pytest.mark.parametrize(("start", "text", "earlier"), [
    ("2012-06-27", "20 working days", "2012-05-28"),
    ("2024-02-29", "3 months", "2023-11-29"),
    ("2023-05-31", "3 months", "2023-02-28"),
    ("2023-02-28", "6 months", "2022-08-28"),
    ("2012-03-01", "1 month", "2012-02-01"),
    ("2013-01-31", "2 months", "2012-11-30"),
    ("2012-06-04", "1 week", "2012-05-28"),
    ("2012-06-06", "1 working day", "2012-06-01"),
])
def test_backward(start: str, text: str, earlier: str) -> None:
    assert apply_duration(D(start), parse_duration(text), CAL, sign=-1) == D(earlier)


def test_datetime_anchor_uses_its_local_date() -> None:
    late = datetime(2012, 5, 27, 23, 30, tzinfo=UTC)  # 00:30 BST on Monday 28 May
    result = apply_duration(late, parse_duration("20 working days"), CAL)
    assert result == D("2012-06-27") and type(result) is date
    assert apply_duration(late, parse_duration("3 months"), CAL) == D("2012-08-28")
    with pytest.raises(ValueError, match="naive"):
        apply_duration(datetime(2012, 5, 28, 9), parse_duration("1 day"), CAL)


def test_bad_sign_refused() -> None:
    with pytest.raises(ValueError):
        apply_duration(D("2012-05-28"), parse_duration("1 day"), CAL, sign=2)


# -- hours: elapsed time across clock changes -------------------------------------------------


def test_24_hours_across_the_march_change() -> None:
    start = datetime(2012, 3, 24, 12, tzinfo=LONDON)  # GMT
    result = apply_duration(start, parse_duration("24 hours"), CAL)
    assert isinstance(result, datetime)
    assert result == datetime(2012, 3, 25, 13, tzinfo=LONDON)
    assert (result.hour, result.utcoffset()) == (13, LONDON.utcoffset(datetime(2012, 3, 25, 13)))
    assert result.tzinfo == LONDON
    # Same-tzinfo subtraction in Python is wall-clock (25h here); elapsed time is 24h.
    assert result.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=24)


def test_24_hours_across_the_october_change() -> None:
    start = datetime(2012, 10, 27, 12, tzinfo=LONDON)  # BST
    result = apply_duration(start, parse_duration("24 hours"), CAL)
    assert isinstance(result, datetime)
    assert (result.date(), result.hour) == (D("2012-10-28"), 11)
    assert result.astimezone(UTC) == datetime(2012, 10, 28, 11, tzinfo=UTC)


def test_hours_backwards_and_from_utc_anchor() -> None:
    start = datetime(2012, 3, 25, 13, tzinfo=LONDON)
    back = apply_duration(start, parse_duration("24 hours"), CAL, sign=-1)
    assert isinstance(back, datetime)
    assert (back.date(), back.hour) == (D("2012-03-24"), 12)
    utc = apply_duration(datetime(2012, 6, 1, 9, tzinfo=UTC), parse_duration("1 hour"), CAL)
    assert isinstance(utc, datetime)
    assert (utc.hour, utc.tzinfo) == (11, LONDON)


def test_hours_from_a_date_start_at_local_midnight() -> None:
    result = apply_duration(D("2012-06-01"), parse_duration("24 hours"), CAL)
    assert result == datetime(2012, 6, 2, 0, tzinfo=LONDON)
    result = apply_duration(D("2012-03-25"), parse_duration("24 hours"), CAL)  # 23-hour day
    assert isinstance(result, datetime)
    assert (result.date(), result.hour) == (D("2012-03-26"), 1)


def test_hours_refuse_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        apply_duration(datetime(2012, 3, 24, 12), parse_duration("24 hours"), CAL)


# -- roll ----------------------------------------------------------------------------------


def test_roll_moves_non_working_results() -> None:
    two_weeks = parse_duration("2 weeks")
    start = D("2012-05-21")  # + 2 weeks = Monday 4 June, Spring bank holiday
    assert apply_duration(start, two_weeks, CAL) == D("2012-06-04")
    assert apply_duration(start, two_weeks, CAL, roll=Roll.BACKWARD) == D("2012-06-01")
    assert apply_duration(start, two_weeks, CAL, roll=Roll.FORWARD) == D("2012-06-06")


def test_roll_leaves_working_days_alone() -> None:
    assert apply_duration(D("2012-05-28"), parse_duration("4 days"), CAL,
                          roll=Roll.BACKWARD) == D("2012-06-01")
    assert apply_duration(D("2012-05-29"), parse_duration("3 months"), CAL,
                          roll=Roll.FORWARD) == D("2012-08-29")


def test_roll_on_months_with_weekend() -> None:
    assert apply_duration(D("2023-06-30"), parse_duration("3 months"), CAL,
                          roll=Roll.BACKWARD) == D("2023-09-29")  # 30 Sep 2023 is a Saturday
    assert apply_duration(D("2023-06-30"), parse_duration("3 months"), CAL,
                          roll=Roll.FORWARD) == D("2023-10-02")


def test_roll_never_applies_to_hours() -> None:
    friday_noon = datetime(2012, 6, 1, 12, tzinfo=LONDON)
    result = apply_duration(friday_noon, parse_duration("24 hours"), CAL, roll=Roll.FORWARD)
    assert result == datetime(2012, 6, 2, 12, tzinfo=LONDON)


def test_roll_values() -> None:
    assert Roll("backward") is Roll.BACKWARD and Roll("forward") is Roll.FORWARD
