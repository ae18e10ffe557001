"""Working days in England and Wales: the one calendar every deadline in icsflow is counted on.

A working day is any day but Saturday, Sunday, a bank holiday of the configured country and
subdivision (from the ``holidays`` package) or a local closure day; a day declared in
``extra_working_days`` is working whatever else is true of it.

Counting convention (DESIGN.md section 2): "N working days after D" is the N-th working day after
D, D itself not counted; if D is not a working day its next working day is day 1.

Speed: every year is turned, on first use and under a lock, into a table of its working days (as
``date`` objects) and a prefix count indexed by day of year. ``add_working_days`` and
``working_days_between`` are then a few list look-ups: O(1) within a year, plus one step per
year boundary crossed. No day-by-day walking.

The hot path goes one step further: flat lists indexed by ``ordinal - 1990-01-01`` give, for
each day, the position of its working-day neighbours in one list of working days (``_slots``).
Each year owns a block of ``_STRIDE`` slots, its working days first and ``None`` after, and
``_PAD`` slots of ``None`` come first; unbuilt days point at slot 0. So for |n| < ``_FAST`` one
index either lands on the answer or on ``None`` (other year, or year not built yet), which sends
the call to the per-year path. Nothing needs every earlier year built.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays

FIRST_DAY = date(1990, 1, 1)
LAST_DAY = date(2100, 12, 31)
_FIRST_YEAR = FIRST_DAY.year
_LAST_YEAR = LAST_DAY.year
_FIRST_ORD = FIRST_DAY.toordinal()
_LAST_ORD = LAST_DAY.toordinal()

_SPAN = _LAST_ORD - _FIRST_ORD + 1
_FAST = 400  # |n| below this may take the flat fast path
_BACK = -_FAST
_PAD = _FAST  # leading None slots: unbuilt days (index 0) + n < _FAST stay inside them
_STRIDE = 366 + _FAST  # slots per year: at most 366 working days, then >= _FAST gap of None

LOCAL_CLOSURE = "local closure"
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


def long_date(d: date) -> str:
    """'Monday 28 May 2012': how a manager writes a date (independent of the process locale)."""
    return f"{_WEEKDAYS[d.weekday()]} {d.day} {_MONTHS[d.month - 1]} {d.year}"


class OutsideCalendar(ValueError):  # noqa: N818 - a ValueError, as callers have caught it
    """A date outside the range the working-day calendar counts (``FIRST_DAY``..``LAST_DAY``)."""


def _out_of_range(d: date) -> ValueError:
    return OutsideCalendar(f"date {d.isoformat()} is outside the working-day calendar "
                      f"({FIRST_DAY.isoformat()}..{LAST_DAY.isoformat()})")


class _Year:
    """One year, precomputed: the tables that make add/between a handful of index operations."""

    __slots__ = ("start", "days", "before", "total", "reasons")

    def __init__(self, start: int, days: list[date], before: list[int],
                 reasons: dict[date, str]) -> None:
        self.start = start  # ordinal of 1 January
        self.days = days  # the working days of the year, ascending
        self.before = before  # before[i]: working days in [1 Jan, 1 Jan + i); len = days + 1
        self.total = len(days)
        self.reasons = reasons  # non-working weekdays (holidays, closures) -> name


@dataclass(frozen=True, slots=True)
class SkippedDay:
    """A non-working day passed over while counting, and why it is not working."""

    day: date
    reason: str


@dataclass(frozen=True, slots=True)
class Explanation:
    """How a working-day deadline was reached, for people who must trust the date."""

    start: date
    n: int
    result: date
    skipped: tuple[SkippedDay, ...]

    def __str__(self) -> str:
        count = abs(self.n)
        unit = "working day" if count == 1 else "working days"
        direction = "before" if self.n < 0 else "after"
        lines = [f"{count} {unit} {direction} {long_date(self.start)} is "
                 f"{long_date(self.result)}"]
        if self.skipped:
            lines.append(f"non-working days passed over ({len(self.skipped)}):")
        for s in self.skipped:
            why = "weekend" if s.reason in ("Saturday", "Sunday") else s.reason
            lines.append(f"  {long_date(s.day)}: {why}")
        return "\n".join(lines)


class WorkingCalendar:
    """Which days are working days, and counting in them; immutable and safe to share by threads.

    ``closures`` are local closure days (a mapping gives each its name, an iterable names them
    "local closure"); ``extra_working_days`` are declared working and override everything.
    Valid for dates 1990-01-01..2100-12-31; anything outside raises ValueError naming the date.
    """

    __slots__ = ("_closures", "_extra", "_country", "_subdiv", "_tz", "_years", "_lock",
                 "_slots", "_after", "_before")

    def __init__(self, closures: Mapping[date, str] | Iterable[date] = (),
                 extra_working_days: Iterable[date] = (), *, country: str = "GB",
                 subdiv: str = "ENG", timezone: str = "Europe/London") -> None:
        if isinstance(closures, Mapping):
            named = {_as_date(d): str(name) for d, name in closures.items()}
        else:
            named = {_as_date(d): LOCAL_CLOSURE for d in closures}
        self._closures: Mapping[date, str] = named
        self._extra: frozenset[date] = frozenset(_as_date(d) for d in extra_working_days)
        self._country = country
        self._subdiv = subdiv
        # Fail now, not on first use, on an unknown country/subdivision or timezone.
        holidays.country_holidays(country, subdiv=subdiv, years=[])
        self._tz = ZoneInfo(timezone)
        self._years: list[_Year | None] = [None] * (_LAST_YEAR - _FIRST_YEAR + 1)
        self._lock = threading.Lock()
        years = _LAST_YEAR - _FIRST_YEAR + 1
        self._slots: list[date | None] = [None] * (_PAD + years * _STRIDE)
        self._after: list[int] = [0] * _SPAN  # slot of the last working day <= the day
        self._before: list[int] = [0] * _SPAN  # slot of the first working day >= the day

    def __repr__(self) -> str:
        return (f"WorkingCalendar(country={self._country!r}, subdiv={self._subdiv!r}, "
                f"closures={len(self._closures)}, extra_working_days={len(self._extra)}, "
                f"timezone={self._tz.key!r})")

    # -- configuration, read-only ------------------------------------------------------------

    @property
    def tz(self) -> ZoneInfo:
        """The timezone in which a deadline date is met (any time on that local date)."""
        return self._tz

    @property
    def closures(self) -> Mapping[date, str]:
        """Local closure days and their names (a copy: the calendar cannot be changed)."""
        return dict(self._closures)

    @property
    def extra_working_days(self) -> frozenset[date]:
        """Days declared working whatever else is true of them."""
        return self._extra

    # -- tables ------------------------------------------------------------------------------

    def _year(self, year: int) -> _Year:
        table = self._years[year - _FIRST_YEAR]
        if table is None:
            table = self._build(year)
        return table

    def _build(self, year: int) -> _Year:
        with self._lock:
            table = self._years[year - _FIRST_YEAR]
            if table is None:
                table = self._compute(year)
                self._years[year - _FIRST_YEAR] = table
                self._publish(year, table)
            return table

    def _publish(self, year: int, table: _Year) -> None:
        """Fill the flat fast-path lists for one year: slots first, so readers never see an
        index whose slot is not yet filled."""
        base = _PAD + (year - _FIRST_YEAR) * _STRIDE
        self._slots[base:base + table.total] = table.days
        offset = table.start - _FIRST_ORD
        before = table.before
        for i in range(len(before) - 1):
            self._before[offset + i] = base + before[i]
            self._after[offset + i] = base + before[i + 1] - 1

    def _compute(self, year: int) -> _Year:
        """Build one year's tables: the only place that looks at each day of the year."""
        reasons: dict[date, str] = {}
        public = holidays.country_holidays(self._country, subdiv=self._subdiv, years=year)
        for day, name in public.items():
            if day.year == year and day.weekday() < 5:
                reasons[day] = str(name)
        for day, name in self._closures.items():
            if day.year == year and day.weekday() < 5 and day not in reasons:
                reasons[day] = name
        for day in self._extra:
            reasons.pop(day, None)
        first = date(year, 1, 1)
        length = date(year + 1, 1, 1).toordinal() - first.toordinal()
        days: list[date] = []
        before = [0] * (length + 1)
        one = timedelta(days=1)
        day = first
        for i in range(length):
            if day in self._extra or (day.weekday() < 5 and day not in reasons):
                days.append(day)
            before[i + 1] = len(days)
            day += one
        return _Year(first.toordinal(), days, before, reasons)

    # -- queries -----------------------------------------------------------------------------

    def is_working_day(self, d: date) -> bool:
        """True if work is done on ``d`` (so a deadline can fall on it)."""
        o = d.toordinal()
        if o < _FIRST_ORD or o > _LAST_ORD:
            raise _out_of_range(d)
        t = self._year(d.year)
        i = o - t.start
        return t.before[i + 1] != t.before[i]

    def reason(self, d: date) -> str | None:
        """Why ``d`` is not a working day ("Saturday", a holiday's or closure's name), else None."""
        if self.is_working_day(d):
            return None
        wd = d.weekday()
        if wd >= 5:
            return _WEEKDAYS[wd]
        return self._year(d.year).reasons[d]

    def holidays_in(self, year: int) -> list[tuple[date, str]]:
        """The non-working weekdays of ``year`` with their names (bank holidays and closures)."""
        if not _FIRST_YEAR <= year <= _LAST_YEAR:
            raise ValueError(f"year {year} is outside the working-day calendar "
                             f"({_FIRST_YEAR}..{_LAST_YEAR})")
        return sorted(self._year(year).reasons.items())

    def local_date(self, dt: datetime) -> date:
        """The date of ``dt`` in the calendar's timezone; naive datetimes are refused."""
        if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
            raise ValueError(f"naive datetime {dt.isoformat()}: give a timezone offset")
        return dt.astimezone(self._tz).date()

    # -- counting ----------------------------------------------------------------------------

    def add_working_days(self, d: date, n: int) -> date:
        """The n-th working day after ``d`` (before it when n < 0); ``d`` is day 0, not counted.

        If ``d`` is not a working day its next (previous, for n < 0) working day is day 1.
        n == 0 returns ``d`` unchanged, working day or not.
        """
        o = d.toordinal() - _FIRST_ORD
        if o >= 0:
            try:  # an o past 2100 raises IndexError: no second range test on the hot path
                if 0 < n < _FAST:
                    found = self._slots[self._after[o] + n]
                elif _BACK < n < 0:
                    found = self._slots[self._before[o] + n]
                else:
                    found = None
            except IndexError:
                found = None
            if found is not None:
                return found
        return self._add_by_year(d, n)

    def _add_by_year(self, d: date, n: int) -> date:
        """``add_working_days`` on the per-year tables: any n, builds years as needed."""
        o = d.toordinal()
        if o < _FIRST_ORD or o > _LAST_ORD:
            raise _out_of_range(d)
        year = d.year
        t = self._years[year - _FIRST_YEAR]
        if t is None:
            t = self._build(year)
        if n > 0:
            i = t.before[o - t.start + 1] + n - 1
        elif n < 0:
            i = t.before[o - t.start] + n
        else:
            return d
        if 0 <= i < t.total:
            return t.days[i]
        return self._index_across_years(year, i, d, n)

    def _index_across_years(self, year: int, i: int, d: date, n: int) -> date:
        """Resolve a working-day index that falls before or after ``year``'s own working days."""
        while i < 0:
            year -= 1
            if year < _FIRST_YEAR:
                raise OutsideCalendar(f"{-n} working days before {d.isoformat()} is before "
                                 f"{FIRST_DAY.isoformat()}, the start of the working-day calendar")
            i += self._year(year).total
        while i >= self._year(year).total:
            i -= self._year(year).total
            year += 1
            if year > _LAST_YEAR:
                raise OutsideCalendar(f"{n} working days after {d.isoformat()} is after "
                                 f"{LAST_DAY.isoformat()}, the end of the working-day calendar")
        return self._year(year).days[i]

    def working_days_between(self, a: date, b: date) -> int:
        """Working days from ``a`` to ``b``, excluding ``a`` and including ``b``.

        For a <= b: the number of working days in (a, b]. For b < a: minus the number in [b, a).
        Excluding the start and including the end in both directions makes this the exact
        inverse of counting: ``working_days_between(d, add_working_days(d, n)) == n`` for every
        d and n, positive or negative.
        """
        oa = a.toordinal() - _FIRST_ORD
        ob = b.toordinal() - _FIRST_ORD
        if 0 <= oa < _SPAN and 0 <= ob < _SPAN and a.year == b.year:
            if oa <= ob:
                ia = self._after[oa]
                if ia:
                    return self._after[ob] - ia
            else:
                ib = self._before[ob]
                if ib:
                    return ib - self._before[oa]
        return self._between_by_year(a, b)

    def _between_by_year(self, a: date, b: date) -> int:
        """``working_days_between`` on the per-year tables, across any number of years."""
        oa = a.toordinal()
        ob = b.toordinal()
        if oa < _FIRST_ORD or oa > _LAST_ORD:
            raise _out_of_range(a)
        if ob < _FIRST_ORD or ob > _LAST_ORD:
            raise _out_of_range(b)
        ya = a.year
        yb = b.year
        ta = self._years[ya - _FIRST_YEAR]
        if ta is None:
            ta = self._build(ya)
        tb = ta if yb == ya else self._years[yb - _FIRST_YEAR]
        if tb is None:
            tb = self._build(yb)
        # Shift by one day when counting forward: (a, b] = [a + 1, b + 1).
        shift = 1 if oa <= ob else 0
        count = tb.before[ob - tb.start + shift] - ta.before[oa - ta.start + shift]
        if ya < yb:
            count += sum(self._year(y).total for y in range(ya, yb))
        elif yb < ya:
            count -= sum(self._year(y).total for y in range(yb, ya))
        return count

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after ``d``."""
        return self.add_working_days(d, 1)

    def previous_working_day(self, d: date) -> date:
        """The last working day strictly before ``d``."""
        return self.add_working_days(d, -1)

    def explain(self, d: date, n: int) -> Explanation:
        """The deadline ``add_working_days(d, n)`` and every non-working day passed over on the way.

        Walks the days between start and result (exclusive): meant for people, not hot paths.
        """
        result = self.add_working_days(d, n)
        lo, hi = (d, result) if d <= result else (result, d)
        skipped: list[SkippedDay] = []
        day = lo + timedelta(days=1)
        while day < hi:
            why = self.reason(day)
            if why is not None:
                skipped.append(SkippedDay(day, why))
            day += timedelta(days=1)
        return Explanation(start=d, n=n, result=result, skipped=tuple(skipped))


def _as_date(value: date) -> date:
    """Closures and extra days are whole dates; a datetime would silently never match."""
    if isinstance(value, datetime):
        raise TypeError(f"expected a date, got the datetime {value.isoformat()}")
    if not isinstance(value, date):
        raise TypeError(f"expected a date, got {value!r}")
    return value


__all__ = ["WorkingCalendar", "Explanation", "SkippedDay", "FIRST_DAY", "LAST_DAY", "long_date",
           "OutsideCalendar"]
