"""Case data is converted by the definition's field types, and refused naming the field."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from icsflow.definitions.loader import load_text
from icsflow.workflow.data import convert, parse_assignments, require, to_json_value, to_python
from icsflow.workflow.errors import ValidationError

DEFN = load_text("""
name: d
version: 1
title: D
description: fields of every type
roles: {iro: {}}
start_roles: [iro]
data:
  s: {type: string}
  t: {type: text}
  d: {type: date}
  dt: {type: datetime}
  n: {type: int}
  b: {type: bool}
  e: {type: email}
  k: {type: enum, values: [one, two]}
initial: a
states: {a: {}, z: {final: true}}
transitions:
  - {event: go, from: a, to: z, roles: [iro]}
""", "d.yaml")


@pytest.mark.parametrize("field, given, stored", [
    ("s", 12, "12"),
    ("d", "2012-06-27", "2012-06-27"),
    ("d", date(2012, 6, 27), "2012-06-27"),
    ("dt", "2012-06-27T10:00+00:00", "2012-06-27T10:00:00+00:00"),
    ("dt", "2012-06-27T10:00", "2012-06-27T10:00:00+01:00"),  # naive means Europe/London
    ("n", "42", 42), ("n", 7, 7),
    ("b", "yes", True), ("b", "false", False), ("b", True, True), ("b", "No", False),
    ("e", "tm@example.org", "tm@example.org"),
    ("k", "two", "two"),
])
def test_values_are_converted_to_their_stored_form(field: str, given: object,
                                                   stored: object) -> None:
    assert convert(DEFN, {field: given}) == {field: stored}


@pytest.mark.parametrize("field, given", [
    ("d", "27/06/2012"), ("d", datetime(2012, 6, 27, tzinfo=UTC)),
    ("dt", "yesterday"), ("n", "1.5"), ("n", True), ("b", "perhaps"),
    ("e", "not an address"), ("e", "a@b"), ("k", "three"), ("s", ["x"]),
])
def test_wrong_values_are_refused_naming_the_field(field: str, given: object) -> None:
    with pytest.raises(ValidationError) as err:
        convert(DEFN, {field: given})
    assert err.value.field == field and repr(field) in str(err.value)


def test_unknown_field_is_refused_with_the_declared_ones() -> None:
    with pytest.raises(ValidationError, match="declared fields: b, d, dt, e, k, n, s, t"):
        convert(DEFN, {"zz": 1})


def test_required_fields_must_be_present_and_not_empty() -> None:
    with pytest.raises(ValidationError, match="'s' is required"):
        require(DEFN, {"s": ""}, ["s"], "to start d")
    require(DEFN, {"s": "x"}, ["s"], "to start d")


def test_cli_assignments_are_converted_by_type() -> None:
    assert parse_assignments(DEFN, ["n=3", "b=yes", "s=a=b"]) == {"n": 3, "b": True,
                                                                   "s": "a=b"}
    with pytest.raises(ValidationError, match="KEY=VALUE"):
        parse_assignments(DEFN, ["novalue"])


def test_expressions_see_real_dates_and_every_declared_field() -> None:
    py = to_python(DEFN, {"d": "2012-06-27", "dt": "2012-06-27T10:00:00+01:00"})
    assert py["d"] == date(2012, 6, 27)
    assert py["dt"].utcoffset() == timedelta(hours=1)
    assert py["n"] is None and set(py) >= {"s", "t", "b", "e", "k"}


def _to_python_field_by_field(stored: dict[str, object]) -> dict[str, object]:
    """The rule spelled out field by field: the reference for the quicker ``to_python``."""
    result: dict[str, object] = {}
    for f in DEFN.data:
        value = stored.get(f.name)
        if isinstance(value, str) and f.type.value in ("date", "datetime"):
            try:
                value = (date.fromisoformat(value) if f.type.value == "date"
                         else datetime.fromisoformat(value))
            except ValueError:
                pass
        result[f.name] = value
    for k, v in stored.items():
        result.setdefault(k, v)
    return result


@pytest.mark.parametrize("stored", [
    {},
    {"d": "2012-06-27", "dt": "2012-06-27T10:00:00+01:00", "n": 3},
    {"zz": 1, "d": "not a date", "dt": None, "aa": [1], "s": "x"},  # undeclared, kept in order
    {"d": date(2012, 6, 27), "dt": 5, "k": "one"},  # not text: left as it is
])
def test_to_python_equals_the_field_by_field_rule(stored: dict[str, object]) -> None:
    got = to_python(DEFN, stored)
    want = _to_python_field_by_field(stored)
    assert got == want
    assert list(got) == list(want)  # same order: declared fields first, then the others


def test_recorded_values_are_stored_as_json() -> None:
    assert to_json_value(date(2012, 1, 2)) == "2012-01-02"
    assert to_json_value({"a": [date(2012, 1, 2), 1]}) == {"a": ["2012-01-02", 1]}
