"""icsflow's core: the engine (start, fire, tick), its value types, calendar and errors."""

from workflow.calendar import WorkingCalendar
from workflow.clock import Clock, FakeClock, SystemClock
from workflow.engine import Engine
from workflow.instance import (
    Actor,
    DeadlineInfo,
    HistoryEntry,
    Instance,
    TickResult,
    TimerInfo,
)

__all__ = ["Engine", "Actor", "Instance", "HistoryEntry", "DeadlineInfo", "TimerInfo",
           "TickResult", "WorkingCalendar", "Clock", "FakeClock", "SystemClock"]
