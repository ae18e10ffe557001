"""The daemon room: timer sweeps, outbox dispatch, office hours, digests, wiring."""

from icsflow.workflow.commands import system_clock
from icsflow.workflow.daemon.digests import (
    is_first_working_day_of_week,
    next_timer_due,
    queue_digests,
)
from icsflow.workflow.daemon.dispatch import Dispatcher, DispatchResult
from icsflow.workflow.daemon.office_hours import OfficeHours
from icsflow.workflow.daemon.runner import Daemon, OffsetClock
from icsflow.workflow.daemon.wiring import (
    build_dispatcher,
    build_notifier,
    db_engine,
    ensure_schema,
    office_hours_from,
)

__all__ = ["Daemon", "OffsetClock", "Dispatcher", "DispatchResult", "OfficeHours",
           "build_dispatcher", "build_notifier", "db_engine", "ensure_schema",
           "office_hours_from", "system_clock", "queue_digests", "next_timer_due",
           "is_first_working_day_of_week"]
