"""The outbox's fast render gives exactly what Jinja2's own Template.render gives."""

from datetime import date

import pytest
from jinja2 import UndefinedError

from icsflow.definitions.expressions import render as jinja_render
from icsflow.workflow.outbox_queue import render as fast_render

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


def test_an_undefined_name_fails_the_same_way() -> None:
    with pytest.raises(UndefinedError) as fast:
        fast_render("{{ data.missing }}", CONTEXT)
    with pytest.raises(UndefinedError) as slow:
        jinja_render("{{ data.missing }}", CONTEXT)
    assert str(fast.value) == str(slow.value)


def test_a_runtime_error_propagates() -> None:
    with pytest.raises(ZeroDivisionError):
        fast_render("{{ 1 / 0 }}", CONTEXT)
