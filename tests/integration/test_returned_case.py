"""``start`` and ``fire`` return the case as the transaction wrote it, built without reading it
back: it must be exactly what ``get`` then reads, on every store, for the shipped processes
(deadlines met and moved, timers cancelled and set, signals starting dual status)."""

from __future__ import annotations

from datetime import datetime, time

from engine_support import Backend, backend  # noqa: F401 - the fixture

from icsflow.definitions.registry import DefinitionSet
from icsflow.workflow import Actor, Engine, FakeClock
from icsflow.workflow.cli.demo import CASES, DIRECTORY, DOMAIN
from icsflow.workflow.clock import LONDON
from icsflow.workflow.errors import WorkflowError


def _at(day: str, hour: int) -> datetime:
    return datetime.combine(datetime.fromisoformat(day).date(), time(hour), LONDON)


def test_the_returned_case_is_the_case_as_stored(backend: Backend) -> None:  # noqa: F811
    clock = FakeClock(_at("2011-04-01", 0))
    engine: Engine = backend.open(clock, definitions=DefinitionSet.load_default(),
                                  directory=DIRECTORY, admin_address=f"admin@{DOMAIN}",
                                  sender=f"icsflow@{DOMAIN}")
    days: dict[str, list[tuple[str, object]]] = {}
    for c in CASES:
        days.setdefault(c.on, []).append(("start", c))
        for s in c.steps:
            days.setdefault(s.on, []).append(("step", (c, s)))
    ids: dict[str, str] = {}
    compared = 0
    try:
        for day in sorted(days):
            clock.set(_at(day, 7))
            engine.tick(now=_at(day, 7))
            for kind, item in days[day]:
                if kind == "start":
                    c = item
                    if c.auto:  # type: ignore[attr-defined]
                        continue
                    clock.set(_at(day, 10))
                    got = engine.start(c.definition, ref=c.ref, data=c.data,  # type: ignore
                                       actor=Actor("someone", c.role), at=_at(day, 10),  # type: ignore
                                       child=c.child)  # type: ignore[attr-defined]
                    ids[c.ref] = got.id  # type: ignore[attr-defined]
                else:
                    c, s = item  # type: ignore[misc]
                    clock.set(_at(day, 11))
                    if c.ref not in ids:
                        found = [i for i in engine.list(definition=c.definition, child=c.child)
                                 if not i.closed]
                        if not found:
                            continue
                        ids[c.ref] = found[0].id
                    try:
                        got = engine.fire(ids[c.ref], s.event, Actor("someone", s.role),
                                          data=s.data or None, at=_at(day, 11))
                    except WorkflowError:
                        continue
                stored = engine.get(got.id)
                assert got == stored, (day, got.ref, got.history[-1].event)
                assert got.to_json() == stored.to_json()
                compared += 1
    finally:
        engine.close()
    assert compared > 60
