"""The returned case's JSON values equal what the database gives back, with or without the
shortcut for flat objects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from icsflow.storage.written import as_stored

VALUES: list[Any] = [
    {}, {"a": "x", "b": 1, "c": True, "d": None, "e": 10**30, "f": "é\u2028\x00"},
    {"a": 1.5}, {"a": [1, 2]}, {"a": {"b": 1}}, {"a": (1, 2)}, {1: "int key"},
    {"a": float("inf")}, [], ["x"], "text", 3, None,
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_equal_to_a_json_round_trip(value: Any) -> None:
    stored = as_stored(value)
    assert stored == json.loads(json.dumps(value))
    assert type(stored) is type(json.loads(json.dumps(value)))
    if isinstance(value, dict):
        assert stored is not value  # a copy: the caller's dict is not shared


# -- with_changes: dataclasses.replace for the records the returned case is built from ------

def test_with_equals_dataclasses_replace_for_every_record_it_builds() -> None:
    from dataclasses import fields, replace
    from datetime import UTC, date, datetime

    from icsflow.storage.written import with_changes
    from icsflow.workflow.instance import DeadlineInfo, DeadlineStatus, HistoryEntry
    from icsflow.workflow.ports import InstanceRecord

    t = datetime(2012, 4, 29, 9, tzinfo=UTC)
    records: list[Any] = [
        InstanceRecord(id="c1", definition="alert", definition_version=1, ref="A-1",
                       state="alert", data={"x": 1}, row_version=1, created_at=t,
                       started_at=t, closed_at=None, child=None, family=None),
        HistoryEntry("start", None, "alert", "iro-1", "iro", t, t, None, {}),
        DeadlineInfo("response_due", date(2012, 5, 14), t, DeadlineStatus.LIVE, False),
    ]
    for record in records:
        # Every field is an init field held in __dict__: what with_changes relies on.
        assert set(vars(record)) == {f.name for f in fields(record) if f.init}
        name = fields(record)[1].name
        changed = {name: "changed"}
        assert with_changes(record, **changed) == replace(record, **changed)
        assert with_changes(record) == record and with_changes(record) is not record
