"""The names every expression and template sees (``definitions.expressions.CONTEXT_NAMES``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from icsflow.definitions.memo import Memo
from icsflow.definitions.model import Definition
from icsflow.workflow.calendar import WorkingCalendar, long_date
from icsflow.workflow.catalogue import definition_texts
from icsflow.workflow.instance import Actor, DeadlineInfo, HistoryEntry
from icsflow.workflow.ports import InstanceRecord


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


# id(calendar) -> (calendar, its functions); the calendar is kept so that its id stays its own.
_FUNCTIONS: Memo[int, tuple[WorkingCalendar, dict[str, Any]]] = Memo("context.functions", 64)


def _functions(calendar: WorkingCalendar) -> dict[str, Any]:
    """``functions(calendar)``, built once per calendar (they depend on nothing else)."""
    found = _FUNCTIONS.get(id(calendar))
    if found is None or found[0] is not calendar:
        found = _FUNCTIONS.put(id(calendar), (calendar, functions(calendar)))
    return found[1]


# Context names that cost something to build for every firing; skipped when no expression or
# template of the definition reads them (see ``names_used``).
COSTLY_NAMES: frozenset[str] = frozenset({"history", "days_left", "deadlines"})


def names_used(texts: Iterable[tuple[str, bool]]) -> frozenset[str] | None:
    """The context names read by ``texts`` (pairs ``(text, is_template)``, e.g. every template
    and expression of a definition); None if one does not parse (then build every name)."""
    from icsflow.definitions.expressions import expression_variables, template_variables

    used: set[str] = set()
    for text, is_template in texts:
        names = template_variables(text) if is_template else expression_variables(text)
        if names is None:
            return None
        used |= names
    return frozenset(used)


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

    def local_date(d: date | datetime) -> date:
        return _as_date(d, calendar)

    def next_weekday(d: date | datetime, weekday: str) -> date:
        """The first ``weekday`` (e.g. 'tuesday') after ``d``; on a closure, the next working
        day (a weekly meeting moved by a bank holiday)."""
        names = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
        target = names.index(str(weekday).strip().lower())
        day = _as_date(d, calendar)
        ahead = (target - day.weekday()) % 7 or 7
        found = day + timedelta(days=ahead)
        while not calendar.is_working_day(found):
            found += timedelta(days=1)
        return found

    def format_due(d: date | datetime | str | None, days: int | None = None) -> str:
        """``Tuesday 3 July 2012 (5 working days left)``: a due date and how near it is, the
        way every email states it (``days``: ``days_left.X``, ``deadline.working_days_left``)."""
        when = format_date(d)
        if not when or days is None:
            return when
        return f"{when} ({due_words(int(days))})"

    return {"working_days_between": working_days_between, "add_working_days": add_working_days,
            "days_between": days_between, "format_date": format_date, "local_date": local_date,
            "next_weekday": next_weekday, "format_due": format_due}


def due_words(days: int) -> str:
    """Working days left in words: "5 working days left", "due today", "2 working days overdue"."""
    if days == 0:
        return "due today"
    n = abs(days)
    unit = "working day" if n == 1 else "working days"
    return f"{n} {unit} left" if days > 0 else f"{n} {unit} overdue"


def build_context(*, calendar: WorkingCalendar, instance_id: str, ref: str, definition: str,
                  title: str, state: str, previous_state: str | None, data: Mapping[str, Any],
                  deadlines: Sequence[DeadlineInfo], history: Sequence[HistoryEntry],
                  event: str | None, event_at: datetime, now: datetime, actor_id: str,
                  role: str, note: str | None, extra: Mapping[str, Any] | None = None,
                  needed: frozenset[str] | None = None) -> dict[str, Any]:
    """The context of one transition or timer firing; ``today`` is the event's local date.

    ``needed`` (from ``names_used``), when given, lists every name that may be read: of the
    ``COSTLY_NAMES`` only those are built (nothing reads the others, so nothing can tell)."""
    tz = calendar.tz
    event_local = event_at.astimezone(tz)
    today = event_local.date()
    ctx: dict[str, Any] = {
        "data": dict(data),
        "ref": ref, "instance_id": instance_id, "definition": definition, "title": title,
        "state": state, "previous_state": previous_state, "event": event,
        "event_date": today, "event_at": event_local,
        "today": today, "now": now.astimezone(tz),
        "actor": {"id": actor_id, "role": role}, "note": note,
        "deadline": None, "timer": None,
    }
    want_deadlines = needed is None or "deadlines" in needed
    want_days_left = needed is None or "days_left" in needed
    if want_deadlines or want_days_left:
        # Every deadline ever computed for the case, the active one winning over older ones: a
        # record such as ``event_date > deadlines.request_due`` must still work after the
        # deadline was breached and left behind (a late request made from ``request_overdue``).
        latest: dict[str, DeadlineInfo] = {}
        for d in deadlines:
            if d.active or d.name not in latest or not latest[d.name].active:
                latest[d.name] = d
        if want_deadlines:
            ctx["deadlines"] = {d.name: deadline_value(d) for d in latest.values()}
        if want_days_left:
            ctx["days_left"] = {d.name: days_left(calendar, today, d.due)
                                for d in latest.values()}
    if needed is None or "history" in needed:
        ctx["history"] = [{"event": h.event, "from": h.from_state, "to": h.to_state,
                           "actor": h.actor, "role": h.role, "at": h.at.astimezone(tz),
                           "note": h.note} for h in history]
    ctx.update(_functions(calendar))
    if extra:
        ctx.update(extra)
    return ctx


def duration_words(defn: Definition) -> dict[str, str]:
    """``durations.NAME`` in templates: each deadline's duration in words (its last rule, the
    default one), so that changing the YAML changes every email that states it."""
    return {d.name: str(d.rules[-1].offset) for d in defn.deadlines if d.rules}


LABEL_NAMES: frozenset[str] = frozenset({"state_label", "previous_state_label", "event_label",
                                        "case_url", "label", "value_label"})


def case_url(base_url: str | None, instance_id: str) -> str:
    """The case's page on the web (``/cases/ID``), or "" when no base URL is configured: an
    email links to it only where a reader can open it."""
    if not base_url:
        return ""
    return f"{base_url.rstrip('/')}/cases/{instance_id}"


def label_names(defn: Definition, *, state: str, previous: str | None, event: str | None,
                url: str) -> dict[str, Any]:
    """What a person reads in an email: the labels of the case's state and event, the
    ``label``/``value_label`` functions over the definition's labels, and the case's page."""
    def label(kind: str, name: str) -> str:
        if kind not in ("state", "event", "deadline", "field", "role"):
            raise ValueError(f"label kind {kind!r} is not one of state, event, deadline, field, "
                             "role")
        return defn.label_for(kind, str(name))  # type: ignore[arg-type]

    def value_label(field: str, value: object) -> str:
        return "" if value is None else defn.value_label(str(field), str(value))

    return {"state_label": defn.label_for("state", state),
            "previous_state_label": defn.label_for("state", previous) if previous else "",
            "event_label": defn.label_for("event", event) if event else "",
            "case_url": url, "label": label, "value_label": value_label}


class ContextMaker:
    """Builds the contexts of one engine's definitions: which names a definition's texts read
    is found once per definition, and only those of the costly names are built."""

    def __init__(self, calendar: WorkingCalendar, settings: Mapping[str, Any] | None = None,
                 ) -> None:
        self.calendar = calendar
        # The council's settings definitions may read (``settings.allocation_weekday``).
        self.settings: dict[str, Any] = dict(settings or {})
        # Per definition: the context names its expressions and templates read (None: all).
        self._needed: dict[int, tuple[Definition, frozenset[str] | None]] = {}

    def needed(self, defn: Definition) -> frozenset[str] | None:
        """Every context name an expression or template of ``defn`` reads, computed once."""
        found = self._needed.get(id(defn))
        if found is not None and found[0] is defn:
            return found[1]
        needed = names_used(definition_texts(defn))
        if len(self._needed) > 256:  # bounded: definitions read back from a store are new
            self._needed.clear()
        self._needed[id(defn)] = (defn, needed)
        return needed

    def make(self, defn: Definition, rec: InstanceRecord, *, state: str, previous: str | None,
             data: Mapping[str, Any], infos: Sequence[DeadlineInfo],
             history: Sequence[HistoryEntry], event: str | None, at: datetime, now: datetime,
             actor: Actor, note: str | None, extra: Mapping[str, Any] | None = None,
             ) -> dict[str, Any]:
        """The context of one transition, reaction or timer of ``rec`` (a case of ``defn``)."""
        needed = self.needed(defn)
        if needed is None or "durations" in needed:
            extra = {"durations": duration_words(defn), **(extra or {})}
        if needed is None or "settings" in needed:
            extra = {"settings": dict(self.settings), **(extra or {})}
        if needed is None or needed & LABEL_NAMES:
            url = case_url(self.settings.get("web_base_url"), rec.id)
            extra = {**label_names(defn, state=state, previous=previous, event=event, url=url),
                     **(extra or {})}
        return build_context(calendar=self.calendar, instance_id=rec.id, ref=rec.ref,
                             definition=defn.name, title=defn.title, state=state,
                             previous_state=previous, data=data, deadlines=infos,
                             history=history, event=event, event_at=at, now=now,
                             actor_id=actor.id, role=actor.role, note=note, extra=extra,
                             needed=needed)


__all__ = ["COSTLY_NAMES", "LABEL_NAMES", "ContextMaker", "build_context", "case_url",
           "deadline_value", "days_left", "due_words", "duration_words", "functions", "label_names",
           "names_used"]
