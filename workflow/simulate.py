"""What-if preview: run one case of a definition on a throwaway database and a fake clock.

A manager asks "if nobody acts (or if these things happen on these dates), what will icsflow
do?" The answer must be exactly what the engine would do live, so the preview does not re-derive
anything: it runs the real engine on an in-memory SQLite database, moves a fake clock one local
day at a time, fires the scripted events, and reads back what happened (history, deadlines,
timers, queued notifications).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from icsflow.definitions.model import Definition, FieldType
from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.clock import LONDON, FakeClock
from icsflow.workflow.errors import ValidationError
from icsflow.workflow.instance import Actor, Instance

if TYPE_CHECKING:
    from icsflow.workflow.catalogue import DefinitionsArg

PLACEHOLDER_TEXT = "(simulated)"
EVENT_HOUR = time(12, 0)  # scripted events happen at noon, after the day's midnight timers


@dataclass(frozen=True)
class ScriptedEvent:
    """``EVENT@DATE`` with optional ``+KEY=VALUE`` data, as given on the command line."""

    event: str
    on: date
    data: Mapping[str, str] = field(default_factory=dict)
    role: str | None = None


@dataclass(frozen=True)
class Happening:
    """One line of the preview."""

    on: date
    kind: str  # start, event, escalation, breach, notification, deadline, pending
    what: str
    detail: str = ""
    subject: str = ""  # notifications: the rendered email
    body: str = ""

    def to_json(self) -> dict[str, str]:
        shape = {"date": self.on.isoformat(), "kind": self.kind, "what": self.what,
                 "detail": self.detail}
        if self.kind == "notification":
            shape.update(subject=self.subject, body=self.body)
        return shape


@dataclass(frozen=True)
class Preview:
    definition: str
    version: int
    start: date
    until: date
    final_state: str
    happenings: tuple[Happening, ...]
    placeholders: tuple[str, ...]

    def text(self, emails: bool = False) -> str:
        """The preview as lines; each email's subject under it, and with ``emails`` its body."""
        head = [f"{self.definition} v{self.version} started {self.start.isoformat()}, "
                f"previewed to {self.until.isoformat()}; ends in state '{self.final_state}'."]
        if self.placeholders:
            head.append("placeholder values used for: " + ", ".join(self.placeholders))
        width = max((len(h.kind) for h in self.happenings), default=8)
        indent = " " * (10 + 2 + width + 2)
        lines = []
        for h in self.happenings:
            lines.append(f"{h.on.isoformat()}  {h.kind:<{width}}  {h.what}"
                         + (f"  ({h.detail})" if h.detail else ""))
            if h.kind == "notification":
                lines.append(f"{indent}subject: {h.subject}")
                if emails:
                    lines.extend(f"{indent}| {line}".rstrip() for line in h.body.splitlines())
        return "\n".join(head + lines)

    def to_json(self) -> dict[str, Any]:
        return {"definition": self.definition, "version": self.version,
                "start": self.start.isoformat(), "until": self.until.isoformat(),
                "final_state": self.final_state, "placeholders": list(self.placeholders),
                "happenings": [h.to_json() for h in self.happenings]}


def parse_events(text: str | None) -> list[ScriptedEvent]:
    """``respond@2012-01-04,schedule@2012-06-20+review_date=2012-06-25`` -> scripted events.

    A ``:role`` after the event name chooses the role (``respond:team_manager@2012-01-04``).
    """
    events: list[ScriptedEvent] = []
    for raw in (text or "").split(","):
        item = raw.strip()
        if not item:
            continue
        head, _, rest = item.partition("+")
        name, at, day = head.partition("@")
        if not at:
            raise ValidationError(f"--events item {item!r}: expected EVENT@YYYY-MM-DD",
                                  field="events")
        event, _, role = name.strip().partition(":")
        try:
            on = date.fromisoformat(day.strip())
        except ValueError:
            raise ValidationError(f"--events item {item!r}: {day.strip()!r} is not a date "
                                  "(YYYY-MM-DD)", field="events") from None
        data: dict[str, str] = {}
        for pair in filter(None, rest.split("+")):
            key, eq, value = pair.partition("=")
            if not eq:
                raise ValidationError(f"--events item {item!r}: {pair!r} is not KEY=VALUE",
                                      field="events")
            data[key.strip()] = value
        events.append(ScriptedEvent(event.strip(), on, data, role.strip() or None))
    return sorted(events, key=lambda e: e.on)


def _placeholder(kind: FieldType, name: str, on: date, values: Sequence[str]) -> str:
    if kind is FieldType.EMAIL:
        return f"{name.removesuffix('_email')}@example.invalid"
    if kind is FieldType.DATE:
        return on.isoformat()
    if kind is FieldType.DATETIME:
        return datetime.combine(on, EVENT_HOUR, LONDON).isoformat()
    if kind is FieldType.INT:
        return "0"
    if kind is FieldType.BOOL:
        return "true"
    if kind is FieldType.ENUM:
        return values[0]
    return PLACEHOLDER_TEXT


def _fill_required(defn: Definition, given: Mapping[str, str], names: Sequence[str], on: date,
                   used: list[str]) -> dict[str, str]:
    data = dict(given)
    for name in names:
        if data.get(name) in (None, ""):
            spec = defn.field_map[name]
            data[name] = _placeholder(spec.type, name, on, spec.values)
            used.append(name)
    return data


def _directory_for(defn: Definition) -> dict[str, list[str]]:
    """Every service-level role gets a placeholder address, so notifications show recipients."""
    return {r.name: [f"{r.name}@example.invalid"] for r in defn.roles if r.directory}


def _event_role(defn: Definition, event: str, state: str, wanted: str | None) -> str:
    if wanted:
        return wanted
    for t in defn.transitions_for(event, state):
        if t.roles:
            return t.roles[0]
    for t in defn.transitions:
        if t.event == event and t.roles:
            return t.roles[0]
    return defn.start_roles[0] if defn.start_roles else "admin"


def simulate(definitions: DefinitionsArg, name: str, start: date,
             data: Mapping[str, str] | None = None, events: Sequence[ScriptedEvent] = (),
             until: date | None = None, calendar: WorkingCalendar | None = None) -> Preview:
    """Run one case of ``name`` from ``start`` to ``until`` (default: two years, or until
    nothing is left to happen) and describe, in date order, everything that happened."""
    from icsflow.workflow.engine import Engine

    calendar = calendar or WorkingCalendar()
    clock = FakeClock(datetime.combine(start, EVENT_HOUR, LONDON))
    engine = Engine.open(db="sqlite://", definitions=definitions, clock=clock,
                         calendar=calendar, directory=None)
    horizon = until or (max([start] + [e.on for e in events]) + timedelta(days=731))
    placeholders: list[str] = []
    try:
        defn = engine.definition(name)
        engine.directory = _directory_for(defn)
        start_role = defn.start_roles[0] if defn.start_roles else "admin"
        required = [f.name for f in defn.data if f.required]
        start_data = _fill_required(defn, data or {}, required, start, placeholders)
        # Optional email fields get placeholders too: a notification to that role shows up.
        emails = [f.name for f in defn.data
                  if f.type is FieldType.EMAIL and f.name not in start_data]
        start_data = _fill_required(defn, start_data, emails, start, placeholders)
        inst = engine.start(name, ref="PREVIEW-1", data=start_data,
                            actor=Actor("preview", start_role),
                            at=datetime.combine(start, EVENT_HOUR, LONDON))
        pending = list(events)
        day = start
        while day <= horizon:
            midnight = datetime.combine(day, time(0, 0), LONDON)
            clock.set(max(clock.now(), midnight))
            engine.tick(now=midnight)
            for ev in [e for e in pending if e.on == day]:
                pending.remove(ev)
                noon = datetime.combine(day, EVENT_HOUR, LONDON)
                clock.set(noon)
                engine.tick(now=noon)
                state = engine.get(inst.id).state
                role = _event_role(defn, ev.event, state, ev.role)
                needs = [r.name for t in defn.transitions_for(ev.event, state) for r in t.set
                         if r.required]
                ev_data = _fill_required(defn, ev.data, needs, day, placeholders)
                engine.fire(inst.id, ev.event, Actor("preview", role), data=ev_data, at=noon)
            current = engine.get(inst.id)
            if not pending and (current.closed or not any(
                    t.status == "pending" for t in current.timers)) and until is None:
                break
            day += timedelta(days=1)
        final = engine.get(inst.id)
        outbox = [m for m in engine.outbox.list() if m.instance_id == inst.id] \
            if engine.outbox is not None else []
    finally:
        engine.close()
    return Preview(defn.name, defn.version, start, min(day, horizon), final.state,
                   tuple(_happenings(final, outbox, calendar)), tuple(dict.fromkeys(placeholders)))


def _happenings(inst: Instance, outbox: Sequence[Any], calendar: WorkingCalendar,
                ) -> list[Happening]:
    out: list[Happening] = []
    for h in inst.history:
        on = calendar.local_date(h.at)
        if h.event == "start":
            out.append(Happening(on, "start", f"started in {h.to_state}", f"by {h.role}"))
        elif h.role == "system":
            move = f"{h.from_state} -> {h.to_state}" if h.from_state != h.to_state else h.to_state
            out.append(Happening(on, "escalation", f"{h.event}: {move}", "automatic"))
        else:
            move = f"{h.from_state} -> {h.to_state}" if h.from_state != h.to_state else h.to_state
            out.append(Happening(on, "event", f"{h.event}: {move}", f"by {h.role}"))
    for d in inst.deadline_list:
        status = d.status.value
        out.append(Happening(d.due, "deadline", f"{d.name} due", status))
        if status == "breached":
            out.append(Happening(calendar.local_date(d.due_at), "breach", f"{d.name} breached"))
    for t in inst.timers:  # fired timers show as their notifications and escalations
        if t.status == "pending":
            out.append(Happening(calendar.local_date(t.due_at), "pending", t.name, t.action))
    for m in outbox:
        out.append(Happening(calendar.local_date(m.created_at), "notification", m.template,
                             ", ".join(m.recipients) + (f"; {m.status}" if m.status != "pending"
                                                        else ""), m.subject, m.body))
    order = {"start": 0, "event": 1, "escalation": 2, "breach": 3, "notification": 4,
             "deadline": 5, "pending": 6}
    return sorted(out, key=lambda h: (h.on, order.get(h.kind, 9)))


__all__ = ["ScriptedEvent", "Happening", "Preview", "parse_events", "simulate"]
