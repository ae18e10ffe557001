"""The report's window: the period it covers, the day it is as at, and what was known when.

Why a separate value: every figure asks the same two questions of an event, "had it happened by
the end of the as-at day?" and "had it been recorded by the known-at moment?", and counts it in
the period by its own date. Keeping those answers here keeps the figures pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from icsflow.workflow.clock import LONDON


def financial_year(day: date) -> tuple[date, date]:
    """The English public-sector year (1 April to 31 March) containing ``day``."""
    start_year = day.year if day.month >= 4 else day.year - 1
    return date(start_year, 4, 1), date(start_year + 1, 3, 31)


def month_ends(first: date, last: date) -> list[date]:
    """The last day of every month from ``first``'s month whose last day is on or before
    ``last`` (a month not yet over by the as-at day has no month-end figure)."""
    ends: list[date] = []
    year, month = first.year, first.month
    while True:
        following = date(year + month // 12, month % 12 + 1, 1)
        end = following - timedelta(days=1)
        if end > last:
            return ends
        ends.append(end)
        year, month = following.year, following.month


@dataclass(frozen=True)
class Window:
    """``start``..``end`` is the period (inclusive dates); ``as_at`` the day the figures stand
    at; ``known_at``, when given, leaves out everything recorded after that moment."""

    start: date
    end: date
    as_at: date
    known_at: datetime | None = None
    tz: ZoneInfo = LONDON

    @classmethod
    def resolve(cls, *, start: date | None, end: date | None, as_at: date | None,
                known_at: datetime | None, today: date, tz: ZoneInfo = LONDON) -> Window:
        """Fill the defaults the CLI promises: as-at today, the financial year containing it."""
        as_at = as_at or today
        fy_start, fy_end = financial_year(as_at)
        start = start or (fy_start if end is None else financial_year(end)[0])
        end = end or financial_year(start)[1]
        if end < start:
            raise ValueError(f"the period ends ({end.isoformat()}) before it starts "
                             f"({start.isoformat()})")
        if known_at is not None and (known_at.tzinfo is None
                                     or known_at.tzinfo.utcoffset(known_at) is None):
            raise ValueError("--known-at needs a timezone (or is read as Europe/London)")
        return cls(start, end, as_at, known_at, tz)

    @property
    def cutoff(self) -> datetime:
        """The first instant after the as-at day: an event happened by as-at if before it."""
        return datetime.combine(self.as_at + timedelta(days=1), time(0), tzinfo=self.tz)

    @property
    def counted_to(self) -> date:
        """The last day whose events are counted: the period's end, or as-at if earlier."""
        return min(self.end, self.as_at)

    def in_period(self, day: date) -> bool:
        return self.start <= day <= self.counted_to

    def previous_year(self) -> tuple[date, date]:
        """The financial year before the one the period starts in."""
        fy_start, _ = financial_year(self.start)
        return financial_year(fy_start - timedelta(days=1))

    @property
    def earliest(self) -> date:
        """The first day any figure looks at (the previous year's Alerts, or as-at)."""
        return min(self.previous_year()[0], self.as_at)

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()


__all__ = ["Window", "financial_year", "month_ends"]
