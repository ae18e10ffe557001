"""The names a text reads, listed without Jinja2's code generator, are the names Jinja2 finds."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

from jinja2 import meta

from icsflow.definitions.expressions import ENV, undeclared_names
from icsflow.definitions.loader import load_paths
from icsflow.definitions.model import Expr, Template
from icsflow.definitions.registry import builtin_dir, examples_dir

HAND_WRITTEN = [
    "{{ data.x }} {{ loop }} {{ caller }}",
    "{% for d in deadlines %}{{ d }} {{ loop.index }} {{ other }}{% endfor %}{{ d }}",
    "{% set a = 1 %}{{ a }} {{ b }}",
    "{% if x %}{{ y | default(z) }}{% else %}{{ range(3) }}{% endif %}",
    "{% macro m(p) %}{{ p }} {{ q }}{% endmacro %}{{ m(1) }}",
    "{% with w = 2 %}{{ w }}{% endwith %}{{ w }}",
    "{{ (data.a ~ data['b']) if c else dict(e=f) }}",
    "{% filter upper %}{{ g }}{% endfilter %}",
]


def _texts(value: object) -> Iterator[str]:
    if isinstance(value, Expr):
        yield "{{ (" + value.text + ") }}"
    elif isinstance(value, Template):
        yield value.subject
        yield value.body
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _texts(getattr(value, f.name))
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _texts(item)


def _shipped() -> list[str]:
    found: set[str] = set()
    for folder in (builtin_dir(), examples_dir()):
        for definition in load_paths([Path(folder)]):
            found.update(_texts(definition))
    return sorted(found)


SHIPPED = _shipped()


def test_the_shipped_texts_are_many() -> None:
    assert len(SHIPPED) > 200


def test_the_names_listed_are_the_names_jinja_finds() -> None:
    differ = []
    for text in HAND_WRITTEN + SHIPPED:
        tree = ENV.parse(text)
        if undeclared_names(tree) != frozenset(meta.find_undeclared_variables(tree)):
            differ.append(text)
    assert differ == []
