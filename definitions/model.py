"""The frozen model of a process definition: what the YAML loader produces and the engine runs.

Everything here is a value: immutable, hashable where it can be, with the file and line it came
from (``Source``) so that any later complaint can name the place a manager has to edit. The
loader (``definitions.loader``) builds these; validation (``definitions.validate``) checks their
meaning; the engine (``workflow``) only reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from types import MappingProxyType
from typing import Literal, TypeVar

from icsflow.definitions.durations import Duration, Roll

SYSTEM_ROLE = "system"
"""The role timers act with; an event whose ``roles`` list is empty may only be fired by a timer."""


@dataclass(frozen=True, order=True)
class Source:
    """Where a node of a definition was written: ``file:line`` (1-based line; ``column`` is
    1-based too, 0 when unknown, and shows in problems as ``file:line:column``)."""

    file: str
    line: int
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


UNKNOWN_SOURCE = Source("<unknown>", 0)


class FieldType(StrEnum):
    STRING = "string"
    TEXT = "text"
    DATE = "date"
    DATETIME = "datetime"
    INT = "int"
    BOOL = "bool"
    EMAIL = "email"
    ENUM = "enum"


@dataclass(frozen=True)
class DataField:
    """One item of a case's data. ``values`` only for enums. ``readonly``: given when the case
    starts and never changed after (no transition may ``set:`` or ``record:`` it), so an
    address or a date the case is anchored on cannot be rewritten by a later event."""

    name: str
    type: FieldType
    required: bool = False
    values: tuple[str, ...] = ()
    description: str = ""
    source: Source = UNKNOWN_SOURCE
    readonly: bool = False
    label: str = ""
    value_labels: tuple[tuple[str, str], ...] = ()  # enum value -> what a person reads


@dataclass(frozen=True)
class Role:
    """Who may act, and where their email address comes from.

    ``address_field`` names a data field of the case holding the address (``team_manager_email``);
    ``directory`` means a service-level role whose addresses come from the configuration's
    directory (the IRO service manager). A role may have neither (it acts but is never mailed).
    """

    name: str
    description: str = ""
    address_field: str | None = None
    directory: bool = False
    source: Source = UNKNOWN_SOURCE
    label: str = ""


@dataclass(frozen=True)
class State:
    name: str
    description: str = ""
    final: bool = False
    source: Source = UNKNOWN_SOURCE
    label: str = ""


@dataclass(frozen=True)
class Expr:
    """A Jinja2 expression (``data.review_date > deadlines.review_due``), see ``expressions``."""

    text: str
    source: Source = UNKNOWN_SOURCE

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Notify:
    """Send ``template`` to every address of ``roles`` (only when ``when`` holds, if given)."""

    roles: tuple[str, ...]
    template: str
    when: Expr | None = None
    source: Source = UNKNOWN_SOURCE


@dataclass(frozen=True)
class FieldRule:
    """A data field an event carries: ``required`` ones must be given with the event."""

    name: str
    required: bool = False
    source: Source = UNKNOWN_SOURCE


@dataclass(frozen=True)
class SignalEmit:
    """A signal a transition (or the start) tells the child's other cases, if ``when`` holds."""

    name: str
    when: Expr | None = None
    source: Source = UNKNOWN_SOURCE


@dataclass(frozen=True)
class Reaction:
    """What a definition does when another case of the same child sends ``signal``: start a
    case of itself (``start``, with ``set`` data expressions) when the child has no open one, or
    fire ``fire`` as the system on each of the child's open cases of it. ``when`` conditions
    see ``signal``, ``sender`` (the sending case's data) and ``cases`` (the child's open cases
    by definition) beside the usual names."""

    signal: str
    start: bool = False
    fire: str | None = None
    when: tuple[Expr, ...] = ()
    set: tuple[tuple[str, Expr], ...] = ()
    description: str = ""
    source: Source = UNKNOWN_SOURCE


@dataclass(frozen=True)
class Transition:
    """An event moving a case from any of ``sources`` to ``to``.

    ``to`` is None for an internal event: the state does not change (no exit, no entry, its
    deadlines and timers stay), only data, history and notifications. ``sources`` is already
    expanded (``from: "*"`` becomes every non-final state, recorded in ``from_any``).
    Effects happen in this order: ``when`` conditions checked (on the data as the event would
    leave it), ``set`` fields merged, ``record`` expressions evaluated in order and stored,
    state changed, deadlines and timers updated, ``notify`` queued.
    """

    event: str
    sources: tuple[str, ...]
    to: str | None
    roles: tuple[str, ...] = ()
    when: tuple[Expr, ...] = ()
    set: tuple[FieldRule, ...] = ()
    record: tuple[tuple[str, Expr], ...] = ()
    notify: tuple[Notify, ...] = ()
    description: str = ""
    from_any: bool = False
    source: Source = UNKNOWN_SOURCE
    signals: tuple[SignalEmit, ...] = ()  # told to the child's other cases when taken
    label: str = ""  # what a person reads for the event (the first transition's that has one)

    @property
    def timer_only(self) -> bool:
        """True when no role may fire it: only a timer can (automatic escalation)."""
        return not self.roles


class AnchorKind(StrEnum):
    ENTRY = "entry"  # when the case entered the deadline's live set (the usual case)
    START = "start"  # when the instance started
    STATE = "state"  # when the instance (last) entered the named state
    FIELD = "field"  # a date or datetime data field
    EVENT = "event"  # when the named event last happened
    DEADLINE = "deadline"  # another deadline's due date


@dataclass(frozen=True)
class Anchor:
    kind: AnchorKind
    ref: str | None = None  # state, field, event or deadline name; None for ENTRY and START

    def __str__(self) -> str:
        return self.kind.value if self.ref is None else f"{self.kind.value} {self.ref}"


@dataclass(frozen=True)
class DeadlineRule:
    """How to compute a deadline: ``anchor`` plus (``sign`` +1) or minus (-1) ``offset``.

    A deadline has one or more rules; the first whose ``when`` holds is used. Several rules let
    one deadline change its basis over a case's life (first review 20 working days after becoming
    looked after, the second 3 months after the first, later ones 6 months).
    """

    anchor: Anchor
    offset: Duration
    sign: int = 1
    when: Expr | None = None
    source: Source = UNKNOWN_SOURCE


@dataclass(frozen=True)
class Deadline:
    """A named due date, live while the case is in any of ``live_in``.

    Computed when the case enters the live set from outside it (or starts in it), and again when
    a data field it is anchored on changes while live. Leaving the live set by any event marks it
    met (on time or late); leaving it by one of ``cancelled_by`` marks it cancelled. A date
    deadline is met by any time on its date and breached from the next local midnight; a deadline
    counted in hours is breached at its exact time.
    """

    name: str
    live_in: tuple[str, ...]
    rules: tuple[DeadlineRule, ...]
    roll: Roll | None = None
    cancelled_by: tuple[str, ...] = ()
    description: str = ""
    source: Source = UNKNOWN_SOURCE
    met_by: tuple[str, ...] = ()
    """Events that meet it where they happen, even without leaving the live set (minutes
    distributed while the review cycle goes on). When a case closes (a final state), only these
    events meet it: every other way of ending cancels it (cancelled is never met)."""
    marker: bool = False
    """``kind: marker``: a date the case tracks (dual status prolonged from, the 18th
    birthday), computed like a deadline and carrying timers, but never due: it is never
    overdue, met or breached, and no list of what is due counts it."""
    label: str = ""


class TimerPosition(StrEnum):
    BEFORE = "before"  # offset before the deadline's due date
    AFTER = "after"  # offset after the deadline's due date, or after entering the state
    DUE = "due"  # at the start (00:00 local) of the due date: "on the day"
    BREACH = "breach"  # at the moment the deadline is breached (next midnight after the date)


@dataclass(frozen=True)
class Timer:
    """Something that happens by itself at a time: remind (notify), escalate (fire), or both.

    Hangs off exactly one of ``deadline`` (lives while that deadline is live) or ``state``
    (lives while the case stays in that state; anchored on entering it). ``offset`` is set for
    BEFORE and AFTER. Day-based results fire at 00:00 local on the resulting date. ``repeat_every``
    repeats the timer after each firing, at most ``repeat_max`` firings in all.
    """

    name: str
    position: TimerPosition
    deadline: str | None = None
    state: str | None = None
    offset: Duration | None = None
    fire: str | None = None
    notify: tuple[Notify, ...] = ()
    repeat_every: Duration | None = None
    repeat_max: int | None = None
    description: str = ""
    source: Source = UNKNOWN_SOURCE

    @property
    def action(self) -> str:
        """A short label of what it does, for listings: ``fire:escalate+notify``."""
        parts = []
        if self.fire:
            parts.append(f"fire:{self.fire}")
        if self.notify:
            parts.append("notify:" + ",".join(n.template for n in self.notify))
        return "+".join(parts)


@dataclass(frozen=True)
class Template:
    """An email: Jinja2 ``subject`` and ``body``; ``urgent`` ones ignore office hours."""

    name: str
    subject: str
    body: str
    urgent: bool = False
    source: Source = UNKNOWN_SOURCE


LabelKind = Literal["state", "event", "deadline", "field", "role"]


def humanize(name: str) -> str:
    """``review_due`` -> ``Review due``: how an unlabelled name reads to a person."""
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


_K = TypeVar("_K")
_V = TypeVar("_V")


def _grouped(pairs: Iterable[tuple[_K, _V]]) -> Mapping[_K, tuple[_V, ...]]:
    """``(key, item)`` pairs as items by key, each group in the pairs' order (read-only)."""
    found: dict[_K, list[_V]] = {}
    for key, item in pairs:
        found.setdefault(key, []).append(item)
    return MappingProxyType({k: tuple(v) for k, v in found.items()})


@dataclass(frozen=True)
class Definition:
    """One version of one process, as a manager wrote it."""

    name: str
    version: int
    title: str
    description: str
    roles: tuple[Role, ...]
    start_roles: tuple[str, ...]
    data: tuple[DataField, ...]
    initial: str
    states: tuple[State, ...]
    transitions: tuple[Transition, ...]
    deadlines: tuple[Deadline, ...] = ()
    timers: tuple[Timer, ...] = ()
    templates: tuple[Template, ...] = ()
    source: Source = UNKNOWN_SOURCE
    content_hash: str = ""  # sha256 of the file's bytes: same name+version must mean same text
    extra: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    signals: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Every signal this definition sends or hears, with its meaning (name -> description)."""
    start_signals: tuple[SignalEmit, ...] = ()  # told when a case starts
    reactions: tuple[Reaction, ...] = ()
    auto_reference: str = ""
    """``reference_prefix``: a case a signal starts is referenced ``PREFIX-<child id>`` (then
    ``-2``, ``-3`` for later spells); empty means the initials of the name (``DS``)."""

    @property
    def reference_prefix(self) -> str:
        return self.auto_reference or "".join(w[:1] for w in self.name.split("_")).upper()

    def signals_of(self, event: str) -> tuple[SignalEmit, ...]:
        """Every signal any transition of ``event`` may send."""
        return tuple(s for t in self.transitions if t.event == event for s in t.signals)

    @property
    def key(self) -> tuple[str, int]:
        return (self.name, self.version)

    @cached_property
    def state_map(self) -> Mapping[str, State]:
        return MappingProxyType({s.name: s for s in self.states})

    @cached_property
    def role_map(self) -> Mapping[str, Role]:
        return MappingProxyType({r.name: r for r in self.roles})

    @cached_property
    def field_map(self) -> Mapping[str, DataField]:
        return MappingProxyType({f.name: f for f in self.data})

    @cached_property
    def deadline_map(self) -> Mapping[str, Deadline]:
        return MappingProxyType({d.name: d for d in self.deadlines})

    @cached_property
    def template_map(self) -> Mapping[str, Template]:
        return MappingProxyType({t.name: t for t in self.templates})

    @cached_property
    def events(self) -> tuple[str, ...]:
        """Event names in the order first written."""
        return tuple(dict.fromkeys(t.event for t in self.transitions))

    # Every planned transition asks these several times: each is grouped once, in written
    # order, instead of scanning the definition's lists on every call.

    @cached_property
    def _transitions_by_event_state(self) -> Mapping[tuple[str, str], tuple[Transition, ...]]:
        return _grouped(((t.event, source), t) for t in self.transitions
                        for source in dict.fromkeys(t.sources))

    @cached_property
    def _events_by_state(self) -> Mapping[str, tuple[str, ...]]:
        return _grouped(dict.fromkeys((source, t.event) for t in self.transitions
                                      for source in t.sources))  # each event once per state

    @cached_property
    def _deadlines_by_state(self) -> Mapping[str, tuple[Deadline, ...]]:
        return _grouped((state, d) for d in self.deadlines for state in dict.fromkeys(d.live_in))

    @cached_property
    def _timers_by_deadline(self) -> Mapping[str | None, tuple[Timer, ...]]:
        return _grouped((t.deadline, t) for t in self.timers)

    @cached_property
    def _timers_by_state(self) -> Mapping[str | None, tuple[Timer, ...]]:
        return _grouped((t.state, t) for t in self.timers)

    def transitions_for(self, event: str, state: str) -> tuple[Transition, ...]:
        """The transitions of ``event`` that may leave ``state`` (tried in written order)."""
        return self._transitions_by_event_state.get((event, state), ())

    def events_from(self, state: str) -> tuple[str, ...]:
        """Events allowed in ``state``, for error messages and listings."""
        return self._events_by_state.get(state, ())

    def deadlines_live_in(self, state: str) -> tuple[Deadline, ...]:
        return self._deadlines_by_state.get(state, ())

    def timers_of_deadline(self, deadline: str) -> tuple[Timer, ...]:
        return self._timers_by_deadline.get(deadline, ())

    def timer_live_states(self, timer: Timer) -> tuple[str, ...]:
        """The states in which ``timer`` runs: its state, or its deadline's live set."""
        if timer.state is not None:
            return (timer.state,)
        deadline = self.deadline_map.get(timer.deadline or "")
        return deadline.live_in if deadline is not None else ()

    def timers_of_state(self, state: str) -> tuple[Timer, ...]:
        return self._timers_by_state.get(state, ())

    # Labels: what a person reads. Ids stay in --json, CSV and the API; pages, emails and
    # reports show these. A name without a label reads as itself with spaces ("Review due").

    @cached_property
    def _labels(self) -> Mapping[tuple[LabelKind, str], str]:
        found: dict[tuple[LabelKind, str], str] = {}
        for t in self.transitions:
            if t.label:
                found.setdefault(("event", t.event), t.label)
        found.update({("state", s.name): s.label for s in self.states if s.label})
        found.update({("deadline", d.name): d.label for d in self.deadlines if d.label})
        found.update({("field", f.name): f.label for f in self.data if f.label})
        found.update({("role", r.name): r.label for r in self.roles if r.label})
        return MappingProxyType(found)

    def label_for(self, kind: LabelKind, name: str) -> str:
        """What a person reads for the state, event, deadline, field or role ``name``."""
        return self._labels.get((kind, name)) or humanize(name)

    def value_label(self, field_name: str, value: str) -> str:
        """What a person reads for an enum field's value (the value itself when unlabelled)."""
        data_field = self.field_map.get(field_name)
        labels = dict(data_field.value_labels) if data_field is not None else {}
        return labels.get(value, value)

    @property
    def label(self) -> str:
        """The definition's own label: its title."""
        return self.title or humanize(self.name)

    def is_final(self, state: str) -> bool:
        return self.state_map[state].final

    @cached_property
    def time_fields(self) -> tuple[tuple[str, FieldType], ...]:
        """The date and datetime fields (stored as ISO text, read back as dates)."""
        return tuple((f.name, f.type) for f in self.data
                     if f.type in (FieldType.DATE, FieldType.DATETIME))


__all__ = [
    "SYSTEM_ROLE", "Source", "FieldType", "DataField", "Role", "State", "Expr", "Notify",
    "FieldRule", "SignalEmit", "Reaction", "Transition", "AnchorKind", "Anchor", "DeadlineRule",
    "Roll", "Deadline",
    "TimerPosition", "Timer", "Template", "Definition", "LabelKind", "humanize",
]
