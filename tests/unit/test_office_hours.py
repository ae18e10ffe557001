"""Office hours: open on working days 08:00-18:00 London time, across clock changes and holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.clock import LONDON
from icsflow.workflow.daemon.office_hours import OfficeHours

CAL = WorkingCalendar()
HOURS = OfficeHours(time(8, 0), time(18, 0), CAL)


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)  # type: ignore[misc]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_open_at_start_and_closed_at_end() -> None:
    assert HOURS.is_open(london(2012, 1, 6, 8, 0))
    assert HOURS.is_open(london(2012, 1, 6, 17, 59, 59))
    assert not HOURS.is_open(london(2012, 1, 6, 18, 0))
    assert not HOURS.is_open(london(2012, 1, 6, 7, 59))


def test_closed_at_weekends() -> None:
    assert not HOURS.is_open(london(2012, 1, 7, 12, 0))
    assert HOURS.next_open(london(2012, 1, 6, 18, 30)) == london(2012, 1, 9, 8, 0)


def test_open_returns_now_unchanged() -> None:
    now = london(2012, 1, 6, 12, 0)
    assert HOURS.next_open(now) == now


def test_later_the_same_morning_before_opening() -> None:
    assert HOURS.next_open(london(2012, 1, 6, 6, 15)) == london(2012, 1, 6, 8, 0)


def test_summer_time_opening_is_0700_utc() -> None:
    # British Summer Time began on Sunday 25 March 2012.
    assert not HOURS.is_open(utc(2012, 3, 26, 6, 59))
    assert HOURS.is_open(utc(2012, 3, 26, 7, 0))
    opened = HOURS.next_open(utc(2012, 3, 23, 18, 30))
    assert opened == utc(2012, 3, 26, 7, 0)
    assert opened.utcoffset() is not None and opened.utcoffset().total_seconds() == 3600


def test_winter_time_opening_is_0800_utc_after_october_change() -> None:
    # Clocks went back on Sunday 28 October 2012.
    assert HOURS.next_open(utc(2012, 10, 26, 17, 30)) == utc(2012, 10, 29, 8, 0)
    assert HOURS.is_open(utc(2012, 10, 26, 16, 59))  # 17:59 BST
    assert not HOURS.is_open(utc(2012, 10, 26, 17, 0))  # 18:00 BST


def test_the_diamond_jubilee_bank_holidays_are_closed() -> None:
    assert not HOURS.is_open(london(2012, 6, 4, 10, 0))
    assert not HOURS.is_open(london(2012, 6, 5, 10, 0))
    assert HOURS.next_open(london(2012, 6, 1, 18, 0)) == london(2012, 6, 6, 8, 0)


def test_christmas_2011_reopens_on_the_28th() -> None:
    # 25 Dec 2011 was a Sunday: substitute holidays on 26 and 27 December.
    assert HOURS.next_open(london(2011, 12, 23, 18, 0)) == london(2011, 12, 28, 8, 0)
    assert not HOURS.is_open(london(2011, 12, 27, 12, 0))


def test_local_closures_are_closed() -> None:
    hours = OfficeHours(time(8, 0), time(18, 0),
                        WorkingCalendar(closures={date(2012, 12, 24): "Council closure"}))
    assert not hours.is_open(london(2012, 12, 24, 9, 0))
    assert hours.next_open(london(2012, 12, 21, 19, 0)) == london(2012, 12, 27, 8, 0)


def test_an_extra_working_day_is_open() -> None:
    hours = OfficeHours(time(8, 0), time(18, 0),
                        WorkingCalendar(extra_working_days=[date(2012, 6, 5)]))
    assert hours.is_open(london(2012, 6, 5, 9, 0))


def test_next_close_is_the_end_of_the_opening() -> None:
    assert HOURS.next_close(london(2012, 1, 6, 12, 0)) == london(2012, 1, 6, 18, 0)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        HOURS.is_open(datetime(2012, 1, 6, 12, 0))


def test_end_must_follow_start() -> None:
    with pytest.raises(ValueError, match="not after start"):
        OfficeHours(time(18, 0), time(8, 0), CAL)
