"""What a signed-in user may do on a case, and doing it: the engine's role checks decide.

The page lists the events the case's state accepts, split into those the user's role is
written into and those only other roles (or timers) may fire; the form for an event shows
exactly the fields the definition's transitions ask for (``set:``), required ones marked.
Firing goes through ``Engine.fire`` as ``Actor(user, role)``: a refusal comes back in words and
nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypedDict

from icsflow.definitions.model import DataField, Definition, FieldType
from icsflow.workflow.errors import WorkflowError
from icsflow.workflow.instance import (
    Actor,
    DeadlineInfo,
    HistoryEntry,
    Instance,
    JsonValue,
)
from icsflow.workflow.ports import OutboxMessage
from icsflow.workflow.web.auth import User
from icsflow.workflow.web.context import Web
from icsflow.workflow.web.context import status_for as http_status

INPUT_TYPES = {FieldType.DATE: "date", FieldType.DATETIME: "datetime-local",
               FieldType.INT: "number", FieldType.EMAIL: "email", FieldType.STRING: "text"}


@dataclass(frozen=True)
class EventChoice:
    event: str
    roles: tuple[str, ...]
    allowed: bool  # the user's role is among ``roles``
    description: str


@dataclass(frozen=True)
class FormField:
    name: str
    kind: str  # text, textarea, select, date, datetime-local, number, email
    required: bool
    description: str
    options: tuple[str, ...] = ()


def event_choices(defn: Definition, state: str, role: str) -> list[EventChoice]:
    """Events the case's state accepts that a person may fire (timer-only ones left out)."""
    out = []
    for event in defn.events:
        candidates = defn.transitions_for(event, state)
        roles = tuple(dict.fromkeys(r for t in candidates for r in t.roles))
        if not roles:
            continue
        text = next((t.description for t in candidates if t.description), "")
        out.append(EventChoice(event, roles, role in roles, text))
    return out


def _field(f: DataField, required: bool) -> FormField:
    if f.type is FieldType.ENUM:
        return FormField(f.name, "select", required, f.description, tuple(f.values))
    if f.type is FieldType.BOOL:
        return FormField(f.name, "select", required, f.description, ("yes", "no"))
    if f.type is FieldType.TEXT:
        return FormField(f.name, "textarea", required, f.description)
    return FormField(f.name, INPUT_TYPES.get(f.type, "text"), required, f.description)


def form_fields(defn: Definition, state: str, event: str) -> list[FormField]:
    """Exactly the fields the event's transitions from ``state`` take, in written order."""
    required: dict[str, bool] = {}
    for t in defn.transitions_for(event, state):
        for rule in t.set:
            required[rule.name] = required.get(rule.name, False) or rule.required
    return [_field(defn.field_map[n], req) for n, req in required.items()
            if n in defn.field_map]


class CaseView(TypedDict):
    """What ``case.html`` shows of a case."""

    inst: Instance
    defn: Definition
    deadlines: list[tuple[DeadlineInfo, int | None, object]]  # (deadline, days left, why)
    emails: list[OutboxMessage]
    choices: list[EventChoice]
    explain_available: bool
    history: list[HistoryEntry]
    data_fields: Mapping[str, DataField]


class FormView(TypedDict):
    """What ``action.html`` shows: the event's form, and after a refusal what was typed."""

    inst: Instance
    defn: Definition
    event: str
    choice: EventChoice | None
    fields: list[FormField]
    given: Mapping[str, str]
    refusal: str | None
    note: str | None


def case_context(web: Web, inst: Instance, user: User) -> CaseView:
    defn = web.engine.definition(inst.definition, inst.version)
    explain: Mapping[str, object] = {}
    explainer = getattr(web.engine, "explain", None)
    if explainer is not None:
        try:
            explain = explainer(inst.id)
        except Exception:  # noqa: BLE001 - the case is still shown, only without the why
            explain = {}
    calendar = web.engine.calendar
    today = calendar.local_date(web.now())
    from icsflow.workflow.context import days_left

    # A marker (a birthday, monitoring from) is a date tracked, never due: no days left,
    # never overdue.
    deadlines = [(d, days_left(calendar, today, d.due) if d.active and not d.marker else None,
                  explain.get(d.name)) for d in sorted(inst.deadline_list,
                                                       key=lambda d: (d.due_at, d.name))]
    emails = []
    outbox = getattr(web.engine, "outbox", None)
    if outbox is not None:
        try:
            emails = list(outbox.list(instance_id=inst.id))
        except Exception:  # noqa: BLE001 - a store without the outbox list shows none
            emails = []
    choices = [] if inst.closed else event_choices(defn, inst.state, user.role)
    return {"inst": inst, "defn": defn, "deadlines": deadlines, "emails": emails,
            "choices": choices, "explain_available": explainer is not None,
            "history": sorted(inst.history, key=lambda h: (h.at, h.recorded_at), reverse=True),
            "data_fields": defn.field_map}


def form_context(web: Web, inst: Instance, user: User, event: str) -> FormView:
    defn = web.engine.definition(inst.definition, inst.version)
    choices = {c.event: c for c in event_choices(defn, inst.state, user.role)}
    return {"inst": inst, "defn": defn, "event": event, "choice": choices.get(event),
            "fields": form_fields(defn, inst.state, event),
            "given": {}, "refusal": None, "note": None}


def fire(web: Web, inst: Instance, user: User, event: str, values: Mapping[str, str],
         note: str | None, row_version: int | None) -> Instance:
    """Fire as the signed-in user; empty fields are left out (the engine says what is
    missing); yes/no become booleans."""
    defn = web.engine.definition(inst.definition, inst.version)
    data: dict[str, JsonValue] = {}
    for name, value in joined_dates(values).items():
        if value == "":
            continue
        f = defn.field_map.get(name)
        data[name] = (value == "yes") if f is not None and f.type is FieldType.BOOL \
            and value in ("yes", "no") else value
    try:
        fired = web.engine.fire(inst.id, event, actor=Actor(user.name, user.role),
                                data=data or None, note=note, expected_version=row_version)
    finally:
        web.changed()
    return fired


DATE_PARTS = ("day", "month", "year")


def joined_dates(values: Mapping[str, str]) -> dict[str, str]:
    """A date asked as the GOV.UK date input asks it (``NAME-day``, ``NAME-month``,
    ``NAME-year``) joined into ``NAME`` as ``YYYY-MM-DD``; parts that are not numbers are
    passed on as typed, for the engine to refuse in words; all three empty is no value."""
    out: dict[str, str] = {}
    parts: dict[str, dict[str, str]] = {}
    for key, value in values.items():
        base, _, part = key.rpartition("-")
        if base and part in DATE_PARTS:
            parts.setdefault(base, {})[part] = value.strip()
        else:
            out[key] = value
    for base, got in parts.items():
        day, month, year = (got.get(p, "") for p in DATE_PARTS)
        if not (day or month or year):
            out.setdefault(base, "")
        elif day.isdigit() and month.isdigit() and year.isdigit():
            out[base] = f"{int(year):04d}-{int(month):02d}-{int(day):02d}"
        else:
            out[base] = f"{year}-{month}-{day}"
    return out


def status_for(error: WorkflowError) -> int:
    return http_status(error)


__all__ = ["joined_dates", "EventChoice", "FormField", "CaseView", "FormView", "event_choices",
           "form_fields", "case_context", "form_context", "fire", "status_for"]
