"""Durations as written in definitions ("10 working days", "3 months"): syntax only.

Pure: imports nothing of icsflow, so the definition loader can validate a file without the
engine. What a duration means on a calendar is ``workflow.durations``' business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Unit(StrEnum):
    """The units a definition may count in; the value is the canonical plural spelling."""

    WORKING_DAYS = "working days"
    DAYS = "days"
    WEEKS = "weeks"
    MONTHS = "months"
    HOURS = "hours"


_SINGULAR = {
    Unit.WORKING_DAYS: "working day",
    Unit.DAYS: "day",
    Unit.WEEKS: "week",
    Unit.MONTHS: "month",
    Unit.HOURS: "hour",
}

ACCEPTED_FORMS = ('"N working day(s)", "N day(s)", "N week(s)", "N month(s)" or "N hour(s)", '
                  "N a whole number 0 or more (e.g. \"10 working days\", \"3 months\")")


class DurationSyntaxError(ValueError):
    """A duration that is not in one of the ``ACCEPTED_FORMS``."""


@dataclass(frozen=True, slots=True)
class Duration:
    """An amount of one unit, e.g. ``Duration(10, Unit.WORKING_DAYS)``."""

    amount: int
    unit: Unit

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount < 0:
            raise ValueError(f"duration amount must be a whole number 0 or more, "
                             f"not {self.amount!r}")
        object.__setattr__(self, "unit", Unit(self.unit))

    def __str__(self) -> str:
        """The canonical form, which ``parse_duration`` reads back to an equal value."""
        unit = _SINGULAR[self.unit] if self.amount == 1 else self.unit.value
        return f"{self.amount} {unit}"


_PATTERN = re.compile(
    r"\s*([0-9]+)\s+(?:(working\s+days?)|(days?)|(weeks?)|(months?)|(hours?))\s*",
    re.IGNORECASE,
)
_GROUP_UNITS = (Unit.WORKING_DAYS, Unit.DAYS, Unit.WEEKS, Unit.MONTHS, Unit.HOURS)


def parse_duration(text: str) -> Duration:
    """Read a duration written in a definition; refuse anything else with the accepted forms."""
    match = _PATTERN.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise DurationSyntaxError(f"{text!r} is not a duration; write {ACCEPTED_FORMS}")
    unit = next(u for u, g in zip(_GROUP_UNITS, match.groups()[1:], strict=True) if g)
    return Duration(int(match.group(1)), unit)


class Roll(StrEnum):
    """Where a date-based deadline moves when it lands on a non-working day."""

    BACKWARD = "backward"
    FORWARD = "forward"


__all__ = ["ACCEPTED_FORMS", "Duration", "DurationSyntaxError", "Roll", "Unit", "parse_duration"]
