"""What a duration means on the working calendar: deadlines from an anchor date or time.

Units and their meaning (DESIGN.md section 2):

* working days: counted on the :class:`WorkingCalendar` (anchor is day 0; sign -1 counts back);
* days and weeks: calendar days;
* months: calendar months, clipped to the month end (2023-11-30 + 3 months = 2024-02-29);
* hours: elapsed time. "24 hours" after a time is 24 real hours later, computed in UTC and shown
  in the calendar's timezone, so across a clock change the wall-clock hour moves
  (2012-03-24 12:00 GMT + 24 hours = 2012-03-25 13:00 BST).

Day-based units work on local dates: a datetime anchor is first turned into its date in the
calendar's timezone, and a date is returned. Hours return an aware datetime.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from icsflow.definitions.durations import Duration, DurationSyntaxError, Roll, Unit, parse_duration
from icsflow.workflow.calendar import WorkingCalendar


def apply_duration(anchor: date | datetime, duration: Duration, calendar: WorkingCalendar, *,
                   sign: int = 1, roll: Roll | None = None) -> date | datetime:
    """``anchor`` plus (sign 1) or minus (sign -1) ``duration``.

    ``roll`` moves a date result that is not a working day to the previous or next working day;
    it is never applied to hours, which are an exact elapsed time.
    """
    if sign not in (1, -1):
        raise ValueError(f"sign must be 1 or -1, not {sign!r}")
    if duration.unit is Unit.HOURS:
        return _add_hours(anchor, sign * duration.amount, calendar)
    day = calendar.local_date(anchor) if isinstance(anchor, datetime) else anchor
    result = _add_days_based(day, duration, sign, calendar)
    if roll is not None and not calendar.is_working_day(result):
        if roll is Roll.BACKWARD:
            result = calendar.previous_working_day(result)
        else:
            result = calendar.next_working_day(result)
    return result


def _add_days_based(day: date, duration: Duration, sign: int, calendar: WorkingCalendar) -> date:
    amount = sign * duration.amount
    if duration.unit is Unit.WORKING_DAYS:
        return calendar.add_working_days(day, amount)
    if duration.unit is Unit.DAYS:
        return day + timedelta(days=amount)
    if duration.unit is Unit.WEEKS:
        return day + timedelta(weeks=amount)
    return add_months(day, amount)


def add_months(day: date, months: int) -> date:
    """Calendar months, clipped to the month end: a review "within 3 months" of 30 November
    is due by 29 February, not 1 or 2 March."""
    index = day.year * 12 + day.month - 1 + months
    year, month0 = divmod(index, 12)
    if day.day <= 28:
        return date(year, month0 + 1, day.day)
    following = date(year + (month0 + 1) // 12, (month0 + 1) % 12 + 1, 1)
    last = (following - timedelta(days=1)).day
    return date(year, month0 + 1, min(day.day, last))


def _add_hours(anchor: date | datetime, hours: int, calendar: WorkingCalendar) -> datetime:
    """Elapsed hours: computed in UTC so a clock change neither adds nor loses an hour."""
    if isinstance(anchor, datetime):
        if anchor.tzinfo is None or anchor.tzinfo.utcoffset(anchor) is None:
            raise ValueError(f"naive datetime {anchor.isoformat()}: hours need a timezone offset")
        start = anchor
    else:
        start = datetime.combine(anchor, time(0), tzinfo=calendar.tz)
    return (start.astimezone(UTC) + timedelta(hours=hours)).astimezone(calendar.tz)


__all__ = ["Duration", "DurationSyntaxError", "Roll", "Unit", "add_months", "apply_duration",
           "parse_duration"]
