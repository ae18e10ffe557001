"""Texts that cannot loop run without the time budget's tracer; every other text keeps it."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from icsflow.definitions import expressions
from icsflow.definitions.expressions import ENV, evaluate, is_straight, render
from icsflow.definitions.registry import DefinitionSet
from icsflow.workflow.catalogue import definition_texts as _texts

STRAIGHT_TEMPLATES = [
    "Alert {{ ref }} due {{ format_date(deadlines.response_due) }}",
    "{% if data.response %}Answer: {{ data.response }}{% else %}none yet{% endif %}\n",
    "{{ days_left.review_due }} working days, {{ durations.formal_due }}",
    "{{ format_date(history[0].at) }} {{ data['concern'] }} {{ -1 }} {{ (1, 2) }}",
]
LOOPING_TEMPLATES = [
    "{% for h in history %}{{ h.event }}{% endfor %}",
    "{% macro m() %}x{% endmacro %}{{ m() }}",
    "{% set s = 'ab' %}{{ s }}",
    "{{ data.concern | upper }}",  # a filter not on the bounded list
    "{{ range(3) }}",  # a call of a name not on the bounded list
    "{{ 'x' * 3 }}",  # repetition
    "{{ 'a' ~ 'b' }}",  # concatenation
    "{{ data.x[1:] }}",  # a slice
    "{{ 'a'.upper() }}",  # a method call
    "{{ format_date(*data.args) }}",  # spread arguments
]
STRAIGHT_EXPRESSIONS = [
    "data.review_date > deadlines.review_due",
    "local_date(data.held_at) if data.plan_made else none",
    "(data.reviews_held or 0) + 1",
    "working_days_between(history[0].at, event_date)",
    "cases.initial_review | length > 0",
    "not data.plan_made and data.x is none",
]
LOOPING_EXPRESSIONS = [
    "cases.cp_conference | selectattr('data.plan_live') | list | length > 0",
    "caseload('iro_id', data.iro_id) < 70",
    "range(100000) | select('odd') | list | length > 1",
    "data.x is divisibleby(3)",
    "data.x in data.y",
]


@pytest.mark.parametrize("text", STRAIGHT_TEMPLATES)
def test_templates_without_a_loop_are_straight(text: str) -> None:
    assert is_straight(ENV.parse(text))


@pytest.mark.parametrize("text", LOOPING_TEMPLATES)
def test_templates_that_may_loop_or_call_anything_are_not(text: str) -> None:
    assert not is_straight(ENV.parse(text))


@pytest.mark.parametrize("text", STRAIGHT_EXPRESSIONS)
def test_expressions_without_a_loop_are_straight(text: str) -> None:
    assert is_straight(ENV.parse("{{ (" + text + ") }}"))


@pytest.mark.parametrize("text", LOOPING_EXPRESSIONS)
def test_expressions_that_may_loop_are_not(text: str) -> None:
    assert not is_straight(ENV.parse("{{ (" + text + ") }}"))


@contextmanager
def _budget_refused(seconds: float | None = None) -> Iterator[None]:
    raise AssertionError("the time budget was used")
    yield


def test_a_straight_text_runs_without_the_budget_and_any_other_with_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(expressions, "time_budget", _budget_refused)
    context = {"ref": "C-9", "data": {"n": 2}, "format_date": str}
    assert render("Case {{ ref }} / {{ data.n + 1 }}", context) == "Case C-9 / 3"
    assert evaluate("data.n + 1 > 2", context) is True
    with pytest.raises(AssertionError, match="budget was used"):
        render("{% for i in range(2) %}{{ i }}{% endfor %} {{ ref }}", context)
    with pytest.raises(AssertionError, match="budget was used"):
        evaluate("range(3) | list | length > data.n", context)


def test_most_texts_of_the_shipped_processes_are_straight() -> None:
    """What the tick renders and evaluates most runs without the budget; the few that call
    something not known to be bounded (``caseload``, ``next_weekday``, a method) keep it."""
    shipped = DefinitionSet.load_default()
    texts = [t for name in shipped.names() for t in _texts(shipped.latest(name))]
    looping = [text for text, is_template in texts
               if not is_straight(ENV.parse(text if is_template else "{{ (" + text + ") }}"))]
    assert len(texts) > 100
    assert 1 <= len(looping) <= len(texts) // 10, looping
