"""Scenario tests walk the shipped processes over the service's real 2011-12 calendar."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path

import pytest

from icsflow.workflow import Actor, Engine
from icsflow.workflow.clock import LONDON, FakeClock

DIRECTORY = {
    "iro_service_manager": ["ism@council.example"],
    "head_of_service": ["hos@council.example"],
    "director": ["director@council.example"],
    "admin": ["iro-admin@council.example"],
    "service_manager": ["service-managers@council.example"],
    "minute_manager": ["minutes@council.example"],
}


def at(day: str, hour: int = 10) -> datetime:
    """A Europe/London time on ``day`` (YYYY-MM-DD)."""
    return datetime.combine(date.fromisoformat(day), time(hour), LONDON)


class Case:
    """A little driver: the engine, one clock, and short verbs for the scenario's steps."""

    def __init__(self, engine: Engine, clock: FakeClock) -> None:
        self.engine = engine
        self.clock = clock

    def start(self, name: str, ref: str, role: str, day: str, **data: object):  # noqa: ANN201
        self.clock.set(at(day))
        return self.engine.start(name, ref=ref, data=data, actor=Actor(f"{role}-1", role),
                                 at=at(day))

    def fire(self, inst_id: str, event: str, role: str, day: str, **data: object):  # noqa: ANN201
        self.tick(day)
        self.clock.set(at(day, 12))
        return self.engine.fire(inst_id, event, actor=Actor(f"{role}-1", role),
                                data=data or None, at=at(day, 12))

    def tick(self, day: str, hour: int = 0):  # noqa: ANN201
        now = at(day, hour)
        if now > self.clock.now():
            self.clock.set(now)
        return self.engine.tick(now=now)

    def outbox(self, inst_id: str) -> list:
        return [m for m in self.engine.outbox.list() if m.instance_id == inst_id]

    def templates(self, inst_id: str) -> list[str]:
        return [m.template for m in self.outbox(inst_id)]


@pytest.fixture()
def case(tmp_path: Path) -> Iterator[Case]:
    clock = FakeClock(at("2011-04-01"))
    engine = Engine.open(db=f"sqlite:///{tmp_path / 'scenario.db'}", clock=clock,
                         directory=DIRECTORY, admin_address="icsflow-admin@council.example")
    try:
        yield Case(engine, clock)
    finally:
        engine.close()
