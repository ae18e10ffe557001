"""Every declared field, sent to every transition of every shipped definition, from every
source state and by every role the transition admits: refused unless that event's ``set:``
names it for that role, and accepted (not refused for the field) when it does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from icsflow.definitions.model import DataField, Definition, FieldType
from icsflow.definitions.registry import DefinitionSet
from icsflow.workflow import Actor, Engine, FakeClock
from icsflow.workflow.clock import LONDON
from icsflow.workflow.errors import FieldNotSettable, WorkflowError

SHIPPED = DefinitionSet.load_default()
SAMPLE: dict[FieldType, Any] = {
    FieldType.STRING: "x-1", FieldType.TEXT: "some text", FieldType.DATE: "2012-01-10",
    FieldType.DATETIME: "2012-01-10T10:00:00+00:00", FieldType.INT: 1, FieldType.BOOL: True,
    FieldType.EMAIL: "someone@council.example"}


def sample(f: DataField) -> Any:
    return f.values[0] if f.type is FieldType.ENUM else SAMPLE[f.type]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    clock = FakeClock(datetime(2012, 1, 9, 10, tzinfo=LONDON))
    with Engine.open(f"sqlite:///{tmp_path / 'all.db'}", clock=clock,
                     directory={"admin": ["admin@council.example"]}) as e:
        yield e


def _allowed(defn: Definition, event: str, state: str, role: str) -> set[str]:
    return {rule.name for t in defn.transitions_for(event, state) if role in t.roles
            for rule in t.set}


@pytest.mark.parametrize("name", SHIPPED.names())
def test_every_field_to_every_transition_is_refused_unless_set(engine: Engine,
                                                               name: str) -> None:
    defn = SHIPPED.latest(name)
    start = {f.name: sample(f) for f in defn.data if f.required}
    case = engine.start(name, ref=f"ALL-{name}", data=start,
                        actor=Actor("starter", defn.start_roles[0]))
    sql = engine.store.engine  # type: ignore[attr-defined]
    refused = accepted = 0
    for t in defn.transitions:
        for state in dict.fromkeys(t.sources):
            for role in t.roles:
                allowed = _allowed(defn, t.event, state, role)
                for f in defn.data:
                    with sql.begin() as conn:  # put the case where the transition starts
                        conn.execute(text("UPDATE instances SET state = :s, closed_at = NULL "
                                          "WHERE id = :i"), {"s": state, "i": case.id})
                    try:
                        engine.fire(case.id, t.event, actor=Actor("someone", role),
                                    data={f.name: sample(f)})
                    except FieldNotSettable as exc:
                        assert f.name not in allowed, (t.event, state, role, f.name, str(exc))
                        assert exc.fields == [f.name] and set(exc.allowed) == allowed
                        refused += 1
                        continue
                    except WorkflowError:
                        pass  # refused for another reason (a condition, a missing field)
                    assert f.name in allowed, (t.event, state, role, f.name)
                    accepted += 1
    assert refused > 0 and refused + accepted == sum(
        len(dict.fromkeys(t.sources)) * len(t.roles) * len(defn.data) for t in defn.transitions)
