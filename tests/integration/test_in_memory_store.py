"""The in-memory store of ``icsflow.workflow.testing`` answers as SQLite does: the demo year's
cases, deadlines, timers and emails, every outbox call, and many workers' leases with some
killed part-way all come out as on SQLite (the engine contract suite runs on it too)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from icsflow.definitions.registry import DefinitionSet
from icsflow.notifiers import RecordingNotifier
from icsflow.storage.db import create_db_engine, upgrade
from icsflow.storage.outbox import SqlOutbox
from icsflow.workflow import Actor, Engine, FakeClock
from icsflow.workflow.cli.demo import CASES, DIRECTORY, DOMAIN
from icsflow.workflow.clock import LONDON
from icsflow.workflow.daemon.dispatch import Dispatcher
from icsflow.workflow.errors import WorkflowError
from icsflow.workflow.instance import TickResult
from icsflow.workflow.policy import TIMER_LEASE
from icsflow.workflow.ports import Snapshot, TimerRecord, UnitOfWork
from icsflow.workflow.testing import InMemoryStore, in_memory_engine
from icsflow.workflow.ticking import Ticker

DEFS = DefinitionSet.load_default()


def _at(day: str, hour: int) -> datetime:
    return datetime.combine(datetime.fromisoformat(day).date(), time(hour), LONDON)


def _demo_year(engine: Engine, clock: FakeClock) -> list[Any]:
    """The demo's cases, day by day: every tick's counts and every returned case, in order."""
    days: dict[str, list[tuple[str, Any]]] = {}
    for c in CASES:
        days.setdefault(c.on, []).append(("start", c))
        for s in c.steps:
            days.setdefault(s.on, []).append(("step", (c, s)))
    ids: dict[str, str] = {}
    seen: list[Any] = []
    for day in sorted(days):
        clock.set(_at(day, 7))
        seen.append(("tick", day, engine.tick(now=_at(day, 7)).as_dict()))
        for kind, item in days[day]:
            if kind == "start":
                if item.auto:
                    continue
                clock.set(_at(day, 10))
                got = engine.start(item.definition, ref=item.ref, data=item.data,
                                   actor=Actor("someone", item.role), at=_at(day, 10),
                                   child=item.child)
                ids[item.ref] = got.id
            else:
                c, s = item
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
                except WorkflowError as exc:
                    seen.append(("refused", day, c.ref, s.event, str(exc)))
                    continue
            seen.append(("case", day, got.to_json()))
    return seen


def _by_ref(engine: Engine, seen: list[Any]) -> str:
    """What a run produced, as JSON text with each case id replaced by its reference (ids are
    random), every case and every outbox row in a stable order. Row ids are left out: the SQL
    store numbers the timers a tick's batch writes in the order its deferred writes reach the
    database (PostgreSQL also burns the ids of a rolled-back batch), so a timer's id, and the
    idempotency key made from it, is a name, not a fact to compare."""
    cases = sorted(engine.list(), key=lambda i: (i.ref, i.definition))

    def named(value: Any) -> str:
        text = json.dumps(value, default=str, sort_keys=True)
        for c in cases:
            text = text.replace(c.id, f"<{c.ref}:{c.definition}>")
        return re.sub(r":timer\d+:", ":timer:", text)

    outbox = sorted(named({k: v for k, v in vars(m).items() if k != "id"})
                    for m in engine.outbox.list())
    return named({"run": seen, "cases": [c.to_json() for c in cases], "outbox": outbox})


def test_the_demo_year_reads_the_same_on_the_in_memory_store_as_on_sqlite(
        tmp_path: Path) -> None:
    runs = []
    for make in ("sqlite", "memory"):
        clock = FakeClock(_at("2011-04-01", 0))
        options: dict[str, Any] = dict(clock=clock, directory=DIRECTORY,
                                       admin_address=f"admin@{DOMAIN}",
                                       sender=f"icsflow@{DOMAIN}")
        engine = (Engine.open(f"sqlite:///{tmp_path / 'demo.db'}", DEFS, **options)
                  if make == "sqlite" else in_memory_engine(DEFS, **options))
        try:
            seen = _demo_year(engine, clock)
            runs.append((len(seen), len(engine.list()), len(engine.outbox.list()),
                         _by_ref(engine, seen)))
        finally:
            engine.close()
    (steps, cases, messages, sqlite), (_, _, _, memory) = runs
    assert steps > 150 and cases > 20 and messages > 50  # the year means something
    assert memory == sqlite


# -- the outbox: every call answered as SqlOutbox answers it -----------------------------------

NOW = datetime(2012, 1, 6, 10, 0, tzinfo=UTC)
LEASE = timedelta(seconds=20)


def _outbox_calls(outbox: Any) -> list[Any]:
    """A dispatcher's life and an operator's: queue, claim, renew, settle every way, defer,
    release, retry, copies; each answer (and the rows after it) recorded."""
    log: list[Any] = []

    def rows() -> list[Any]:
        return [{k: v for k, v in vars(m).items() if k not in ("created_at",)}
                for m in outbox.list()]

    for n in range(6):
        log.append(outbox.enqueue(idempotency_key=f"k{n}", recipients=[f"tm-{n}@example.org"],
                                  subject=f"Alert {n}", body="Respond.", template="reminder",
                                  urgent=n % 2 == 0, now=NOW + timedelta(seconds=n % 3)))
    log.append(outbox.enqueue(idempotency_key="k1", recipients=[], subject="again", body="",
                              template="reminder", urgent=False, now=NOW))
    log.append(outbox.count_due(NOW + timedelta(seconds=1)))
    urgent = outbox.claim(NOW + timedelta(seconds=5), "me", NOW + LEASE, 2, urgent_only=True,
                          lease_now=NOW)
    rest = outbox.claim(NOW + timedelta(seconds=5), "me", NOW + LEASE, 10, urgent_only=False,
                        lease_now=NOW)
    log += [urgent, rest, rows()]
    log.append(outbox.claim(NOW + timedelta(seconds=5), "other", NOW + LEASE, 10,
                            urgent_only=False, lease_now=NOW + timedelta(seconds=1)))
    ids = [m.id for m in urgent + rest]
    outbox.mark_sent(ids[0], "me", NOW)
    outbox.mark_sent(ids[1], "other", NOW)  # not its lease: nothing
    outbox.schedule_retry(ids[1], "me", NOW + timedelta(minutes=5), "try later " * 300)
    outbox.mark_failed(ids[2], "me", "refused")
    outbox.defer([ids[3]], "me", NOW + timedelta(hours=1), "channel down")
    outbox.release([ids[4]], "me")
    log.append(outbox.renew([ids[0], ids[5]], "me", NOW + 2 * LEASE))
    log.append(outbox.renew([], "me", NOW))
    log.append(outbox.enqueue(idempotency_key=f"sms-copy:{ids[5]}", recipients=["x@y.org"],
                              subject="queued before", body="", template="t", urgent=False,
                              now=NOW))
    outbox.mark_sent_with_copies(ids[5], "me", NOW, ["webhook", "sms"], "<copy@example.org>")
    outbox.mark_sent_with_copies(ids[5], "me", NOW, ["webhook"], "<copy@example.org>")
    log += [rows(), outbox.counts(), outbox.get(ids[2]), outbox.get(999)]
    log.append(outbox.retry(ids[2], NOW, ["new@example.org"]))
    log.append(outbox.retry(ids[0], NOW))  # sent, not failed: no
    later = NOW + 2 * LEASE + timedelta(seconds=1)
    taken = outbox.claim(later + timedelta(hours=2), "other", later + LEASE, 10,
                         urgent_only=False, lease_now=later)
    log += [taken, outbox.list(status="pending"), outbox.list(limit=2), outbox.counts()]
    outbox.mark_sent_many([m.id for m in taken], "other", later)
    log += [rows(), outbox.count_due(later + timedelta(hours=3))]
    return log


def test_the_outbox_answers_every_call_as_the_sql_outbox_does(tmp_path: Path) -> None:
    sql = create_db_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    upgrade(sql)
    try:
        expected = _outbox_calls(SqlOutbox(sql))
    finally:
        sql.dispose()
    got = _outbox_calls(InMemoryStore().outbox)
    assert len(expected) > 20
    assert got == expected


def test_a_dispatcher_sends_the_engines_mail_from_the_in_memory_outbox_once() -> None:
    clock = FakeClock(datetime(2011, 12, 19, 10, tzinfo=LONDON))
    engine = in_memory_engine(DEFS, clock=clock, directory=DIRECTORY)
    engine.start("alert_dispute", ref="A-1", actor=Actor("iro-1", "iro"), data={
        "team_manager_email": "tm@example.org", "iro_email": "iro@example.org",
        "concern": "Plan drift"})
    clock.set(datetime(2012, 1, 6, 12, tzinfo=UTC))
    engine.tick()
    notifier = RecordingNotifier()
    assert engine.outbox is not None
    dispatcher = Dispatcher(engine.outbox, notifier, office_hours=None,
                            sender="icsflow@example.org", clock=clock, owner="d-1")
    first = dispatcher.dispatch_once(clock.now())
    again = dispatcher.dispatch_once(clock.now())
    sent = [m for m in engine.outbox.list() if m.status.value == "sent"]
    assert first.sent == len(notifier.messages) == len(sent) >= 2 and again.sent == 0
    assert {m.subject for m in notifier.messages} == {m.subject for m in sent}


# -- timers: claims, leases and takes answered as the SQL store answers them ------------------

def _timer_calls(engine: Engine, clock: FakeClock) -> list[Any]:
    """Three alerts, each with three timers due (the reminder, the deadline's internal breach
    marker, the escalation); workers claim, wait, take over, fire, fail and give back, each
    answer recorded by case reference."""
    refs = {engine.start("alert_dispute", ref=f"A-{n}", data=DATA, actor=Actor("iro", "iro"),
                         at=STARTED).id: f"A-{n}" for n in range(3)}
    store = engine.store
    now, lease = PHASES[0], PHASES[0] + TIMER_LEASE
    clock.set(now)

    def named(timers: list[TimerRecord]) -> list[Any]:
        return [(refs[t.instance_id], t.name, t.kind, t.due_at, t.status.value, t.attempts,
                 t.claimed_by, t.claim_expires_at) for t in timers]

    log: list[Any] = []
    first = store.claim_due_timers(now, "a", lease, 1, clock_now=now)
    others = store.claim_due_timers(now, "b", lease, 10, clock_now=now)
    none_left = store.claim_due_timers(now, "c", lease, 10, clock_now=now)
    log += [named(first), named(others), named(none_left)]
    store.release_timers([t.id for t in others[:2]], "b")
    store.release_timers([t.id for t in others[2:3]], "a")  # not its lease: nothing
    later = now + TIMER_LEASE + timedelta(seconds=1)
    log.append(named(store.claim_due_timers(now, "c", later + TIMER_LEASE, 3, clock_now=later)))
    every = {t.id: t for t in first + others}
    with store.unit_of_work() as uow:
        log.append(named(uow.take_over_timers(list(every), "d", later + TIMER_LEASE, later)))
        log.append(uow.take_timer(first[0].id, "d", later, "fired"))
        log.append(uow.take_timer(first[0].id, "d", later, "fired"))  # once only
        uow.timer_failed(others[0].id, "d", "boom " * 600, later + timedelta(minutes=1), False)
        uow.timer_failed(others[1].id, "d", "gave up", later, True)
        uow.timer_failed(others[2].id, "nobody", "not its lease", later, True)
        uow.set_outcome(first[0].id, "skipped")
        uow.extend_claims(list(every), "d", later + 2 * TIMER_LEASE)
        log.append({refs[i]: named(list(s.timers)) for i, s in uow.load_many(list(refs)).items()})
    with store.unit_of_work() as uow:
        uow.take_timer(others[3].id, "d", later, "fired")
        uow.rollback()  # given back: still pending, still leased
        log.append(named(list(uow.load(others[3].instance_id).timers)))
    with store.unit_of_work() as uow:
        log.append({refs[i]: named(list(s.timers)) for i, s in uow.load_many(list(refs)).items()})
    return log


def test_timer_claims_and_leases_answer_as_the_sql_store_does(tmp_path: Path) -> None:
    logs = []
    for make in ("sqlite", "memory"):
        clock = FakeClock(STARTED)
        engine = (Engine.open(f"sqlite:///{tmp_path / 'timers.db'}", DEFS, clock=clock,
                              directory=DIRECTORY)
                  if make == "sqlite" else in_memory_engine(DEFS, clock=clock,
                                                            directory=DIRECTORY))
        try:
            logs.append(_timer_calls(engine, clock))
        finally:
            engine.close()
    sqlite, memory = logs
    first, others = sqlite[0], sqlite[1]
    # "a" holds A-0's earliest timer: its later one waits, the other cases' go to "b".
    assert [t[:2] for t in first] == [("A-0", "response_reminder")]
    assert sorted(t[0] for t in others) == ["A-1"] * 3 + ["A-2"] * 3 and sqlite[2] == []
    assert memory == sqlite


# -- timers: many workers, some killed, leases running out ------------------------------------

DATA = {"team_manager_email": "tm@council.example", "iro_email": "iro@council.example",
        "service_manager_email": "sm@council.example", "concern": "Plan drift"}
STARTED = datetime(2011, 12, 19, 10, tzinfo=LONDON)
PHASES = (datetime(2012, 1, 6, 12, tzinfo=UTC), datetime(2012, 1, 20, 12, tzinfo=UTC))


class _Killed(BaseException):
    """kill -9 inside a batch: its transaction is lost, its committed claims stand."""


class _DyingTicker(Ticker):
    fuse = 0

    def _fire_once(self, uow: UnitOfWork, t: TimerRecord, now: datetime, owner: str,
                   result: TickResult, cache: dict[str, Snapshot] | None = None,
                   ) -> list[TimerRecord]:
        if self.fuse <= 0:
            raise _Killed()
        self.fuse -= 1
        return super()._fire_once(uow, t, now, owner, result, cache)


def _populate(engine: Engine, clock: FakeClock) -> None:
    clock.set(STARTED)
    for n in range(6):
        inst = engine.start("alert_dispute", ref=f"A-{n}", data=DATA, actor=Actor("iro", "iro"),
                            at=STARTED)
        if n % 3:
            engine.fire(inst.id, "respond", Actor("tm", "team_manager"),
                        data={"response": "done"},
                        at=datetime(2012, 1, 3 + n, 15, tzinfo=LONDON))


def _outcome(engine: Engine) -> Any:
    cases = {i.id: i for i in engine.list()}
    return (sorted((i.ref, h.event, h.at) for i in cases.values() for h in i.history),
            sorted((i.ref, d.name, d.status.value, d.met_at) for i in cases.values()
                   for d in i.deadline_list),
            sorted((cases[m.instance_id or ""].ref, m.template, m.subject)
                   for m in engine.outbox.list()))


_ONE_WORKER: list[Any] = []


def _one_sqlite_worker(path: Path) -> Any:
    if not _ONE_WORKER:
        clock = FakeClock(STARTED)
        e = Engine.open(f"sqlite:///{path / 'one.db'}", DEFS, clock=clock, directory=DIRECTORY)
        try:
            _populate(e, clock)
            for phase in PHASES:
                clock.set(phase)
                e.tick(phase)
            _ONE_WORKER.append(_outcome(e))
        finally:
            e.close()
    return _ONE_WORKER[0]


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 8), st.integers(1, 5),
                                st.one_of(st.none(), st.integers(0, 6))), min_size=1,
                      max_size=5))
def test_many_workers_and_kills_on_the_in_memory_store_end_as_one_sqlite_worker(
        tmp_path_factory: pytest.TempPathFactory,
        steps: list[tuple[int, int, int, int | None]]) -> None:
    expected = _one_sqlite_worker(tmp_path_factory.getbasetemp())
    store = InMemoryStore()
    clock = FakeClock(STARTED)
    _populate(in_memory_engine(DEFS, store=store, clock=clock, directory=DIRECTORY), clock)
    for phase in PHASES:
        clock.set(phase)
        for worker, batch, commit_every, fuse in steps:
            e = in_memory_engine(DEFS, store=store, clock=clock, directory=DIRECTORY)
            e.ticker = dying = _DyingTicker(store, e.planner, clock, policy=e.policy)
            dying.fuse = 10 ** 6 if fuse is None else fuse
            try:
                e.tick(phase, batch_size=batch, commit_every=commit_every,
                       owner=f"worker-{worker}-{fuse}")
            except _Killed:
                pass
        clock.set(phase + TIMER_LEASE + timedelta(seconds=1))  # the dead workers' leases end
        in_memory_engine(DEFS, store=store, clock=clock, directory=DIRECTORY).tick(
            phase, owner="survivor")
    got = _outcome(in_memory_engine(DEFS, store=store, clock=clock, directory=DIRECTORY))
    assert got == expected
