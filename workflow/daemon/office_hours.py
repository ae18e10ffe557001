"""Office hours: when a non-urgent email may be delivered.

Staff should not be woken at 02:00 or on a bank holiday by a reminder that can wait, so the
dispatcher holds non-urgent messages until the office opens. Deadlines are unaffected: they are
counted on the working-day calendar the same way whether or not the office is open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.clock import require_aware


@dataclass(frozen=True)
class OfficeHours:
    """Open in local time [start, end) on the calendar's working days."""

    start: time
    end: time
    calendar: WorkingCalendar
    timezone: ZoneInfo | None = None

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"office hours end {self.end:%H:%M} is not after start "
                             f"{self.start:%H:%M}")

    @property
    def tz(self) -> ZoneInfo:
        """Local time of the office (the calendar's timezone unless given)."""
        return self.timezone or self.calendar.tz

    def is_open(self, now: datetime) -> bool:
        """True on a working day between start (inclusive) and end (exclusive), local time."""
        local = require_aware(now, "OfficeHours.is_open").astimezone(self.tz)
        if not self.calendar.is_working_day(local.date()):
            return False
        return self.start <= local.time().replace(tzinfo=None) < self.end

    def next_open(self, now: datetime) -> datetime:
        """``now`` if open, else the next opening moment (aware, in the office's timezone)."""
        local = require_aware(now, "OfficeHours.next_open").astimezone(self.tz)
        if self.is_open(local):
            return local
        day = local.date()
        if not (self.calendar.is_working_day(day) and local.time() < self.start):
            day = self.calendar.next_working_day(day)
        return self._at(day, self.start)

    def next_close(self, now: datetime) -> datetime:
        """When the current opening ends (or the next one, if closed now)."""
        opened = self.next_open(now)
        return self._at(opened.date(), self.end)

    def _at(self, day: date, when: time) -> datetime:
        # Round-trip through UTC so a wall time in a DST gap becomes a real instant.
        naive = datetime.combine(day, when)
        aware = naive.replace(tzinfo=self.tz)
        return aware.astimezone(ZoneInfo("UTC")).astimezone(self.tz)


__all__ = ["OfficeHours"]
