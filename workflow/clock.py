"""Time comes from an injected clock so deadlines can be tested and years replayed in seconds."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")


class Clock(Protocol):
    """Anything that can tell the current aware time."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real time, in UTC, ``offset`` ahead (``clock_offset_seconds``: a drill or a test
    sees a dead worker's leases run out without waiting for them)."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


class FakeClock:
    """A clock that only moves when told to: the way tests reach a deadline without sleeping."""

    def __init__(self, start: datetime) -> None:
        self._now = require_aware(start, "FakeClock start")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = require_aware(when, "FakeClock.set")

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now = self._now + delta


def require_aware(value: datetime, what: str) -> datetime:
    """Refuse naive datetimes: a deadline is only meaningful in a known timezone."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{what}: naive datetime {value.isoformat()} (give a timezone offset)")
    return value


__all__ = ["Clock", "SystemClock", "FakeClock", "LONDON", "require_aware"]
