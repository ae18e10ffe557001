"""Several workers, random claim orders, some killed part-way: the verdicts and the reminders are
those of one worker firing every timer in due order (docs/engine.md, "Timers under several
workers").

A killed worker is simulated faithfully for the database: it claims a batch (its claims are
committed), fires some of it, and dies inside its batch transaction, which rolls back and leaves
its leases standing until they run out.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from icsflow.definitions.registry import DefinitionSet
from icsflow.workflow import Actor, Engine, FakeClock
from icsflow.workflow.clock import LONDON
from icsflow.workflow.engine import TIMER_LEASE
from icsflow.workflow.instance import TickResult
from icsflow.workflow.ports import Snapshot, TimerRecord, UnitOfWork
from icsflow.workflow.ticking import Ticker

DEFS = DefinitionSet.load_default()
DIRECTORY = {"iro_service_manager": ["ism@council.example"],
             "head_of_service": ["hos@council.example"],
             "director": ["director@council.example"], "admin": ["admin@council.example"]}
DATA = {"team_manager_email": "tm@council.example", "iro_email": "iro@council.example",
        "service_manager_email": "sm@council.example", "concern": "Plan drift"}
IRO = Actor("iro-1", "iro")
TM = Actor("tm-1", "team_manager")
STARTED = datetime(2011, 12, 19, 10, tzinfo=LONDON)
NOW = datetime(2012, 1, 6, 12, tzinfo=UTC)  # response_due 2012-01-05: every case is past it
LATER = datetime(2012, 1, 20, 12, tzinfo=UTC)  # stage 1 timers of the escalated cases too


class _Killed(BaseException):
    """kill -9: nothing after it runs, the open transaction is lost."""


class DyingTicker(Ticker):
    """A ticker that dies after ``fuse`` firings, inside its batch transaction."""

    fuse = 0

    def _fire_once(self, uow: UnitOfWork, t: TimerRecord, now: datetime, owner: str,
                   result: TickResult, cache: dict[str, Snapshot] | None = None,
                   ) -> list[TimerRecord]:
        if self.fuse <= 0:
            raise _Killed()
        self.fuse -= 1
        return super()._fire_once(uow, t, now, owner, result, cache)


class DyingEngine(Engine):
    """An engine whose ticker dies after ``fuse`` firings."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ticker = self.dying = DyingTicker(self.store, self.planner, self.clock,
                                               policy=self.policy)

    @property
    def fuse(self) -> int:
        return self.dying.fuse

    @fuse.setter
    def fuse(self, value: int) -> None:
        self.dying.fuse = value


def _open(url: str, clock: FakeClock, cls: type[Engine] = Engine) -> Engine:
    return cls.open(url, definitions=DEFS, clock=clock, migrate=True, directory=DIRECTORY)


def _populate(engine: Engine, clock: FakeClock, cases: int) -> None:
    """Cases that answer at different moments: never, early, after the reminder, on the due
    date, after it (the answer is recorded before any tick, as a backlog would be)."""
    clock.set(STARTED)
    for n in range(cases):
        inst = engine.start("alert_dispute", ref=f"A-{n}", data=DATA, actor=IRO, at=STARTED)
        answer = (None, date(2011, 12, 21), date(2012, 1, 4), date(2012, 1, 5),
                  date(2012, 1, 6))[n % 5]
        if answer is not None:
            when = datetime(answer.year, answer.month, answer.day, 15, tzinfo=LONDON)
            engine.fire(inst.id, "respond", TM, data={"response": "done"}, at=when)


def _outcome(engine: Engine) -> dict[str, Any]:
    """What the service is judged on: each deadline's verdict, each email, each transition."""
    verdicts = set()
    events = set()
    refs = {}
    for inst in engine.list():
        refs[inst.id] = inst.ref
        for d in inst.deadline_list:
            verdicts.add((inst.ref, d.name, d.due, d.status.value, d.met_at))
        for h in inst.history:
            events.add((inst.ref, h.event, h.to_state, h.at))
    sent = Counter((refs.get(m.instance_id or ""), m.template, m.subject)
                   for m in engine.outbox.list())
    sql = engine.store.engine  # type: ignore[attr-defined]
    with sql.connect() as conn:
        timers = Counter(
            (refs[r.instance_id], r.name, r.due_at, r.status) for r in conn.execute(text(
                "SELECT instance_id, name, due_at, status FROM timers")))
    return {"verdicts": verdicts, "events": events, "sent": sent, "timers": timers}


def _baseline(tmp_path: Path, cases: int) -> dict[str, Any]:
    clock = FakeClock(STARTED)
    e = _open(f"sqlite:///{tmp_path / 'one.db'}", clock)
    try:
        _populate(e, clock, cases)
        clock.set(NOW)
        e.tick(NOW)
        clock.set(LATER)
        e.tick(LATER)
        return _outcome(e)
    finally:
        e.close()


_BASELINES: dict[int, dict[str, Any]] = {}

step = st.tuples(st.integers(0, 3),            # which worker
                 st.integers(1, 12),           # its claim batch size
                 st.integers(1, 6),            # its commit_every
                 st.one_of(st.none(), st.integers(0, 8)))  # killed after this many firings


@pytest.mark.slow  # over 10 s: 25 generated interleavings of up to 6 workers, each on a database
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=6), cases=st.sampled_from([5, 10]))
def test_many_workers_and_kills_give_one_workers_verdicts_and_emails(
        tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, int, int, int | None]],
        cases: int) -> None:
    if cases not in _BASELINES:
        _BASELINES[cases] = _baseline(tmp_path_factory.mktemp("one"), cases)
    expected = _BASELINES[cases]
    url = f"sqlite:///{tmp_path_factory.mktemp('many') / 'many.db'}"
    clock = FakeClock(STARTED)
    setup = _open(url, clock)
    try:
        _populate(setup, clock, cases)
    finally:
        setup.close()
    for phase in (NOW, LATER):
        clock.set(phase)
        for worker, batch, commit_every, fuse in steps:
            e = _open(url, clock, DyingEngine)
            assert isinstance(e, DyingEngine)
            e.fuse = 10 ** 6 if fuse is None else fuse
            try:
                e.tick(phase, batch_size=batch, commit_every=commit_every,
                       owner=f"worker-{worker}-{fuse}")
            except _Killed:
                pass
            finally:
                e.close()
        # The dead workers' leases run out; a survivor finishes the work.
        clock.set(phase + TIMER_LEASE + timedelta(seconds=1))
        e = _open(url, clock)
        try:
            e.tick(phase, owner="survivor")
        finally:
            e.close()
    e = _open(url, clock)
    try:
        got = _outcome(e)
    finally:
        e.close()
    assert got["verdicts"] == expected["verdicts"]
    assert got["events"] == expected["events"]
    assert got["sent"] == expected["sent"]
    assert got["timers"] == expected["timers"]  # none cancelled that one worker fires


def test_every_unanswered_alert_is_breached_and_reminded_whoever_fires_first(
        tmp_path: Path) -> None:
    """The adversarial run's case: another worker holds a case's internal breach timer while
    this one reaches the case's escalation timer, due at the same instant."""
    clock = FakeClock(STARTED)
    url = f"sqlite:///{tmp_path / 'x.db'}"
    e = _open(url, clock)
    try:
        inst = e.start("alert_dispute", ref="A-1", data=DATA, actor=IRO, at=STARTED)
        clock.set(NOW)
        sql = e.store.engine  # type: ignore[attr-defined]
        with sql.begin() as conn:
            conn.execute(text("UPDATE timers SET claimed_by = 'other', claim_expires_at = :until "
                              "WHERE kind = 'breach'"), {"until": NOW + TIMER_LEASE})
        first = e.tick(NOW)
        assert (first.fired, first.breached) == (1, 0)  # the reminder; the escalation waits
        assert [h.event for h in e.get(inst.id).history] == ["start"]
        clock.set(NOW + TIMER_LEASE + timedelta(seconds=1))
        second = e.tick(NOW)
        assert (second.breached, second.fired) == (1, 1)
        done = e.get(inst.id)
        assert [h.event for h in done.history] == ["start", "no_response"]
        response = next(d for d in done.deadline_list if d.name == "response_due")
        assert response.status.value == "breached"
    finally:
        e.close()


def test_an_answer_after_the_due_date_is_a_breach_even_before_any_tick(tmp_path: Path) -> None:
    clock = FakeClock(STARTED)
    e = _open(f"sqlite:///{tmp_path / 'x.db'}", clock)
    try:
        inst = e.start("alert_dispute", ref="A-1", data=DATA, actor=IRO, at=STARTED)
        late = datetime(2012, 1, 6, 9, tzinfo=LONDON)
        on_time = datetime(2012, 1, 5, 23, 59, tzinfo=LONDON)
        other = e.start("alert_dispute", ref="A-2", data=DATA, actor=IRO, at=STARTED)
        e.fire(inst.id, "respond", TM, at=late)
        e.fire(other.id, "respond", TM, at=on_time)
        verdict = {i.ref: next(d for d in i.deadline_list if d.name == "response_due")
                   for i in e.list()}
        assert (verdict["A-1"].status.value, verdict["A-1"].met_at) == ("breached", late)
        assert (verdict["A-2"].status.value, verdict["A-2"].met_at) == ("met", on_time)
    finally:
        e.close()


def test_a_timer_cancelled_unfired_is_named_in_the_history_of_what_cancelled_it(
        tmp_path: Path) -> None:
    clock = FakeClock(STARTED)
    e = _open(f"sqlite:///{tmp_path / 'x.db'}", clock)
    try:
        inst = e.start("alert_dispute", ref="A-1", data=DATA, actor=IRO, at=STARTED)
        answered = e.fire(inst.id, "respond", TM, at=datetime(2012, 1, 4, 9, tzinfo=LONDON))
        entry = answered.history[-1]
        names = [n for n, _ in entry.cancelled_timers]
        assert names == ["response_reminder", "response_breached"]
        assert entry.to_json()["cancelled_timers"][0] == {
            "name": "response_reminder", "due_at": "2012-01-03T00:00:00+00:00"}
    finally:
        e.close()
