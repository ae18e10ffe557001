"""Conditions, recorded values and email templates are Jinja2, in a sandbox.

Managers already read ``{{ data.review_date }}`` in templates; the same language serves for
``when: data.review_date > deadlines.review_due`` and ``record: late_request: event_date >
deadlines.request_due``. The sandbox forbids attribute tricks, ``StrictUndefined`` turns a
misspelt name into an error instead of a silent blank, and the parsed tree lets validation name
every unknown variable, data field or deadline before a definition is published.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Names every expression and template may use. The engine fills them in (see workflow.context).
CONTEXT_NAMES: frozenset[str] = frozenset({
    "data",  # the case's data after the event's own fields are merged
    "deadlines",  # deadline name -> date (or aware datetime for hour-based ones)
    "ref",  # the case reference
    "instance_id",
    "definition",  # the definition's name
    "title",  # the definition's title
    "state",  # the current state (the new one once the transition happened)
    "previous_state",
    "event",  # the event being fired, if any
    "event_date",  # the local date the event really happened
    "event_at",  # the aware datetime the event really happened
    "today",  # local date "now" (the tick's now, or the event time)
    "now",
    "actor",  # {"id": ..., "role": ...}
    "note",
    "history",  # list of {"event","from","to","actor","role","at","note"}
    "deadline",  # in a timer's notification: {"name","due","working_days_left"}
    "timer",  # in a timer's notification: the timer's name
    "days_left",  # deadline name -> working days left (negative when overdue)
    # functions
    "working_days_between",  # (a, b) -> int, working days in (a, b]
    "add_working_days",  # (d, n) -> date
    "days_between",  # (a, b) -> int, calendar days
    "format_date",  # (d) -> "Wednesday 27 June 2012"
    "local_date",  # (d) -> the Europe/London date of a datetime (a date stays itself)
})

# Only a timer's own notification has these (the deadline it hangs off, and its name).
TIMER_ONLY_NAMES: frozenset[str] = frozenset({"deadline", "timer"})

# Only a reaction's ``when`` and ``set`` have these: the signal heard ({"name", "date", "at",
# "definition", "instance_id", "ref"}), the sending case's data, and the child's open cases by
# definition name (each a list of {"id", "ref", "state", "data", "started_on"}).
REACTION_NAMES: frozenset[str] = frozenset({"signal", "sender", "cases"})


class ExpressionError(ValueError):
    """An expression or template does not parse."""


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                        keep_trailing_newline=True)
    return env


ENV = _environment()


@dataclass(frozen=True)
class NamesUsed:
    """What an expression or template refers to, for validation."""

    variables: frozenset[str]  # top-level names not defined inside it
    data_fields: frozenset[str]  # X in data.X / data["X"]
    deadlines: frozenset[str]  # X in deadlines.X / deadlines["X"] / days_left.X


def _collect(tree: nodes.Template) -> NamesUsed:
    from jinja2 import meta

    variables = set(meta.find_undeclared_variables(tree))
    fields: set[str] = set()
    deadlines: set[str] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        key: Any
        if isinstance(node, nodes.Getattr):
            target, key = node.node, node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            target, key = node.node, node.arg.value
        else:
            continue
        if not isinstance(target, nodes.Name):
            continue
        if not isinstance(key, str):
            continue
        if target.name == "data":
            fields.add(key)
        elif target.name in ("deadlines", "days_left"):
            deadlines.add(key)
    return NamesUsed(frozenset(variables), frozenset(fields), frozenset(deadlines))


def expression_names(text: str) -> NamesUsed:
    """Parse an expression and list what it uses; ``ExpressionError`` if it does not parse."""
    try:
        tree = ENV.parse("{{ (" + text + ") }}")
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"expression {text!r} does not parse: {exc.message}") from None
    return _collect(tree)


def template_names(text: str) -> NamesUsed:
    """Parse a template and list what it uses; ``ExpressionError`` if it does not parse."""
    try:
        tree = ENV.parse(text)
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"template does not parse at its line {exc.lineno}: "
                              f"{exc.message}") from None
    return _collect(tree)


def _variables(source: str) -> frozenset[str] | None:
    """The names ``source`` (a whole template) reads from its context; None if it does not
    parse (the caller then hands over the whole context and lets Jinja2 report the error)."""
    from jinja2 import meta

    try:
        # Jinja2 leaves the environment's globals (range, dict, ...) out of the undeclared
        # names, but a context value of the same name would win over them: keep them too.
        return frozenset(meta.find_undeclared_variables(ENV.parse(source))) | ENV.globals.keys()
    except Exception:  # noqa: BLE001 - only an optimisation: fall back to the whole context
        return None


def template_variables(text: str) -> frozenset[str] | None:
    """Top-level names a template reads from its context (None if it does not parse)."""
    return _variables(text)


def expression_variables(text: str) -> frozenset[str] | None:
    """Top-level names an expression reads from its context (None if it does not parse)."""
    return _variables("{{ (" + text + ") }}")


def only(context: Mapping[str, Any], names: frozenset[str] | None) -> Mapping[str, Any]:
    """The part of ``context`` that ``names`` (from ``template_variables`` /
    ``expression_variables``) reads: Jinja2 copies every name it is given into each render's
    context, so handing over only the used ones is cheaper and gives the same result (a used
    name missing from ``context`` stays missing, and fails as before)."""
    if names is None:
        return context
    return {k: context[k] for k in names if k in context}


_COMPILED: dict[str, tuple[Callable[..., Any], frozenset[str] | None]] = {}


def evaluate(text: str, context: Mapping[str, Any]) -> Any:
    """Evaluate an expression against ``context`` (compiled once per text, then cached)."""
    cached = _COMPILED.get(text)
    if cached is None:
        try:
            expression = ENV.compile_expression(text, undefined_to_none=False)
        except TemplateSyntaxError as exc:
            raise ExpressionError(f"expression {text!r} does not parse: {exc.message}") from None
        cached = _COMPILED[text] = (expression, expression_variables(text))
    compiled, names = cached
    result = compiled(**only(context, names))
    if isinstance(result, Undefined):  # StrictUndefined only raises when used: make it raise now
        result._fail_with_undefined_error()
    return result


def render(text: str, context: Mapping[str, Any]) -> str:
    """Render a template string against ``context`` (errors propagate to the caller)."""
    return ENV.from_string(text).render(**context)


__all__ = ["CONTEXT_NAMES", "TIMER_ONLY_NAMES", "ENV", "ExpressionError", "NamesUsed",
           "expression_names", "template_names", "evaluate", "render", "template_variables",
           "expression_variables", "only"]
