"""The sandbox's cached render (used for every email) gives exactly what Jinja2's own
``Template.render`` gives, and keeps the time budget."""

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from jinja2 import UndefinedError

from icsflow.definitions.expressions import ENV, LimitExceeded, evaluate
from icsflow.definitions.expressions import render as fast_render


def jinja_render(text: str, context: dict[str, object]) -> str:
    """Jinja2's own path in the same sandboxed environment: the reference."""
    return ENV.from_string(text).render(**context)

CONTEXT = {
    "ref": "C-1", "data": {"concern": "Plan drift", "iro_email": None},
    "deadlines": {"response_due": date(2012, 1, 5)},
    "history": [{"event": "start"}, {"event": "respond"}],
    "format_date": lambda d: d.strftime("%A %-d %B %Y"), "state": "alert",
}

TEMPLATES = [
    "Alert {{ ref }} due {{ format_date(deadlines.response_due) }}",
    "{% for h in history %}{{ loop.index }}:{{ h.event }} {% endfor %}",
    "{{ data.concern | upper }} {{ data.iro_email or 'no address' }}",
    "{% if state == 'alert' %}open{% else %}closed{% endif %}\n",
    "{{ range(3) | list }} {{ dict(a=1) }}",  # Jinja2's globals
]


@pytest.mark.parametrize("template", TEMPLATES)
def test_fast_render_matches_template_render(template: str) -> None:
    assert fast_render(template, CONTEXT) == jinja_render(template, CONTEXT)


def test_a_context_value_shadows_a_global_in_both() -> None:
    context = {**CONTEXT, "range": "shadowed"}
    assert fast_render("{{ range }}", context) == jinja_render("{{ range }}", context) == \
        "shadowed"


def test_a_runtime_error_propagates() -> None:
    with pytest.raises(ZeroDivisionError):
        fast_render("{{ 1 / 0 }}", CONTEXT)


@pytest.mark.parametrize("template", [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% set s = 'ab' * 50000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
])
def test_a_looping_template_is_stopped_by_the_time_budget(
        template: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every email is rendered on this path: it must keep the sandbox's time budget (without
    it a definition that validates hung ``fire`` for ever)."""
    import time

    from icsflow.definitions import expressions

    monkeypatch.setattr(expressions, "TIME_BUDGET_SECONDS", 0.2)
    started = time.perf_counter()
    with pytest.raises(expressions.LimitExceeded, match="time budget"):
        fast_render(template, CONTEXT)
    assert time.perf_counter() - started < 2.0


def test_a_looping_template_fails_its_email_not_the_case(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from icsflow.definitions import expressions
    from icsflow.definitions.loader import load_text
    from icsflow.workflow.instance import OutboxStatus
    from icsflow.workflow.outbox_queue import queue

    monkeypatch.setattr(expressions, "TIME_BUDGET_SECONDS", 0.2)
    defn = load_text("""
name: loopy
version: 1
title: Loopy
description: a body that loops for ever
roles:
  desk: {directory: true}
start_roles: [desk]
initial: a
states:
  a: {}
  b: {final: true}
transitions:
  - event: go
    from: a
    to: b
    roles: [desk]
    notify: [{to: [desk], template: t}]
templates:
  t:
    subject: "Case {{ ref }}"
    body: "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
""", "loopy.yaml")
    rows = queue(defn, defn.transitions[0].notify, CONTEXT, key="k", instance_id="i",
                 directory={"desk": ["desk@example.org"]}, admin_address="admin@example.org")
    assert [r.status for r in rows] == [OutboxStatus.FAILED, OutboxStatus.PENDING]
    assert "time budget" in (rows[0].last_error or "")
    assert rows[1].recipients == ("admin@example.org",)


# -- expressions: the cached evaluate against Jinja2's own compiled expression ---------------

EXPRESSIONS = [
    "deadlines.response_due > data.meeting",
    "data.concern | upper",
    "history | length >= 2 and state == 'alert'",
    "range(3) | list",  # a Jinja2 global
    "history | map(attribute='event') | list",
    "data.iro_email",  # None stays None
]


def jinja_evaluate(text: str, context: dict[str, object]) -> object:
    return ENV.compile_expression(text, undefined_to_none=False)(**context)


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_evaluate_matches_jinja_compile_expression(text: str) -> None:
    context = {**CONTEXT, "data": {**CONTEXT["data"], "meeting": date(2012, 1, 1)}}  # type: ignore[dict-item]
    assert evaluate(text, context) == jinja_evaluate(text, context)


def test_evaluate_a_context_value_shadows_a_global() -> None:
    assert evaluate("range", {"range": 7}) == jinja_evaluate("range", {"range": 7}) == 7


@pytest.mark.parametrize(("ours", "jinja", "text"), [
    (fast_render, jinja_render, "{{ data.missing }}"),
    (evaluate, jinja_evaluate, "data.missing + 1"),
], ids=["render", "evaluate"])
def test_an_undefined_name_fails_the_same_way(ours: Callable[[str, Any], object],
                                              jinja: Callable[[str, Any], object],
                                              text: str) -> None:
    with pytest.raises(UndefinedError) as fast:
        ours(text, CONTEXT)
    with pytest.raises(UndefinedError) as slow:
        jinja(text, CONTEXT)
    assert str(fast.value) == str(slow.value)


def test_evaluate_a_looping_expression_is_stopped_by_the_time_budget(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import icsflow.definitions.expressions as expressions

    monkeypatch.setattr(expressions, "TIME_BUDGET_SECONDS", 0.05)
    looping = "range(100000) | select('odd') | select('odd') | list | length > 1"
    with pytest.raises(LimitExceeded, match="time budget"):
        evaluate(looping, CONTEXT)
