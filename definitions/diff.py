"""What changed between two versions of a process, in words a service manager reads.

Pure: two ``Definition`` values in, a list of ``Difference`` lines out. It compares what a manager
wrote (states, events, roles, data fields, deadlines and their durations, timers, templates), not
file positions, so moving a block in the file is no change. Used by ``icsflow diff`` and to show,
before ``icsflow migrate``, what moving running cases to a new version would mean.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from icsflow.definitions.model import (
    DataField,
    Deadline,
    DeadlineRule,
    Definition,
    Role,
    State,
    Template,
    Timer,
    Transition,
)

_T = TypeVar("_T")


@dataclass(frozen=True)
class Difference:
    """One change: ``kind`` (state, event, role, field, deadline, timer, template, process),
    ``name`` of the thing, ``change`` (added, removed, changed) and the sentence to show."""

    kind: str
    name: str
    change: str
    text: str

    def __str__(self) -> str:
        return self.text

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "change": self.change, "text": self.text}


def diff_definitions(old: Definition, new: Definition) -> list[Difference]:
    """Every difference from ``old`` to ``new``, grouped by kind in a fixed order."""
    out: list[Difference] = []
    for label, before, after in (("title", old.title, new.title),
                                 ("initial state", old.initial, new.initial)):
        if before != after:
            out.append(Difference("process", label, "changed",
                                  f"{label}: {before} -> {after}"))
    if set(old.start_roles) != set(new.start_roles):
        out.append(Difference("process", "start_roles", "changed",
                              f"who may start a case: {_words(old.start_roles)} -> "
                              f"{_words(new.start_roles)}"))
    out += _compare("state", _by_name(old.states), _by_name(new.states), _state_words)
    out += _compare("event", _events(old), _events(new), _event_words)
    out += _compare("role", _by_name(old.roles), _by_name(new.roles), _role_words)
    out += _compare("field", _by_name(old.data), _by_name(new.data), _field_words)
    out += _compare("deadline", _by_name(old.deadlines), _by_name(new.deadlines),
                    _deadline_words)
    out += _compare("timer", _by_name(old.timers), _by_name(new.timers), _timer_words)
    out += _compare("template", _by_name(old.templates), _by_name(new.templates),
                    _template_words)
    return out


def _by_name(items: Iterable[_T]) -> dict[str, _T]:
    return {getattr(i, "name"): i for i in items}  # noqa: B009 - every model item has a name


def _events(defn: Definition) -> dict[str, tuple[Transition, ...]]:
    return {e: tuple(t for t in defn.transitions if t.event == e) for e in defn.events}


def _compare(kind: str, old: Mapping[str, _T], new: Mapping[str, _T],
             words: Callable[[_T], dict[str, str]]) -> list[Difference]:
    """Added and removed names, then for names in both each aspect whose words differ."""
    out: list[Difference] = []
    for name in new:
        if name not in old:
            summary = "; ".join(f"{k} {v}".strip() for k, v in words(new[name]).items() if v)
            out.append(Difference(kind, name, "added",
                                  f"{kind} {name} added" + (f": {summary}" if summary else "")))
    for name in old:
        if name not in new:
            out.append(Difference(kind, name, "removed", f"{kind} {name} removed"))
    for name in old:
        if name not in new:
            continue
        before, after = words(old[name]), words(new[name])
        for aspect in dict.fromkeys([*before, *after]):
            a, b = before.get(aspect, ""), after.get(aspect, "")
            if a == b:
                continue
            if _long(a) or _long(b):
                text = f"{name}: {aspect or 'text'} reworded"
            else:
                label = f"{aspect} " if aspect else ""
                text = f"{name}: {label}{a or '(none)'} -> {b or '(none)'}"
            out.append(Difference(kind, name, "changed", text))
    return out


def _long(text: str) -> bool:
    """Email bodies and long descriptions are named as reworded, not printed in full."""
    return "\n" in text.strip() or len(text) > 200


def _words(items: Iterable[str]) -> str:
    names = sorted(items)
    return ", ".join(names) if names else "nobody"


def _state_words(s: State) -> dict[str, str]:
    return {"final": "yes" if s.final else "no", "description": s.description.strip()}


def _event_words(ts: tuple[Transition, ...]) -> dict[str, str]:
    moves = []
    for t in ts:
        to = t.to if t.to is not None else "(stays)"
        cond = f" when {' and '.join(e.text for e in t.when)}" if t.when else ""
        moves.append(f"{'|'.join(sorted(t.sources))} -> {to}{cond}")
    roles = sorted({r for t in ts for r in t.roles})
    emails = sorted({n.template for t in ts for n in t.notify})
    return {"moves": "; ".join(moves),
            "who may fire it": ", ".join(roles) if roles else "only a timer",
            "emails": ", ".join(emails)}


def _role_words(r: Role) -> dict[str, str]:
    where = (f"address from {r.address_field}" if r.address_field else
             "addresses from the directory" if r.directory else "never mailed")
    return {"": where}


def _field_words(f: DataField) -> dict[str, str]:
    kind = f.type.value + (f" ({', '.join(f.values)})" if f.values else "")
    return {"type": kind, "required": "yes" if f.required else "no"}


def _rule_words(rule: DeadlineRule) -> str:
    direction = "before" if rule.sign < 0 else "after"
    when = f" when {rule.when.text}" if rule.when is not None else ""
    return f"{rule.offset} {direction} {rule.anchor}{when}"


def _deadline_words(d: Deadline) -> dict[str, str]:
    """The duration first and unlabelled: "response_due: 10 working days -> 5 working days"."""
    rules = d.rules
    single = len(rules) == 1 and rules[0].when is None
    duration = (f"{rules[0].offset}" + (" before" if rules[0].sign < 0 else "") if single
                else "; ".join(_rule_words(r) for r in rules))
    return {"": duration,
            "counted from": str(rules[0].anchor) if single else "",
            "live in": ", ".join(d.live_in),
            "rolled": d.roll.value if d.roll is not None else "",
            "cancelled by": ", ".join(d.cancelled_by)}


def _timer_words(t: Timer) -> dict[str, str]:
    if t.offset is not None:
        when = f"{t.offset} {t.position.value} {t.deadline or 'entering ' + (t.state or '')}"
    else:
        when = f"at {t.position.value} of {t.deadline or t.state}"
    repeat = ""
    if t.repeat_every is not None:
        repeat = f"every {t.repeat_every}" + (f", at most {t.repeat_max} times"
                                              if t.repeat_max else "")
    return {"when": when, "does": t.action, "repeats": repeat}


def _template_words(t: Template) -> dict[str, str]:
    return {"subject": t.subject, "body": t.body, "urgent": "yes" if t.urgent else "no"}


__all__ = ["Difference", "diff_definitions"]
