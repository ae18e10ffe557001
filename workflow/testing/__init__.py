"""What a service embedding icsflow needs to test against it, with no database and no mail:
a clock that moves only when told (``FakeClock``), a channel that records what it was given
(``RecordingNotifier``), and an in-memory store behind the same ports as the SQL one
(``InMemoryStore``), on which the engine starts, fires, ticks and reads as on SQLite.

    from icsflow.workflow import Actor
    from icsflow.workflow.testing import FakeClock, in_memory_engine

    engine = in_memory_engine(clock=FakeClock(datetime(2012, 6, 1, 9, tzinfo=UTC)))
    case = engine.start("alert_dispute", ref="C-1", data={...}, actor=Actor("iro-1", "iro"))

The engine contract suite (``tests/integration/test_engine_contract.py``) runs on the in-memory
store as on SQLite and PostgreSQL, so what a test proves here holds there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, TypedDict, Unpack

from icsflow.notifiers.recording import RecordingNotifier
from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.catalogue import DefinitionsArg, load_definitions
from icsflow.workflow.clock import Clock, FakeClock
from icsflow.workflow.engine import Engine
from icsflow.workflow.policy import Policy
from icsflow.workflow.testing._outbox import InMemoryOutbox
from icsflow.workflow.testing._store import InMemoryChangeStore, InMemoryStore
from icsflow.workflow.testing._tables import DuplicateKey
from icsflow.workflow.testing._unit_of_work import InMemoryUnitOfWork


class EngineOptions(TypedDict, total=False):
    """``Engine``'s keyword options that ``in_memory_engine`` passes on as they are."""

    calendar: WorkingCalendar | None
    admin_address: str | None
    sender: str | None
    settings: Mapping[str, Any] | None
    register: bool
    timer_lease: timedelta
    policy: Policy | None
    pause_gc: bool


def in_memory_engine(definitions: DefinitionsArg = None, *, clock: Clock | None = None,
                     store: InMemoryStore | None = None,
                     directory: Mapping[str, Sequence[str]] | None = None,
                     **options: Unpack[EngineOptions]) -> Engine:
    """An ``Engine`` on an in-memory store (a new one unless ``store`` is given: pass the same
    store to open the engine again on the same cases). ``definitions`` as ``Engine.open``
    takes them (None: the shipped ones); ``options`` go to ``Engine`` (``calendar``,
    ``admin_address``, ``settings``, ``policy``...)."""
    return Engine(store if store is not None else InMemoryStore(),
                  load_definitions(definitions), clock=clock, directory=directory, **options)


__all__ = ["FakeClock", "RecordingNotifier", "InMemoryStore", "InMemoryUnitOfWork",
           "InMemoryOutbox", "InMemoryChangeStore", "DuplicateKey", "EngineOptions",
           "in_memory_engine"]
