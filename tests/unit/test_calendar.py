"""WorkingCalendar: the counting convention, England and Wales bank holidays, and its laws."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icsflow.workflow.calendar import Explanation, SkippedDay, WorkingCalendar

CAL = WorkingCalendar()
D = date.fromisoformat

# (event date, N, deadline) from domain-notes.md
DOMAIN_EXAMPLES = [
    ("2012-05-28", 20, "2012-06-27"),
    ("2011-04-15", 20, "2011-05-19"),
    ("2022-09-05", 20, "2022-10-04"),
    ("2023-12-23", 20, "2024-01-24"),
]

ONE_OFF_AND_MOVED = [
    "2011-04-29",  # royal wedding
    "2012-06-04",  # Spring bank holiday moved
    "2012-06-05",  # Diamond Jubilee
    "2020-05-08",  # Early May moved for VE Day
    "2022-06-02",  # Spring bank holiday moved
    "2022-06-03",  # Platinum Jubilee
    "2022-09-19",  # state funeral
    "2023-05-08",  # Coronation
]
SUBSTITUTES = ["2011-12-27", "2021-12-27", "2021-12-28", "2022-01-03", "2020-12-28",
               "2022-12-27", "2023-01-02", "2011-01-03", "2012-01-02"]
FIXED = ["2012-04-06", "2012-04-09", "2012-12-25", "2012-12-26", "2023-12-25", "2023-12-26",
         "2023-08-28", "2011-08-29", "2020-05-25"]
LOOK_LIKE_HOLIDAYS = ["2012-05-28", "2020-05-04", "2022-05-30"]

dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))
# Keep add results inside the calendar: ±300 working days is well under two years.
inner_dates = st.dates(min_value=date(1991, 6, 1), max_value=date(2099, 6, 1))
counts = st.integers(min_value=-300, max_value=300)


def naive_add(cal: WorkingCalendar, d: date, n: int) -> date:
    """The definition, walked day by day: the reference the fast tables must agree with."""
    step = timedelta(days=1 if n >= 0 else -1)
    left = abs(n)
    while left:
        d += step
        if cal.is_working_day(d):
            left -= 1
    return d


def naive_between(cal: WorkingCalendar, a: date, b: date) -> int:
    """Working days in (a, b], or minus those in [b, a), counted one day at a time."""
    if a <= b:
        return sum(cal.is_working_day(a + timedelta(days=i)) for i in range(1, (b - a).days + 1))
    return -sum(cal.is_working_day(b + timedelta(days=i)) for i in range((a - b).days))


def naive_is_working(d: date) -> bool:
    """Independent of the tables: weekday and not a listed bank holiday."""
    import holidays

    return d.weekday() < 5 and d not in holidays.country_holidays("GB", subdiv="ENG", years=d.year)


# -- the domain examples ---------------------------------------------------------------------


@pytest.mark.parametrize(("start", "n", "deadline"), DOMAIN_EXAMPLES)
def test_domain_examples(start: str, n: int, deadline: str) -> None:
    assert CAL.add_working_days(D(start), n) == D(deadline)
    assert CAL.working_days_between(D(start), D(deadline)) == n


@pytest.mark.parametrize(("start", "n", "deadline"), DOMAIN_EXAMPLES)
def test_domain_examples_backwards(start: str, n: int, deadline: str) -> None:
    back = CAL.add_working_days(D(deadline), -n)
    assert CAL.working_days_between(D(deadline), back) == -n
    if CAL.is_working_day(D(start)):
        assert back == D(start)


def test_domain_examples_skip_the_listed_days() -> None:
    skipped = {s.day for s in CAL.explain(D("2011-04-15"), 20).skipped}
    assert {D("2011-04-22"), D("2011-04-25"), D("2011-04-29"), D("2011-05-02")} <= skipped
    skipped = {s.day for s in CAL.explain(D("2023-12-23"), 20).skipped}
    assert {D("2023-12-25"), D("2023-12-26"), D("2024-01-01")} <= skipped
    assert D("2023-12-23") not in skipped  # the start is day 0, not passed over


@pytest.mark.parametrize("day", ONE_OFF_AND_MOVED + SUBSTITUTES + FIXED)
def test_bank_holidays_are_not_working(day: str) -> None:
    assert not CAL.is_working_day(D(day))
    assert CAL.reason(D(day))


@pytest.mark.parametrize("day", LOOK_LIKE_HOLIDAYS)
def test_ordinary_days_that_look_like_holidays_are_working(day: str) -> None:
    assert CAL.is_working_day(D(day))
    assert CAL.reason(D(day)) is None


def test_reasons() -> None:
    assert CAL.reason(D("2012-06-02")) == "Saturday"
    assert CAL.reason(D("2012-06-03")) == "Sunday"
    assert CAL.reason(D("2012-06-04")) == "Spring Bank Holiday"
    assert "Diamond Jubilee" in (CAL.reason(D("2012-06-05")) or "")
    assert CAL.reason(D("2021-12-25")) == "Saturday"  # weekend first, substitute is the 27th


def test_holidays_in_lists_weekdays_only_with_names() -> None:
    listed = dict(CAL.holidays_in(2022))
    assert D("2022-06-02") in listed and D("2022-06-03") in listed
    assert D("2022-09-19") in listed and D("2022-01-03") in listed
    assert D("2022-12-25") not in listed  # a Sunday: already not working
    assert all(d.weekday() < 5 and d.year == 2022 for d in listed)
    assert len(listed) == 10
    assert list(listed) == sorted(listed)


# -- weekend / holiday events, n = 0, negative n --------------------------------------------


def test_event_on_weekend_counts_next_working_day_as_day_1() -> None:
    assert CAL.add_working_days(D("2012-06-02"), 1) == D("2012-06-06")  # Sat; Mon/Tue holidays
    assert CAL.add_working_days(D("2023-12-23"), 1) == D("2023-12-27")


def test_event_on_holiday() -> None:
    assert CAL.add_working_days(D("2012-06-04"), 1) == D("2012-06-06")
    assert CAL.add_working_days(D("2012-06-04"), -1) == D("2012-06-01")


def test_zero_returns_the_day_unchanged_even_when_not_working() -> None:
    assert CAL.add_working_days(D("2012-06-02"), 0) == D("2012-06-02")
    assert CAL.add_working_days(D("2012-05-28"), 0) == D("2012-05-28")


def test_negative_n() -> None:
    assert CAL.add_working_days(D("2012-06-27"), -20) == D("2012-05-28")
    assert CAL.add_working_days(D("2012-06-06"), -1) == D("2012-06-01")
    assert CAL.add_working_days(D("2024-01-02"), -1) == D("2023-12-29")  # across a year
    assert CAL.working_days_between(D("2012-06-06"), D("2012-06-01")) == -1


def test_next_and_previous() -> None:
    assert CAL.next_working_day(D("2012-06-01")) == D("2012-06-06")
    assert CAL.previous_working_day(D("2012-06-06")) == D("2012-06-01")
    assert CAL.next_working_day(D("2012-05-28")) == D("2012-05-29")  # strictly after


def test_between_excludes_start_includes_end() -> None:
    assert CAL.working_days_between(D("2012-05-28"), D("2012-05-28")) == 0
    assert CAL.working_days_between(D("2012-05-28"), D("2012-05-29")) == 1
    assert CAL.working_days_between(D("2012-06-01"), D("2012-06-05")) == 0
    assert CAL.working_days_between(D("2012-06-05"), D("2012-06-01")) == -1  # [06-01, 06-05)


def test_long_spans_across_many_years() -> None:
    d = D("1990-01-01")
    far = CAL.add_working_days(d, 20000)
    assert CAL.working_days_between(d, far) == 20000
    # far is working and 1990-01-01 is not: [1990-01-02, far) holds 19999 working days.
    assert CAL.add_working_days(far, -19999) == D("1990-01-02")
    assert CAL.working_days_between(far, D("1990-01-02")) == -19999


# -- local closures and extra working days -------------------------------------------------


def test_local_closures_with_and_without_names() -> None:
    named = WorkingCalendar({D("2012-12-27"): "Christmas closure"})
    assert not named.is_working_day(D("2012-12-27"))
    assert named.reason(D("2012-12-27")) == "Christmas closure"
    assert (D("2012-12-27"), "Christmas closure") in named.holidays_in(2012)
    plain = WorkingCalendar([D("2012-12-27"), D("2012-12-28")])
    assert plain.reason(D("2012-12-28")) == "local closure"
    assert plain.add_working_days(D("2012-12-24"), 1) == D("2012-12-31")
    assert CAL.add_working_days(D("2012-12-24"), 1) == D("2012-12-27")


def test_extra_working_days_override_everything() -> None:
    cal = WorkingCalendar({D("2012-06-06"): "closed"},
                          extra_working_days=[D("2012-06-02"), D("2012-06-05"), D("2012-06-06")])
    assert cal.is_working_day(D("2012-06-02"))  # a Saturday
    assert cal.is_working_day(D("2012-06-05"))  # a bank holiday
    assert cal.is_working_day(D("2012-06-06"))  # also closed: declared working wins
    assert cal.reason(D("2012-06-05")) is None
    assert cal.add_working_days(D("2012-06-01"), 1) == D("2012-06-02")
    assert D("2012-06-05") not in dict(cal.holidays_in(2012))


def test_closures_refuse_datetimes() -> None:
    with pytest.raises(TypeError):
        WorkingCalendar([datetime(2012, 12, 27, 9)])


# -- explain -------------------------------------------------------------------------------


def test_explain_names_spring_bank_holiday_and_jubilee() -> None:
    e = CAL.explain(D("2012-05-28"), 20)
    assert isinstance(e, Explanation)
    assert (e.start, e.n, e.result) == (D("2012-05-28"), 20, D("2012-06-27"))
    assert SkippedDay(D("2012-06-04"), "Spring Bank Holiday") in e.skipped
    text = str(e)
    assert text.splitlines()[0] == (
        "20 working days after Monday 28 May 2012 is Wednesday 27 June 2012")
    assert "Spring Bank Holiday" in text and "Diamond Jubilee" in text
    assert all(not CAL.is_working_day(s.day) for s in e.skipped)
    walked = [D("2012-05-28") + timedelta(days=i) for i in range(1, 30)]
    assert [s.day for s in e.skipped] == [d for d in walked if not CAL.is_working_day(d)]


def test_explain_backwards_and_singular() -> None:
    e = CAL.explain(D("2012-06-06"), -1)
    assert e.result == D("2012-06-01")
    assert [s.day for s in e.skipped] == [D("2012-06-02"), D("2012-06-03"), D("2012-06-04"),
                                          D("2012-06-05")]
    assert str(e).startswith("1 working day before Wednesday 6 June 2012 is Friday 1 June 2012")


# -- range, timezone -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [date(1989, 12, 31), date(2101, 1, 1)])
def test_dates_outside_the_range_are_refused_by_name(bad: date) -> None:
    for call in (lambda: CAL.is_working_day(bad), lambda: CAL.add_working_days(bad, 1),
                 lambda: CAL.working_days_between(D("2000-01-01"), bad),
                 lambda: CAL.working_days_between(bad, D("2000-01-01"))):
        with pytest.raises(ValueError, match=bad.isoformat()):
            call()


def test_counting_past_the_range_is_refused() -> None:
    with pytest.raises(ValueError, match="2100-12-31"):
        CAL.add_working_days(D("2100-12-20"), 30)
    with pytest.raises(ValueError, match="1990-01-01"):
        CAL.add_working_days(D("1990-01-10"), -30)
    with pytest.raises(ValueError):
        CAL.holidays_in(1989)


def test_range_edges_work() -> None:
    assert CAL.is_working_day(D("1990-01-02"))
    assert CAL.add_working_days(D("1990-01-01"), 1) == D("1990-01-02")
    assert CAL.working_days_between(D("1990-01-01"), D("2100-12-31")) > 28000


def test_local_date_and_tz() -> None:
    assert CAL.tz == ZoneInfo("Europe/London")
    late_utc = datetime(2012, 6, 26, 23, 30, tzinfo=UTC)  # 00:30 BST on the 27th
    assert CAL.local_date(late_utc) == D("2012-06-27")
    assert CAL.local_date(datetime(2012, 1, 26, 23, 30, tzinfo=UTC)) == D("2012-01-26")
    with pytest.raises(ValueError, match="naive"):
        CAL.local_date(datetime(2012, 6, 27, 12))


def test_is_immutable_and_thread_safe() -> None:
    cal = WorkingCalendar([D("2030-12-27")])
    with pytest.raises(AttributeError):
        cal.foo = 1  # type: ignore[attr-defined]
    cal.closures[D("2030-12-30")] = "sneaky"  # type: ignore[index]
    results: list[date] = []

    def work() -> None:
        results.append(cal.add_working_days(D("2030-12-20"), 5))

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [D("2031-01-02")] * 16


def test_unknown_country_or_timezone_fails_at_construction() -> None:
    with pytest.raises(Exception):  # noqa: B017 - holidays' own error type
        WorkingCalendar(country="XX")
    with pytest.raises(Exception):  # noqa: B017 - zoneinfo's own error type
        WorkingCalendar(timezone="Mars/Olympus")


# -- properties ----------------------------------------------------------------------------


@settings(max_examples=400)
@given(inner_dates, counts)
def test_between_inverts_add(d: date, n: int) -> None:
    assert CAL.working_days_between(d, CAL.add_working_days(d, n)) == n


@settings(max_examples=300)
@given(inner_dates, counts.filter(lambda n: n != 0))
def test_nonzero_add_lands_on_a_working_day(d: date, n: int) -> None:
    r = CAL.add_working_days(d, n)
    assert CAL.is_working_day(r)
    assert (r > d) if n > 0 else (r < d)


@settings(max_examples=300)
@given(inner_dates, counts, counts)
def test_add_is_monotonic_in_n(d: date, m: int, n: int) -> None:
    if m > n:
        m, n = n, m
    assert CAL.add_working_days(d, m) <= CAL.add_working_days(d, n)
    if m < n and (m != 0 or CAL.is_working_day(d)) and n != 0:
        assert CAL.add_working_days(d, m) < CAL.add_working_days(d, n)


@settings(max_examples=200)
@given(inner_dates, counts)
def test_add_agrees_with_naive_walk(d: date, n: int) -> None:
    assert CAL.add_working_days(d, n) == naive_add(CAL, d, n)


@settings(max_examples=200)
@given(dates, st.integers(min_value=-400, max_value=400))
def test_between_agrees_with_naive_walk(a: date, span: int) -> None:
    b = min(max(a + timedelta(days=span), date(1990, 1, 1)), date(2100, 12, 31))
    assert CAL.working_days_between(a, b) == naive_between(CAL, a, b)


@settings(max_examples=200)
@given(dates)
def test_is_working_day_agrees_with_holidays_package(d: date) -> None:
    assert CAL.is_working_day(d) == naive_is_working(d)


@settings(max_examples=100)
@given(inner_dates, counts, st.sets(st.dates(min_value=date(1991, 1, 1),
                                               max_value=date(2099, 12, 31)), max_size=20))
def test_properties_hold_with_closures(d: date, n: int, closed: set[date]) -> None:
    cal = WorkingCalendar(closed)
    r = cal.add_working_days(d, n)
    assert r == naive_add(cal, d, n)
    assert cal.working_days_between(d, r) == n
