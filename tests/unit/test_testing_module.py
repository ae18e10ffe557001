"""``icsflow.workflow.testing``: what an embedding service tests against, with no database: the
core's fake clock and the recording channel, and an in-memory store whose transactions are
all or nothing, isolated from readers, and never lose a write (the engine contract suite and
``tests/integration/test_in_memory_store.py`` compare it with SQLite)."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from icsflow.notifiers import recording
from icsflow.workflow import clock
from icsflow.workflow.errors import ConcurrencyConflict, DefinitionError
from icsflow.workflow.instance import Actor, HistoryEntry, OutboxStatus
from icsflow.workflow.ports import Change, InstanceRecord, NewOutbox
from icsflow.workflow.testing import (
    DuplicateKey,
    FakeClock,
    InMemoryStore,
    RecordingNotifier,
    in_memory_engine,
)

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2012, 6, 1, 9, tzinfo=UTC)


def _new_case(case_id: str, **data: object) -> Change:
    return Change(case_id, None, new_instance=InstanceRecord(
        id=case_id, definition="alert", definition_version=1, ref=f"R-{case_id}", state="alert",
        data=dict(data), row_version=1, created_at=T0, started_at=T0),
        history=[HistoryEntry("start", None, "alert", "iro-1", "iro", T0, T0)], recorded_at=T0)


def _bump(case_id: str, version: int, state: str) -> Change:
    return Change(case_id, version, state=state, recorded_at=T0,
                  history=[HistoryEntry("move", "alert", state, "iro-1", "iro", T0, T0)])


def test_the_fake_clock_and_the_recording_notifier_are_the_cores_own() -> None:
    assert FakeClock is clock.FakeClock
    assert RecordingNotifier is recording.RecordingNotifier


def test_a_unit_of_work_that_fails_leaves_nothing_written() -> None:
    store = InMemoryStore()
    with pytest.raises(RuntimeError), store.unit_of_work() as uow:
        uow.apply(_new_case("c1"))
        raise RuntimeError("power cut")
    assert store.rows("instances") == [] and store.rows("history") == []
    with store.unit_of_work() as uow:
        uow.apply(_new_case("c1"))
    assert [r["id"] for r in store.rows("history")] == [1]  # the lost transaction's id reused


def test_a_reader_never_sees_a_transactions_writes_before_its_commit() -> None:
    store = InMemoryStore()
    with store.unit_of_work() as uow:
        uow.apply(_new_case("c1"))
    with store.unit_of_work() as uow:
        uow.apply(_bump("c1", 1, "responded"))
        assert uow.load("c1").instance.state == "responded"
        assert store.get("c1").state == "alert"
        seen: list[str] = []
        reader = threading.Thread(target=lambda: seen.append(store.get("c1").state))
        reader.start()
        reader.join()
        assert seen == ["alert"]  # another thread reads the last commit, without waiting
    assert store.get("c1").state == "responded"


def test_a_write_planned_from_an_old_version_is_a_conflict_and_writes_nothing() -> None:
    store = InMemoryStore()
    with store.unit_of_work() as uow:
        uow.apply(_new_case("c1"))
    with store.unit_of_work() as uow:
        uow.apply(_bump("c1", 1, "responded"))
    with pytest.raises(ConcurrencyConflict, match="read it again"), \
            store.unit_of_work() as uow:
        uow.apply(_bump("c1", 1, "stage1"))
    assert (store.get("c1").state, store.get("c1").row_version) == ("responded", 2)
    assert len(store.rows("history")) == 2


def test_two_transactions_at_once_in_one_thread_keep_the_first_commit_whole() -> None:
    store = InMemoryStore()
    with store.unit_of_work() as uow:
        uow.apply(_new_case("c1"))
    with pytest.raises(ConcurrencyConflict, match="another transaction"), \
            store.unit_of_work() as outer:
        outer.apply(_new_case("c2"))
        with store.unit_of_work() as inner:
            inner.apply(_bump("c1", 1, "responded"))
    assert [r["id"] for r in store.rows("instances")] == ["c1"]
    assert store.get("c1").state == "responded"


def test_writers_in_many_threads_lose_no_update() -> None:
    store = InMemoryStore()
    with store.unit_of_work() as uow:
        uow.apply(_new_case("c1"))

    def move() -> None:
        for _ in range(50):
            with store.unit_of_work() as uow:
                version = uow.load("c1").instance.row_version
                uow.apply(_bump("c1", version, "alert"))

    threads = [threading.Thread(target=move) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get("c1").row_version == 1 + 200 and len(store.rows("history")) == 201


def test_a_second_message_with_a_used_idempotency_key_is_refused_with_its_transaction() -> None:
    store = InMemoryStore()
    message = NewOutbox(("tm@example.org",), "Due", "Respond.", "reminder", False,
                        OutboxStatus.PENDING, "c1:v1:n0:reminder")
    with store.unit_of_work() as uow:
        uow.apply(_new_case("c1"))
        uow.apply(Change("c1", 1, bump_version=False, outbox=[message], recorded_at=T0))
    with pytest.raises(DuplicateKey, match="c1:v1:n0:reminder"), store.unit_of_work() as uow:
        uow.apply(_bump("c1", 1, "responded"))
        uow.apply(Change("c1", 2, bump_version=False, outbox=[message], recorded_at=T0))
    assert store.get("c1").state == "alert" and len(store.rows("outbox")) == 1


def test_a_naive_time_is_refused_as_the_sql_store_refuses_it() -> None:
    store = InMemoryStore()
    change = _new_case("c1")
    change.history[0] = HistoryEntry("start", None, "alert", "iro-1", "iro",
                                     datetime(2012, 6, 1, 9), T0)
    with pytest.raises(ValueError, match="naive"), store.unit_of_work() as uow:
        uow.apply(change)
    assert store.rows("instances") == []


def test_a_changed_text_under_a_used_definition_version_is_refused() -> None:
    store = InMemoryStore()
    store.register_definition("alert", 1, "a" * 64, "name: alert")
    store.register_definition("alert", 1, "a" * 64)  # the same text again: fine
    with pytest.raises(DefinitionError, match="bump `version:` to 2"):
        store.register_definition("alert", 1, "b" * 64)
    assert store.kept_definitions() == [("alert", 1, "name: alert")]


def test_an_engine_opened_again_on_the_same_store_sees_its_cases() -> None:
    from icsflow.workflow import Actor

    store = InMemoryStore()
    first = in_memory_engine(clock=FakeClock(T0), store=store)
    case = first.start("alert_dispute", ref="C-1", actor=Actor("iro-1", "iro"), data={
        "concern": "x", "iro_email": "iro@example.org", "team_manager_email": "tm@example.org"})
    first.close()
    assert in_memory_engine(clock=FakeClock(T0), store=store).get(case.id) == case


def test_the_example_in_docs_engine_md_runs() -> None:
    """docs/engine.md, "Testing an embedding service": its example runs as written."""
    text = (ROOT / "docs" / "engine.md").read_text(encoding="utf-8")
    section = text.split("## Testing an embedding service", 1)[1].split("\n## ", 1)[0]
    [code] = re.findall(r"```python\n(.*?)```", section, re.S)
    exec(compile(code, "docs/engine.md", "exec"), {})  # noqa: S102 - our own documentation


def test_a_tick_asked_to_stop_ends_within_a_batch_and_leaves_the_rest_pending() -> None:
    """A stopping daemon's long catch-up ends after the batch in hand (the flag is asked before
    each claim); what it did not claim fires in the next tick, once each."""
    clk = FakeClock(T0)
    engine = in_memory_engine(clock=clk)
    data = {"team_manager_email": "tm@example.org", "iro_email": "iro@example.org",
            "service_manager_email": "sm@example.org", "concern": "Plan drift"}
    for n in range(30):
        engine.start("alert_dispute", ref=f"A-{n}", data=data, actor=Actor("iro-1", "iro"),
                     at=T0)
    later = datetime(2012, 9, 1, 9, tzinfo=UTC)  # every reminder and breach long due
    asked: list[int] = []

    def stop_after_one_batch() -> bool:
        asked.append(1)
        return len(asked) > 1

    first = engine.tick(later, batch_size=10, should_stop=stop_after_one_batch)
    assert 0 < first.fired <= 10 + 10  # one batch (and what its firings made due at once)
    rest = engine.tick(later, batch_size=10)
    everything = in_memory_engine(clock=FakeClock(T0))
    for n in range(30):
        everything.start("alert_dispute", ref=f"A-{n}", data=data, actor=Actor("iro-1", "iro"),
                         at=T0)
    assert first.fired + rest.fired == everything.tick(later, batch_size=10).fired
    assert engine.tick(later).fired == 0
