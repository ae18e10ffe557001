"""A JSON Schema for definition files, built from the loader's own tables.

Editors (VS Code with the YAML extension) use it for completion and hover help while a manager
types; the loader stays the judge (it checks names, references and reachability a schema
cannot). Which keys each kind of entry accepts, and which are required, come from
``keys.KEYS`` and ``keys.REQUIRED_KEYS``; the fixed choices (field types, rolls, timer
positions, anchors) from the model's enums. ``SHAPES`` only says what each key's value looks
like, and a test refuses a key the loader accepts that has no shape here.

The schema is never stricter than the loader: anything the loader accepts validates.
"""

from __future__ import annotations

import json
from importlib.resources.abc import Traversable
from typing import Any

from icsflow.definitions.keys import IDENTIFIER, KEYS, REQUIRED_KEYS
from icsflow.definitions.model import AnchorKind, FieldType, Roll, TimerPosition

SCHEMA_FILE = "definition.schema.json"  # shipped beside this module (package data)

Schema = dict[str, Any]


def _ci(word: str) -> str:
    """``days`` -> ``[dD][aA][yY][sS]``: the loader reads units in any case."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


_NAME_RE = IDENTIFIER.pattern
_NAME_BODY = _NAME_RE.strip("^$")
_DURATION_RE = (r"^\s*[0-9]+\s+(" + "|".join([
    _ci("working") + r"\s+" + _ci("day") + "[sS]?", _ci("day") + "[sS]?",
    _ci("week") + "[sS]?", _ci("month") + "[sS]?", _ci("hour") + "[sS]?"]) + r")\s*$")
_REF_KINDS = ("state", "field", "event", "deadline")
_ANCHOR_RE = (r"^\s*(entry|start|(" + "|".join(k.value for k in AnchorKind
                                                 if k.value in _REF_KINDS)
              + r")\s+" + _NAME_BODY + r")\s*$")


def _def(kind: str) -> str:
    return kind.replace(" ", "_")


def ref(kind: str) -> Schema:
    return {"$ref": f"#/$defs/{_def(kind)}"}


NAME: Schema = {"type": "string", "pattern": _NAME_RE}
TEXT: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}
WHOLE: Schema = {"type": "integer", "minimum": 1}
DURATION: Schema = {"type": "string", "pattern": _DURATION_RE,
                    "examples": ["10 working days", "5 days", "1 week", "1 month", "24 hours"]}
EXPRESSION: Schema = {"type": ["string", "number"]}
NAMES: Schema = {"anyOf": [TEXT, {"type": "array", "items": TEXT}, {"type": "null"}]}


def map_of(value: Schema) -> Schema:
    """A mapping of names (lower-case identifiers) to ``value``; empty is allowed."""
    return {"type": ["object", "null"], "propertyNames": {"pattern": _NAME_RE},
            "additionalProperties": value}


def list_of(value: Schema) -> Schema:
    return {"type": ["array", "null"], "items": value}


def one(*options: Schema, **extra: str) -> Schema:
    return {"anyOf": list(options), **extra}


def text(description: str) -> Schema:
    return {**TEXT, "description": description}


LABEL = text("What a person reads for it (pages, emails, reports); default: the name with "
             "spaces, first letter capital.")

# What each key's value looks like, with the hover text an editor shows. Kinds and keys are the
# loader's; a key missing here fails tests/unit/test_schema.py.
SHAPES: dict[str, dict[str, Schema]] = {
    "definition": {
        "name": {**NAME, "description": "The process name, e.g. alert_dispute."},
        "version": {**WHOLE, "description": "A whole number from 1. Cases keep the version "
                    "they started on: change it when you change a published file."},
        "title": text("A human title for lists and emails."),
        "description": text("What the process is for."),
        "roles": {**map_of(one({"type": "null"}, TEXT, ref("role"))),
                  "description": "Who takes part: name: {address: FIELD} or "
                                 "{directory: true}."},
        "start_roles": {**NAMES, "description": "Roles that may start a case (default: all)."},
        "data": {**map_of(ref("data field")), "description": "The case's data fields."},
        "initial": {**TEXT, "description": "The state a case starts in (not final)."},
        "states": {**map_of(one({"type": "null"}, ref("state"))), "minProperties": 1,
                   "description": "Every state a case can be in."},
        "transitions": {**list_of(ref("transition")),
                        "description": "The events that move a case, in the order tried."},
        "deadlines": {**map_of(ref("deadline")),
                      "description": "Working-day deadlines and the states they run in."},
        "timers": {**list_of(ref("timer")),
                   "description": "Reminders and automatic escalations."},
        "templates": {**map_of(ref("template")), "description": "Email templates (Jinja2)."},
        "signals": {**map_of(one({"type": "null"}, TEXT)),
                    "description": "Every signal this definition sends or hears: name: meaning."},
        "start_signals": {**one(TEXT, {"type": "array", "items": one(TEXT, ref("signal"))},
                                {"type": "null"}),
                          "description": "Signals told to the child's other cases when a case "
                                         "starts."},
        "reference_prefix": {"type": "string", "pattern": "^[A-Z][A-Z0-9]{0,9}$",
                             "description": "A case a signal starts is referenced PREFIX-<child> "
                                            "(-2, -3 for later spells); default: the initials "
                                            "of the name."},
        "reactions": {**list_of(ref("reaction")),
                      "description": "What this definition does when the child's other cases "
                                     "send a signal: start itself or fire an event."},
    },
    "role": {
        "label": LABEL,
        "description": text("Who this role is."),
        "address": text("A data field of type email holding this person's address."),
        "directory": {**BOOL, "description": "A service-level role whose addresses come from "
                      "the configuration's directory."},
    },
    "data field": {
        "type": {"enum": [t.value for t in FieldType], "description": "The value's type."},
        "required": {**BOOL, "description": "A case cannot start without it."},
        "label": LABEL,
        "values": {**list_of(EXPRESSION), "description": "The choices of an enum field."},
        "labels": {"type": ["object", "null"], "additionalProperties": TEXT,
                   "description": "What a person reads for each value of an enum: VALUE: label."},
        "description": text("What the field holds."),
        "readonly": {**BOOL, "description": "Given at the start only: no transition may set or "
                     "record it afterwards."},
    },
    "state": {
        "label": LABEL,
        "description": text("What the state means."),
        "final": {**BOOL, "description": "true ends the case."},
    },
    "transition": {
        "event": {**NAME, "description": "The event's name."},
        "label": LABEL,
        "from": {**NAMES, "description": 'One state, a list, or "*" (every state not final).'},
        "to": text("The new state; leave it out for an event that only records something."),
        "roles": {**NAMES, "description": "Who may fire it; none for a timer-only event."},
        "when": {**one(EXPRESSION, {"type": "array", "items": EXPRESSION}),
                 "description": "A condition, or a list that must all hold."},
        "set": {**one({"type": "array", "items": TEXT},
                      {"type": "object", "additionalProperties": {
                          "enum": ["required", "optional"]}}, {"type": "null"}),
                "description": "Data the event carries: {field: required|optional} or a list "
                               "(all required)."},
        "record": {"type": ["object", "null"], "additionalProperties": EXPRESSION,
                   "description": "field: expression pairs stored in the case's data."},
        "notify": {**list_of(ref("notify")), "description": "Emails sent after the change."},
        "description": text("What the event means."),
        "signal": {**one(TEXT, ref("signal"), {"type": "array", "items": one(TEXT, ref("signal"))},
                         {"type": "null"}),
                   "description": "Signals told to the child's other cases when it is taken: a "
                                  "name, {signal: NAME, when: EXPR}, or a list."},
    },
    "signal": {
        "signal": {**NAME, "description": "A signal declared in signals."},
        "when": {**EXPRESSION, "description": "Send it only if this condition holds."},
    },
    "reaction": {
        "signal": {**NAME, "description": "The signal heard (declared in signals)."},
        "start": {**BOOL, "description": "Start a case of this definition (if the child has no "
                  "open one)."},
        "fire": text("Or fire this event, as the system, on the child's open cases."),
        "when": {**one(EXPRESSION, {"type": "array", "items": EXPRESSION}),
                 "description": "Conditions (may read signal, sender, cases)."},
        "set": {"type": ["object", "null"], "additionalProperties": EXPRESSION,
                "description": "field: expression: the started case's data."},
        "description": text("What the reaction means."),
    },
    "notify": {
        "to": {**NAMES, "description": "Roles to email (each needs address or directory)."},
        "template": text("The template's name."),
        "when": {**EXPRESSION, "description": "Send only if this condition holds."},
    },
    "deadline": {
        "label": LABEL,
        "live_in": {**NAMES, "description": "The states in which the deadline runs."},
        "anchor": {"type": "string", "pattern": _ANCHOR_RE,
                   "description": "entry, start, state NAME, field NAME, event NAME or "
                                  "deadline NAME (default entry)."},
        "after": {**DURATION, "description": "Due this long after the anchor."},
        "before": {**DURATION, "description": "Due this long before the anchor."},
        "roll": {"enum": [r.value for r in Roll],
                 "description": "Move a date on a non-working day forward or backward."},
        "cancelled_by": {**NAMES, "description": "Events that cancel it rather than meet it."},
        "met_by": {**NAMES, "description": "The only events that meet it, where they happen; "
                   "leaving its states otherwise cancels it."},
        "description": text("What the deadline is for."),
        "kind": {"enum": ["deadline", "marker"],
                 "description": "marker: a date the case tracks (monitoring from, a birthday), "
                                "with timers, but never due, overdue, met or breached."},
        "rules": {"type": "array", "items": ref("deadline rule"),
                  "description": "Alternatives: the first rule whose when holds is used."},
    },
    "deadline rule": {
        "when": {**EXPRESSION, "description": "Use this rule if the condition holds."},
        "anchor": {"type": "string", "pattern": _ANCHOR_RE,
                   "description": "entry, start, state NAME, field NAME, event NAME or "
                                  "deadline NAME (default entry)."},
        "after": {**DURATION, "description": "Due this long after the anchor."},
        "before": {**DURATION, "description": "Due this long before the anchor."},
    },
    "timer": {
        "name": {**NAME, "description": "The timer's name."},
        "deadline": text("Runs while this deadline is live."),
        "state": text("Runs while the case stays in this state."),
        "before": {**DURATION, "description": "Fires this long before the deadline's date."},
        "after": {**DURATION, "description": "Fires this long after the deadline's date, or "
                  "after entering the state."},
        "at": {"enum": [p.value for p in TimerPosition
                        if p in (TimerPosition.DUE, TimerPosition.BREACH)],
               "description": "due: the morning of the due date; breach: when it is missed."},
        "notify": {**list_of(ref("notify")), "description": "Reminder emails."},
        "fire": text("An event to fire (an automatic escalation)."),
        "repeat": {**ref("repeat"), "description": "Repeat after each firing."},
        "description": text("What the timer does."),
    },
    "repeat": {
        "every": {**DURATION, "description": "How long between firings."},
        "max": {**WHOLE, "description": "Firings in all (required, from 1)."},
    },
    "template": {
        "subject": text("The email subject (Jinja2)."),
        "body": text("The email body (Jinja2)."),
        "urgent": {**BOOL, "description": "Urgent emails ignore office hours."},
        "description": text("What the email is for."),
    },
}

_UNDESCRIBED: Schema = {"description": "(not described in the schema yet)"}


def _kind_schema(kind: str) -> Schema:
    shapes = SHAPES.get(kind, {})
    return {
        "type": "object",
        "properties": {key: shapes.get(key, _UNDESCRIBED) for key in KEYS[kind]},
        "required": list(REQUIRED_KEYS.get(kind, ())),
        "additionalProperties": False,
    }


def definition_schema() -> Schema:
    """The JSON Schema (draft 2020-12) of one definition file."""
    defs = {_def(kind): _kind_schema(kind) for kind in KEYS if kind != "definition"}
    top = _kind_schema("definition")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "icsflow process definition",
        "description": "A process of the Independent Chair Service: states, events, roles, "
                       "working-day deadlines and timers. `icsflow validate` is the full check.",
        **top,
        "$defs": defs,
    }


def schema_text() -> str:
    """The schema as the shipped file holds it (two-space indent, final newline)."""
    return json.dumps(definition_schema(), indent=2) + "\n"


def shipped_schema_path() -> Traversable:
    """The schema file installed with the package (for editors: a local $schema path)."""
    from importlib.resources import files

    return files("icsflow.definitions").joinpath(SCHEMA_FILE)


__all__ = ["SHAPES", "SCHEMA_FILE", "definition_schema", "schema_text",
           "shipped_schema_path"]
