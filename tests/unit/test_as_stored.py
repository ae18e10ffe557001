"""The returned case's JSON values equal what the database gives back, with or without the
shortcut for flat objects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from icsflow.storage.repository import _as_stored

VALUES: list[Any] = [
    {}, {"a": "x", "b": 1, "c": True, "d": None, "e": 10**30, "f": "é\u2028\x00"},
    {"a": 1.5}, {"a": [1, 2]}, {"a": {"b": 1}}, {"a": (1, 2)}, {1: "int key"},
    {"a": float("inf")}, [], ["x"], "text", 3, None,
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_equal_to_a_json_round_trip(value: Any) -> None:
    stored = _as_stored(value)
    assert stored == json.loads(json.dumps(value))
    assert type(stored) is type(json.loads(json.dumps(value)))
    if isinstance(value, dict):
        assert stored is not value  # a copy: the caller's dict is not shared
