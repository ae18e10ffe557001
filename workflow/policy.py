"""One policy for retrying and leasing, fed from the configuration.

Three things wait and try again: a timer whose firing failed (a definition bug, a database
hiccup), an outbox row whose delivery failed (a mail server down) and the daemon when its
database is unreachable. Each used to carry its own arithmetic; here one ``RetryPolicy`` shape
serves all three, so a reader finds every delay in one place and the configuration
(``intervals.*``) reaches each of them the same way. Leases (how long a claimed timer or outbox
row belongs to one worker) sit beside them: they bound how soon a dead worker's work comes back.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any


@dataclass(frozen=True)
class RetryPolicy:
    """``base * factor ** (attempts - 1)``, capped, with +/- ``jitter`` (a fraction) so that
    several workers do not retry in step; gives up once ``max_attempts`` were made (None:
    never)."""

    base: timedelta
    factor: float = 2.0
    cap: timedelta = timedelta(hours=6)
    jitter: float = 0.0
    max_attempts: int | None = None

    def delay(self, attempts: int, rng: Callable[[], float] = random.random) -> timedelta:
        """How long to wait after the ``attempts``-th failure (1 for the first)."""
        exponent = min(max(attempts - 1, 0), 30)
        seconds = min(self.base.total_seconds() * self.factor ** exponent,
                      self.cap.total_seconds())
        if self.jitter:
            seconds *= 1 - self.jitter + 2 * self.jitter * rng()
        return timedelta(seconds=seconds)

    def gives_up(self, attempts: int) -> bool:
        """True once ``attempts`` failures mean no further try."""
        return self.max_attempts is not None and attempts >= self.max_attempts


# A timer's firing that failed: 30 s, 60 s, 2 min, 4 min, then the timer is marked failed and
# the IRO admin team is told (a definition bug or bad data that retrying will not mend).
TIMER_RETRY = RetryPolicy(base=timedelta(seconds=30), max_attempts=5)
# A firing that lost a race with another writer (a conflict, a deadlock) is simply tried again
# a second later; it never counts towards giving up.
CONFLICT_RETRY = RetryPolicy(base=timedelta(seconds=1), factor=1.0)
# The daemon's database went away: 1 s, 2 s, 4 s ... at most a minute between probes.
DATABASE_RETRY = RetryPolicy(base=timedelta(seconds=1), cap=timedelta(seconds=60))
TIMER_LEASE = timedelta(seconds=30)


@dataclass(frozen=True)
class Policy:
    """Every retry and lease of one icsflow process."""

    timers: RetryPolicy = TIMER_RETRY
    conflicts: RetryPolicy = CONFLICT_RETRY
    outbox: RetryPolicy = field(default_factory=lambda: RetryPolicy(
        base=timedelta(seconds=60), jitter=0.2, max_attempts=8))
    database: RetryPolicy = DATABASE_RETRY
    timer_lease: timedelta = TIMER_LEASE  # renewed every third of it while a tick works
    outbox_lease: timedelta = timedelta(seconds=300)

    @classmethod
    def from_intervals(cls, intervals: Mapping[str, Any]) -> Policy:
        """From the configuration's ``intervals`` (``backoff_base_seconds``,
        ``outbox_max_attempts``, ``lease_seconds``, ``timer_lease_seconds``); missing keys
        keep their defaults."""
        default = cls()
        outbox = RetryPolicy(
            base=timedelta(seconds=float(intervals.get(
                "backoff_base_seconds", default.outbox.base.total_seconds()))),
            jitter=default.outbox.jitter,
            max_attempts=int(intervals.get("outbox_max_attempts",
                                           default.outbox.max_attempts or 8)))
        return cls(outbox=outbox,
                   timer_lease=timedelta(seconds=float(intervals.get(
                       "timer_lease_seconds", TIMER_LEASE.total_seconds()))),
                   outbox_lease=timedelta(seconds=float(intervals.get(
                       "lease_seconds", default.outbox_lease.total_seconds()))))


__all__ = ["CONFLICT_RETRY", "DATABASE_RETRY", "TIMER_LEASE", "TIMER_RETRY", "Policy",
           "RetryPolicy"]
