"""The report's window: financial years, month ends, and the defaults the CLI promises."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from icsflow.workflow.reports.period import Window, financial_year, month_ends


def test_the_financial_year_runs_from_1_april_to_31_march() -> None:
    assert financial_year(date(2012, 3, 31)) == (date(2011, 4, 1), date(2012, 3, 31))
    assert financial_year(date(2012, 4, 1)) == (date(2012, 4, 1), date(2013, 3, 31))


def test_month_ends_stop_at_the_last_month_already_over() -> None:
    assert month_ends(date(2011, 9, 1), date(2012, 1, 30)) == [
        date(2011, 9, 30), date(2011, 10, 31), date(2011, 11, 30), date(2011, 12, 31)]
    assert month_ends(date(2012, 2, 1), date(2012, 2, 29)) == [date(2012, 2, 29)]


def test_the_period_defaults_to_the_financial_year_of_the_as_at_day() -> None:
    w = Window.resolve(start=None, end=None, as_at=date(2011, 12, 31), known_at=None,
                       today=date(2026, 1, 1))
    assert (w.start, w.end, w.counted_to) == (date(2011, 4, 1), date(2012, 3, 31),
                                             date(2011, 12, 31))


def test_as_at_defaults_to_today_and_a_quarter_is_from_and_to() -> None:
    w = Window.resolve(start=date(2011, 10, 1), end=date(2011, 12, 31), as_at=None,
                       known_at=None, today=date(2012, 5, 2))
    assert (w.as_at, w.counted_to) == (date(2012, 5, 2), date(2011, 12, 31))
    assert w.previous_year() == (date(2010, 4, 1), date(2011, 3, 31))


def test_the_as_at_day_ends_at_london_midnight() -> None:
    w = Window.resolve(start=None, end=None, as_at=date(2011, 7, 31), known_at=None,
                       today=date(2011, 7, 31))
    assert w.cutoff == datetime(2011, 7, 31, 23, 0, tzinfo=UTC)  # BST


def test_a_period_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="ends"):
        Window.resolve(start=date(2012, 1, 1), end=date(2011, 1, 1), as_at=None,
                       known_at=None, today=date(2012, 1, 1))
