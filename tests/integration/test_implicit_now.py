# ruff: noqa: F811 - pytest fixtures imported from engine_support are used as arguments
"""An event given no time takes the later of now and the case's last event: an implicit now is
never refused as backdated, so concurrent clicks (or two servers whose clocks are a few
milliseconds apart) give one winner and clean conflict or not-allowed answers for the rest."""

from __future__ import annotations

import threading
from datetime import timedelta

from engine_support import (  # noqa: F401 - fixtures
    IRO,
    START_DATA,
    TM,
    Backend,
    backend,
    clock,
    engine,
)

from icsflow.workflow import Engine, FakeClock
from icsflow.workflow.errors import ConcurrencyConflict, InvalidTransition, ValidationError


def test_an_event_without_a_time_after_a_later_recorded_event_takes_that_time(
        engine: Engine, clock: FakeClock) -> None:
    inst = engine.start("alert", ref="C-1", data=START_DATA, actor=IRO)
    later = clock.now() + timedelta(milliseconds=40)  # another server's clock, a little ahead
    engine.fire(inst.id, "escalate", actor=IRO, at=later)
    closed = engine.fire(inst.id, "close", actor=IRO)  # this server's now is before it
    assert closed.state == "resolved"
    assert closed.history[-1].at == later


def test_an_explicit_time_before_the_last_event_is_still_refused(engine: Engine,
                                                                 clock: FakeClock) -> None:
    inst = engine.start("alert", ref="C-1", data=START_DATA, actor=IRO)
    engine.fire(inst.id, "escalate", actor=IRO, at=clock.now() + timedelta(hours=1))
    try:
        engine.fire(inst.id, "close", actor=IRO, at=clock.now())
    except ValidationError as exc:
        assert "before the case's last recorded event" in str(exc)
    else:
        raise AssertionError("a backdated explicit time was accepted")


def test_six_threads_firing_one_event_give_one_winner_and_clean_refusals(
        backend: Backend, engine: Engine, clock: FakeClock) -> None:
    """Six web workers on one database, their clocks a few milliseconds apart, each firing
    ``close`` on the same case without a time, as concurrent clicks do."""
    inst = engine.start("alert", ref="C-1", data=START_DATA, actor=IRO)
    engine.fire(inst.id, "escalate", actor=IRO)
    servers = [backend.open(FakeClock(clock.now() + timedelta(milliseconds=5 * (5 - k))))
               for k in range(6)]
    barrier = threading.Barrier(6)
    outcomes: list[object] = []
    lock = threading.Lock()

    def click(server: Engine) -> None:
        barrier.wait()
        try:
            result: object = server.fire(inst.id, "close", actor=IRO).state
        except Exception as exc:  # noqa: BLE001 - the test sorts every outcome below
            result = exc
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=click, args=(s,)) for s in servers]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for s in servers:
            s.close()
    winners = [o for o in outcomes if o == "resolved"]
    losers = [o for o in outcomes if o != "resolved"]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, (ConcurrencyConflict, InvalidTransition)) for o in losers), losers
    assert [h.event for h in engine.get(inst.id).history].count("close") == 1
