"""icsflow's core: the engine (start, fire, tick), its value types, calendar and errors."""

from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.clock import Clock, FakeClock, SystemClock
from icsflow.workflow.engine import Engine
from icsflow.workflow.instance import (
    Actor,
    DeadlineInfo,
    HistoryEntry,
    Instance,
    TickResult,
    TimerInfo,
)

__all__ = ["Engine", "Actor", "Instance", "HistoryEntry", "DeadlineInfo", "TimerInfo",
           "TickResult", "WorkingCalendar", "Clock", "FakeClock", "SystemClock"]
