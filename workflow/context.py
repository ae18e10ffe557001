"""The names every expression and template sees (``definitions.expressions.CONTEXT_NAMES``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from workflow.calendar import WorkingCalendar, long_date
from workflow.instance import DeadlineInfo, HistoryEntry


def deadline_value(d: DeadlineInfo) -> date | datetime:
    """What ``deadlines.X`` is: the due date, or the exact instant for hour deadlines."""
    return d.due_at if d.exact else d.due


def days_left(calendar: WorkingCalendar, today: date, due: date) -> int:
    """Working days from today to the due date; negative when overdue."""
    if due >= today:
        return calendar.working_days_between(today, due)
    return -calendar.working_days_between(due, today)


def _as_date(value: date | datetime, calendar: WorkingCalendar) -> date:
    return calendar.local_date(value) if isinstance(value, datetime) else value


def functions(calendar: WorkingCalendar) -> dict[str, Any]:
    def working_days_between(a: date | datetime, b: date | datetime) -> int:
        return calendar.working_days_between(_as_date(a, calendar), _as_date(b, calendar))

    def add_working_days(d: date | datetime, n: int) -> date:
        return calendar.add_working_days(_as_date(d, calendar), int(n))

    def days_between(a: date | datetime, b: date | datetime) -> int:
        return (_as_date(b, calendar) - _as_date(a, calendar)).days

    def format_date(d: date | datetime | str | None) -> str:
        if d is None or d == "":
            return ""
        if isinstance(d, str):
            d = date.fromisoformat(d[:10])
        if isinstance(d, datetime):
            local = d.astimezone(calendar.tz)
            return f"{long_date(local.date())} {local:%H:%M}"
        return long_date(d)

    return {"working_days_between": working_days_between, "add_working_days": add_working_days,
            "days_between": days_between, "format_date": format_date}


def build_context(*, calendar: WorkingCalendar, instance_id: str, ref: str, definition: str,
                  title: str, state: str, previous_state: str | None, data: Mapping[str, Any],
                  deadlines: Sequence[DeadlineInfo], history: Sequence[HistoryEntry],
                  event: str | None, event_at: datetime, now: datetime, actor_id: str,
                  role: str, note: str | None, extra: Mapping[str, Any] | None = None,
                  ) -> dict[str, Any]:
    """The context of one transition or timer firing; ``today`` is the event's local date."""
    tz = calendar.tz
    today = event_at.astimezone(tz).date()
    # Every deadline ever computed for the case, the active one winning over older ones: a
    # record such as ``event_date > deadlines.request_due`` must still work after the deadline
    # was breached and left behind (a late request made from ``request_overdue``).
    latest: dict[str, DeadlineInfo] = {}
    for d in deadlines:
        if d.active or d.name not in latest or not latest[d.name].active:
            latest[d.name] = d
    ctx: dict[str, Any] = {
        "data": dict(data),
        "deadlines": {d.name: deadline_value(d) for d in latest.values()},
        "days_left": {d.name: days_left(calendar, today, d.due) for d in latest.values()},
        "ref": ref, "instance_id": instance_id, "definition": definition, "title": title,
        "state": state, "previous_state": previous_state, "event": event,
        "event_date": today, "event_at": event_at.astimezone(tz),
        "today": today, "now": now.astimezone(tz),
        "actor": {"id": actor_id, "role": role}, "note": note,
        "history": [{"event": h.event, "from": h.from_state, "to": h.to_state,
                     "actor": h.actor, "role": h.role, "at": h.at.astimezone(tz),
                     "note": h.note} for h in history],
        "deadline": None, "timer": None,
    }
    ctx.update(functions(calendar))
    if extra:
        ctx.update(extra)
    return ctx


__all__ = ["build_context", "deadline_value", "days_left", "functions"]
