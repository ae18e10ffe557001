"""The sandbox bounds numbers, text and time, whatever a definition's expression says."""

from __future__ import annotations

import time

import pytest

from icsflow.definitions import expressions
from icsflow.definitions.expressions import (
    LimitExceeded,
    constant_limit_problems,
    evaluate,
    render,
    safe_binop,
)


@pytest.mark.parametrize("text", [
    "{{ 9**(9**9) }}", "{{ 2**1000 }}", "{{ 'x' * 1000000000 }}", "{{ [0] * 10**9 }}",
    "{{ '%999999999d' % 1 }}", "{{ '%*d' % (999999999, 1) }}", "{{ '{:999999999}'.format(1) }}",
    "{{ '{:{w}}'.format(1, w=999999999) }}", "{{ 'x'|center(999999999) }}",
    "{{ '%999999999d'|format(1) }}", "{{ ('x' * 90000) + ('y' * 90000) }}",
    "{{ ['x' * 100000] * 100000 }}", "{{ 'x'.ljust(999999999) }}", "{{ 'x'.zfill(999999999) }}",
    "{{ ('a' * 100000).replace('a', 'bb' * 1000) }}", "{{ 'ab'.replace('', 'x' * 100000) }}",
    "{{ ('\t' * 100000).expandtabs(100000) }}", "{{ ('x' * 50000).join(range(50000)|list) }}",
    "{{ (range(50000)|list)|join('x' * 50000) }}", "{{ ('a' * 100000)|replace('a', 'b' * 9) }}",
    "{{ ('a' * 100000)|wordwrap(1, wrapstring='x' * 100000) }}",
])
def test_oversized_results_are_refused_before_they_are_built(text):
    started = time.perf_counter()
    with pytest.raises(LimitExceeded):
        render(text, {})
    assert time.perf_counter() - started < 1.0


def test_conditions_are_bounded_too():
    with pytest.raises(LimitExceeded, match="power too large"):
        evaluate("9**(9**9) > 0", {})


def test_ordinary_arithmetic_and_formatting_still_work():
    assert evaluate("2**10 + 3 * 4 - 10 % 3", {}) == 1035
    assert render("{{ '%05d|%-3s|%.2f' % (7, 'a', 2.5) }} {{ '{:>4}'.format('b') }} "
                  "{{ 'c'|center(5) }} {{ [1] * 3 }} {{ 'ab' * 2 }} {{ 1.5 ** 2 }}", {}) \
        == "00007|a  |2.50    b   c   [1, 1, 1] abab 2.25"
    assert render("{{ 'a-b'.replace('-', '+') }} {{ ['a', 'b']|join(', ') }} "
                  "{{ ', '.join(['c', 'd']) }} {{ 'x'.ljust(3) }}| {{ 'abc'|replace('b', 'B') }} "
                  "{{ 'hello world'|wordwrap(5) }}", {}) == "a+b a, b c, d x  | aBc hello\nworld"
    assert safe_binop("**", 2, -1) == 0.5


@pytest.mark.parametrize("text", [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% set s = 'ab' * 50000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
])
def test_a_render_that_runs_too_long_is_stopped(text, monkeypatch):
    monkeypatch.setattr(expressions, "TIME_BUDGET_SECONDS", 0.2)
    started = time.perf_counter()
    with pytest.raises(LimitExceeded, match="time budget"):
        render(text, {})
    assert time.perf_counter() - started < 2.0


def test_the_budget_puts_back_the_tracer_it_found():
    import sys

    before = sys.gettrace()
    render("{{ 1 + 1 }}", {})
    assert sys.gettrace() is before


def test_constant_parts_are_checked_at_validation():
    assert constant_limit_problems("9**(9**9) > 0", expression=True) == [
        "power too large (9 ** 387420489)"]
    assert constant_limit_problems("data.x ** 2 > 1", expression=True) == []
    assert constant_limit_problems("{{ 1 / 0 }}", expression=False) == []
