# ruff: noqa: F811 - pytest fixtures imported from engine_support are used as arguments
"""The engine contract, run on every store (SQLite always, PostgreSQL with ICSFLOW_TEST_PG, the
in-memory store of ``icsflow.workflow.testing``)."""

from __future__ import annotations

import gc
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from engine_support import (
    ALERT_YAML,
    FAILS_FOR_ZERO_VISITS_YAML,
    IRO,
    START_DATA,
    T0,
    TM,
    Backend,
    alert_definition,
    backend,  # noqa: F401 - fixture
    clock,  # noqa: F401 - fixture
    engine,  # noqa: F401 - fixture
    table_rows,
    tick_summary,
)
from sqlalchemy import text

from icsflow.workflow import Actor, Engine, FakeClock
from icsflow.workflow.errors import (
    ConcurrencyConflict,
    DefinitionError,
    InstanceNotFound,
    InvalidTransition,
    PermissionDenied,
    SchemaOutOfDate,
    ValidationError,
)


def counts(e: Engine, instance_id: str | None = None) -> dict[str, Any]:
    """Every row the engine writes, to prove that a refusal wrote nothing."""
    rows = {t: table_rows(e, t) for t in ("instances", "history", "deadlines", "timers",
                                          "outbox")}
    out: dict[str, Any] = {table: len(found) for table, found in rows.items()}
    out["timer_status"] = sorted((r["id"], r["status"]) for r in rows["timers"])
    out["deadline_status"] = sorted((r["id"], r["status"], r["met_at"])
                                    for r in rows["deadlines"])
    if instance_id:
        [out["row"]] = [(r["state"], r["version"], r["data"]) for r in rows["instances"]
                        if r["id"] == instance_id]
    return out


def started(e: Engine, ref: str = "C-1", at: Any = None) -> Any:
    return e.start("alert", ref=ref, data=START_DATA, actor=IRO, at=at)


# -- start / fire / get / list ---------------------------------------------------------------

def test_start_computes_the_working_day_deadline_and_its_timers(engine: Engine) -> None:
    inst = started(engine)
    assert inst.state == "alert" and inst.version == 1 and inst.ref == "C-1"
    # 10 working days after Fri 1 June 2012, skipping the Jubilee bank holidays 4-5 June.
    assert inst.deadlines == {"response_due": date(2012, 6, 19)}
    names = [(t.name, t.due_at) for t in inst.timers]
    assert names == [
        ("response_reminder", datetime(2012, 6, 14, 23, 0, tzinfo=UTC)),  # 00:00 BST 15 June
        ("escalate_on_breach", datetime(2012, 6, 19, 23, 0, tzinfo=UTC)),
    ]
    assert [h.event for h in inst.history] == ["start"]


def test_show_json_has_the_design_shape(engine: Engine) -> None:
    j = started(engine).to_json()
    assert {"id", "definition", "version", "ref", "state", "data", "deadlines", "timers",
            "history"} <= set(j)
    assert j["deadlines"] == {"response_due": "2012-06-19"}
    assert set(j["timers"][0]) >= {"name", "due_at", "action"}
    assert set(j["history"][0]) >= {"event", "from", "to", "actor", "role", "at", "note"}
    assert j["history"][0]["from"] is None and j["history"][0]["to"] == "alert"


def test_fire_moves_state_meets_deadline_records_and_queues(engine: Engine) -> None:
    inst = started(engine)
    after = engine.fire(inst.id, "respond", TM, data={"response": "plan agreed"}, note="ok")
    assert after.state == "responded"
    assert after.deadlines == {}
    dl = after.deadline_list[0]
    assert dl.status.value == "met" and dl.met_at is not None
    assert after.timers == ()
    assert after.data["responded_late"] is False
    h = after.history[-1]
    assert (h.event, h.from_state, h.to_state, h.actor, h.role, h.note) == (
        "respond", "alert", "responded", "tm-1", "team_manager", "ok")
    [msg] = engine.outbox.list()
    assert msg.recipients == ("iro@example.org",) and msg.status.value == "pending"
    assert msg.subject == "Alert C-1: responded" and msg.body == "plan agreed"


def test_get_find_and_list(engine: Engine) -> None:
    a = started(engine, "C-1")
    b = started(engine, "C-2")
    engine.fire(b.id, "escalate", IRO)
    assert engine.get(a.id).state == "alert"
    assert [i.id for i in engine.find("C-2")] == [b.id]
    assert {i.id for i in engine.list(definition="alert")} == {a.id, b.id}
    assert [i.id for i in engine.list(state="stage1")] == [b.id]
    assert engine.list(overdue=True) == []


def test_overdue_lists_cases_past_their_deadline(engine: Engine, clock: FakeClock) -> None:
    a = started(engine)
    clock.set(datetime(2012, 6, 20, 8, tzinfo=UTC))
    assert [i.id for i in engine.list(overdue=True)] == [a.id]


def test_internal_event_keeps_state_deadlines_and_timers(engine: Engine) -> None:
    inst = started(engine)
    after = engine.fire(inst.id, "comment", IRO, data={"visits": "3"})
    assert after.state == "alert" and after.data["visits"] == 3
    assert after.timers == inst.timers and after.deadlines == inst.deadlines
    assert after.history[-1].from_state == "alert" == after.history[-1].to_state


def test_final_state_closes_and_refuses_further_events(engine: Engine) -> None:
    inst = started(engine)
    engine.fire(inst.id, "respond", TM, data={"response": "x"})
    closed = engine.fire(inst.id, "accept", IRO, data={"outcome": "satisfactory"})
    assert closed.closed and closed.state == "resolved"
    before = counts(engine, inst.id)
    with pytest.raises(InvalidTransition, match="closed"):
        engine.fire(inst.id, "comment", IRO)
    assert counts(engine, inst.id) == before


# -- refusals write nothing ------------------------------------------------------------------

def test_event_not_allowed_names_state_and_allowed_events(engine: Engine) -> None:
    inst = started(engine)
    before = counts(engine, inst.id)
    with pytest.raises(InvalidTransition) as err:
        engine.fire(inst.id, "accept", IRO, data={"outcome": "satisfactory"})
    assert "alert" in str(err.value) and "respond" in str(err.value)
    assert err.value.state == "alert" and "escalate" in err.value.allowed
    assert counts(engine, inst.id) == before


def test_false_condition_names_the_condition(engine: Engine) -> None:
    inst = started(engine)
    engine.fire(inst.id, "respond", TM, data={"response": "x"})
    before = counts(engine, inst.id)
    with pytest.raises(InvalidTransition, match='data.outcome == "satisfactory"'):
        engine.fire(inst.id, "accept", IRO, data={"outcome": "unsatisfactory"})
    assert counts(engine, inst.id) == before


def test_wrong_role_names_the_allowed_roles(engine: Engine) -> None:
    inst = started(engine)
    before = counts(engine, inst.id)
    with pytest.raises(PermissionDenied, match="team_manager") as err:
        engine.fire(inst.id, "respond", IRO, data={"response": "x"})
    assert err.value.allowed_roles == ["team_manager"]
    with pytest.raises(PermissionDenied):
        engine.fire(inst.id, "no_response", IRO)
    with pytest.raises(PermissionDenied):
        engine.fire(inst.id, "no_response", Actor("x", "system"))
    assert counts(engine, inst.id) == before


def test_start_role_checked(engine: Engine) -> None:
    with pytest.raises(PermissionDenied, match="iro"):
        engine.start("alert", ref="C-1", data=START_DATA, actor=TM)
    assert counts(engine)["instances"] == 0


@pytest.mark.parametrize("data, field", [
    ({"visits": "many"}, "visits"),
    ({"nonsense": 1}, "nonsense"),
    ({"outcome": "maybe"}, "outcome"),
    ({"meeting_date": "27/06/2012"}, "meeting_date"),
    ({"urgent": "perhaps"}, "urgent"),
])
def test_bad_data_is_refused_naming_the_field(engine: Engine, data: dict[str, Any],
                                              field: str) -> None:
    inst = started(engine)
    before = counts(engine, inst.id)
    with pytest.raises(ValidationError) as err:
        engine.fire(inst.id, "comment", IRO, data=data)
    assert err.value.field == field and field in str(err.value)
    assert counts(engine, inst.id) == before


def test_missing_required_fields_are_refused(engine: Engine) -> None:
    with pytest.raises(ValidationError, match="iro_email"):
        engine.start("alert", ref="C-1", data={"concern": "x"}, actor=IRO)
    with pytest.raises(ValidationError, match="team_manager_email"):
        engine.start("alert", ref="C-1", data={**START_DATA, "team_manager_email": "nope"},
                     actor=IRO)
    inst = started(engine)
    before = counts(engine, inst.id)
    with pytest.raises(ValidationError, match="response"):
        engine.fire(inst.id, "respond", TM)
    assert counts(engine, inst.id) == before


def test_unknown_instance(engine: Engine) -> None:
    with pytest.raises(InstanceNotFound):
        engine.get("nope")
    with pytest.raises(InstanceNotFound):
        engine.fire("nope", "respond", TM)


def test_failure_inside_a_transition_leaves_no_trace(engine: Engine) -> None:
    inst = started(engine)
    before = counts(engine, inst.id)
    with pytest.raises(DefinitionError, match="broken"):
        engine.fire(inst.id, "boom", IRO)
    assert counts(engine, inst.id) == before
    assert engine.get(inst.id).history == inst.history


def test_failure_in_the_write_rolls_back_everything(engine: Engine, backend: Backend,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    unit_of_work = backend.unit_of_work_class
    inst = started(engine)
    before = counts(engine, inst.id)
    original = unit_of_work.apply

    def failing(self: Any, change: Any, **kw: Any) -> Any:
        original(self, change, **kw)  # everything written ... then the commit never happens
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(unit_of_work, "apply", failing)
    with pytest.raises(RuntimeError):
        engine.fire(inst.id, "respond", TM, data={"response": "x"})
    monkeypatch.undo()
    assert counts(engine, inst.id) == before


# -- concurrency -----------------------------------------------------------------------------

def test_stale_version_is_a_conflict(engine: Engine) -> None:
    inst = started(engine)
    engine.fire(inst.id, "comment", IRO, expected_version=inst.row_version)
    with pytest.raises(ConcurrencyConflict):
        engine.fire(inst.id, "comment", IRO, expected_version=inst.row_version)


def test_two_threads_one_wins_one_conflicts(engine: Engine) -> None:
    inst = started(engine)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def worker(actor: Actor, event: str, data: dict[str, Any] | None) -> None:
        barrier.wait()
        try:
            engine.fire(inst.id, event, actor, data=data, expected_version=inst.row_version)
            outcomes.append("won")
        except ConcurrencyConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=worker, args=(TM, "respond", {"response": "x"})),
               threading.Thread(target=worker, args=(IRO, "escalate", None))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "won"]
    final = engine.get(inst.id)
    assert [h.event for h in final.history][0] == "start" and len(final.history) == 2
    assert final.row_version == inst.row_version + 1


def test_racing_writers_never_lose_an_update(engine: Engine) -> None:
    inst = started(engine)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        for _ in range(5):
            for _attempt in range(50):
                try:
                    engine.fire(inst.id, "comment", IRO, data={"visits": n})
                    break
                except ConcurrencyConflict:
                    continue
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)
                    return

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    final = engine.get(inst.id)
    assert len(final.history) == 1 + 20 and final.row_version == 21


# -- time: backdating, timers and catch-up ----------------------------------------------------

def test_backdated_start_and_event_use_the_real_time(engine: Engine) -> None:
    inst = started(engine, at=date(2012, 5, 1))
    assert inst.history[0].at == datetime(2012, 4, 30, 23, 0, tzinfo=UTC)
    assert inst.deadlines["response_due"] == date(2012, 5, 16)  # 7 May was a bank holiday
    after = engine.fire(inst.id, "respond", TM, data={"response": "x"},
                        at=datetime(2012, 5, 17, 10, tzinfo=UTC))
    assert after.history[-1].at == datetime(2012, 5, 17, 10, tzinfo=UTC)
    assert after.history[-1].recorded_at == T0
    assert after.data["responded_late"] is True
    assert after.deadline_list[0].met_at == datetime(2012, 5, 17, 10, tzinfo=UTC)


def test_naive_at_is_refused(engine: Engine) -> None:
    with pytest.raises(ValidationError, match="naive"):
        engine.start("alert", ref="C", data=START_DATA, actor=IRO, at=datetime(2012, 5, 1))


def test_reminder_fires_once_and_queues_rendered_mail(engine: Engine, clock: FakeClock) -> None:
    inst = started(engine)
    result = engine.tick(datetime(2012, 6, 15, 12, tzinfo=UTC))
    assert (result.fired, result.failed) == (1, 0)
    assert engine.tick(datetime(2012, 6, 15, 12, tzinfo=UTC)).fired == 0
    [msg] = engine.outbox.list()
    assert msg.recipients == ("tm@example.org",)
    assert msg.subject == "Alert C-1: response due Tuesday 19 June 2012"
    assert msg.body == "2 working days left for C-1."
    assert [t.name for t in engine.get(inst.id).timers] == ["escalate_on_breach"]


def test_catch_up_cascade_fires_in_due_order_at_due_times(engine: Engine,
                                                          clock: FakeClock) -> None:
    inst = started(engine)
    clock.set(datetime(2013, 1, 1, tzinfo=UTC))
    result = engine.tick()
    final = engine.get(inst.id)
    assert final.state == "stage2"
    events = [(h.event, h.at) for h in final.history]
    breach1 = datetime(2012, 6, 19, 23, tzinfo=UTC)  # midnight after 19 June, BST
    # stage 1 due 5 working days after the breach instant (20 June): 27 June.
    breach2 = datetime(2012, 6, 27, 23, tzinfo=UTC)
    assert events == [("start", T0), ("no_response", breach1), ("stage1_overdue", breach2)]
    dls = {d.name: d for d in final.deadline_list}
    assert dls["response_due"].status.value == "breached"
    assert dls["response_due"].met_at == breach1
    assert dls["stage1_due"].status.value == "breached"
    # stage 2 nags 1 day after entering, then weekly, 3 in all: all already due.
    assert result.fired == 1 + 1 + 1 + 3 and result.breached == 2
    nags = [m for m in engine.outbox.list() if m.template == "escalated"]
    assert len(nags) == 1 + 3
    assert final.timers == ()
    assert all(h.recorded_at == datetime(2013, 1, 1, tzinfo=UTC) for h in final.history[1:])


def test_timer_event_no_longer_allowed_is_skipped(backend: Backend, clock: FakeClock) -> None:
    yaml = ALERT_YAML.replace("""  - name: stage2_nag""", """  - name: stale
    state: stage1
    after: 1 day
    fire: nudge
  - name: stage2_nag""").replace("""  - event: close""", """  - event: nudge
    from: stage1
    to: stage2
    when: [data.urgent]
  - event: close""")
    e = backend.open(clock, definitions=alert_definition(yaml))
    try:
        inst = started(e)
        e.fire(inst.id, "escalate", IRO)
        result = e.tick(datetime(2012, 6, 5, tzinfo=UTC))
        assert result.skipped == 1 and result.failed == 0
        assert e.get(inst.id).state == "stage1"
    finally:
        e.close()


def test_leaving_the_state_cancels_timers(engine: Engine) -> None:
    inst = started(engine)
    engine.fire(inst.id, "escalate", IRO)
    assert [t.name for t in engine.get(inst.id).timers] == ["stage1_escalation"]
    engine.fire(inst.id, "close", IRO)
    result = engine.tick(datetime(2013, 1, 1, tzinfo=UTC))
    assert result.fired == 0 and result.breached == 0
    assert engine.get(inst.id).deadline_list[-1].status.value == "met"


def test_missing_address_stores_a_failed_row_and_tells_the_admin(backend: Backend,
                                                                 clock: FakeClock) -> None:
    e = backend.open(clock, admin_address="admin@example.org")
    try:
        data = {k: v for k, v in START_DATA.items() if k != "team_manager_email"}
        e.start("alert", ref="C-1", data=data, actor=IRO)
        e.tick(datetime(2012, 6, 15, tzinfo=UTC))
        rows = e.outbox.list()
        failed = [m for m in rows if m.status.value == "failed"]
        admin = [m for m in rows if m.recipients == ("admin@example.org",)]
        assert len(failed) == 1 and "team_manager_email is empty" in (failed[0].last_error or "")
        assert len(admin) == 1 and admin[0].status.value == "pending"
    finally:
        e.close()


def test_restart_sees_everything(backend: Backend, clock: FakeClock) -> None:
    e1 = backend.open(clock)
    inst = started(e1)
    e1.fire(inst.id, "comment", IRO, note="hello")
    e1.close()
    e2 = backend.open(clock)
    try:
        again = e2.get(inst.id)
        assert again.history[-1].note == "hello" and len(again.timers) == 2
        assert e2.tick(datetime(2013, 1, 1, tzinfo=UTC)).fired >= 2
    finally:
        e2.close()


def test_changed_definition_under_same_version_is_refused(backend: Backend,
                                                         clock: FakeClock) -> None:
    backend.open(clock).close()
    changed = ALERT_YAML.replace("title: Alert", "title: Alert (edited)")
    with pytest.raises(DefinitionError, match="bump"):
        backend.open(clock, definitions=alert_definition(changed))
    bumped = changed.replace("version: 1", "version: 2")
    e = backend.open(clock, definitions=[alert_definition(), alert_definition(bumped)])
    try:
        assert started(e).version == 2
    finally:
        e.close()


def test_instances_keep_their_definition_version(backend: Backend, clock: FakeClock) -> None:
    e = backend.open(clock)
    old = started(e)
    e.close()
    v2 = ALERT_YAML.replace("version: 1", "version: 2").replace("10 working days",
                                                                 "15 working days")
    e = backend.open(clock, definitions=[alert_definition(), alert_definition(v2)])
    try:
        new = started(e, "C-2")
        assert (old.version, new.version) == (1, 2)
        assert e.fire(old.id, "escalate", IRO).version == 1
        assert new.deadlines["response_due"] == date(2012, 6, 26)
    finally:
        e.close()


def test_two_concurrent_tickers_fire_each_timer_once(backend: Backend,
                                                     clock: FakeClock) -> None:
    if backend.kind == "sqlite":
        pytest.skip("concurrent daemons share a PostgreSQL database (SQLite has one writer); "
                    "the in-memory store's claims take its one lock")
    e = backend.open(clock)
    try:
        ids = [started(e, f"C-{n}").id for n in range(40)]
        now = datetime(2012, 6, 15, tzinfo=UTC)  # only the 40 reminders are due
        results: list[Any] = []

        def run() -> None:
            results.append(e.tick(now, batch_size=7, commit_every=3))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(r.fired for r in results) == 40
        assert len(e.outbox.list()) == 40
        assert len({m.idempotency_key for m in e.outbox.list()}) == 40
        assert all(len(e.get(i).timers) == 1 for i in ids)
    finally:
        e.close()


def test_out_of_date_postgres_schema_refuses_to_start(backend: Backend,
                                                      clock: FakeClock) -> None:
    if backend.kind != "postgresql":
        pytest.skip("only PostgreSQL has a schema migrated apart from the engine (SQLite is "
                    "migrated on first use, the in-memory store has no schema)")
    e = backend.open(clock)
    sql = e.store.engine  # type: ignore[attr-defined]
    with sql.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    e.close()
    with pytest.raises(SchemaOutOfDate, match="icsflow db upgrade"):
        Engine.open(backend.url, definitions=alert_definition(), clock=clock)


CONF_YAML = """
name: conf
version: 1
title: Conference
description: field-anchored and hour deadlines
roles: {chair: {address: chair_email}}
start_roles: [chair]
data:
  chair_email: {type: email}
  held_at: {type: datetime}
  target: {type: date}
initial: planned
states: {planned: {}, held: {}, done: {final: true}}
transitions:
  - {event: retarget, from: planned, roles: [chair], set: {target: required}}
  - {event: hold, from: planned, to: held, roles: [chair], set: {held_at: required}}
  - {event: minutes, from: held, to: done, roles: [chair]}
deadlines:
  plan_due: {live_in: planned, anchor: field target, after: 0 days}
  minutes_due: {live_in: held, anchor: field held_at, after: 24 hours}
"""


def test_field_anchored_deadline_moves_and_hour_deadline_breaches_exactly(
        backend: Backend, clock: FakeClock) -> None:
    e = backend.open(clock, definitions=alert_definition(CONF_YAML))
    chair = Actor("c", "chair")
    try:
        inst = e.start("conf", ref="C-1", data={"target": "2012-06-20"}, actor=chair)
        assert inst.deadlines == {"plan_due": date(2012, 6, 20)}
        moved = e.fire(inst.id, "retarget", chair, data={"target": "2012-06-25"})
        assert moved.deadlines == {"plan_due": date(2012, 6, 25)}
        assert e.tick(datetime(2012, 6, 22, tzinfo=UTC)).breached == 0  # old breach moved
        held = e.fire(inst.id, "hold", chair, data={"held_at": "2012-06-24T14:30"})
        exact = next(d for d in held.deadline_list if d.name == "minutes_due")
        assert exact.exact and exact.due_at == datetime(2012, 6, 25, 13, 30, tzinfo=UTC)
        assert e.tick(datetime(2012, 6, 25, 13, 29, tzinfo=UTC)).breached == 0
        assert e.tick(datetime(2012, 6, 25, 13, 30, tzinfo=UTC)).breached == 1
        statuses = {d.name: d.status.value for d in e.get(inst.id).deadline_list}
        assert statuses == {"plan_due": "met", "minutes_due": "breached"}
    finally:
        e.close()


def test_a_crashed_workers_claims_return_after_the_lease(engine: Engine,
                                                         clock: FakeClock) -> None:
    started(engine)
    due = datetime(2012, 6, 15, 12, tzinfo=UTC)
    store = engine.store
    claimed = store.claim_due_timers(due, "crashed", clock.now() + timedelta(minutes=5), 10,
                                     clock_now=clock.now())
    assert [t.name for t in claimed] == ["response_reminder"]
    assert engine.tick(due).fired == 0  # still leased to the crashed worker
    clock.advance(timedelta(minutes=6))
    assert engine.tick(due).fired == 1


def test_a_failing_timer_backs_off_and_gives_up_without_stopping_others(
        backend: Backend, clock: FakeClock) -> None:
    yaml = ALERT_YAML.replace("""  - event: no_response
    from: alert
    to: stage1""", """  - event: no_response
    from: alert
    to: stage1
    record:
      broken: "1 // 0\"""")
    e = backend.open(clock, definitions=alert_definition(yaml))
    try:
        bad = started(e, "C-1")
        later = datetime(2012, 7, 1, tzinfo=UTC)
        first = e.tick(later)
        assert (first.fired, first.failed, first.breached) == (1, 1, 1)  # reminder fired
        for _ in range(6):
            clock.advance(timedelta(hours=1))
            e.tick(later)
        [timer] = [t for t in table_rows(e, "timers") if t["name"] == "escalate_on_breach"]
        assert (timer["status"], timer["attempts"]) == ("failed", 5)
        assert "broken" in timer["last_error"]
        assert e.get(bad.id).state == "alert"
    finally:
        e.close()


def test_old_version_runs_on_after_its_file_is_replaced(backend: Backend, clock: FakeClock,
                                                        tmp_path: Path) -> None:
    from icsflow.definitions.loader import load_file

    path = tmp_path / "alert.yaml"
    path.write_text(ALERT_YAML)
    e = backend.open(clock, definitions=load_file(path))
    old = started(e)
    e.close()
    path.write_text(ALERT_YAML.replace("version: 1", "version: 2"))
    e = backend.open(clock, definitions=load_file(path))
    try:
        moved = e.fire(old.id, "respond", TM, data={"response": "x"})
        assert (moved.version, moved.state) == (1, "responded")
        assert started(e, "C-2").version == 2
    finally:
        e.close()


def _three_cases_then_catch_up(e: Engine, clock: FakeClock, commit_every: int) -> Any:
    """C-2's escalation fails (1 // 0) between C-1's and C-3's, in the middle of one batch;
    every firing before and after it in the batch cascades (stage1, stage2, weekly nags)."""
    for ref, visits in (("C-1", 1), ("C-2", 0), ("C-3", 1)):
        e.start("alert", ref=ref, data={**START_DATA, "visits": visits}, actor=IRO)
    clock.set(datetime(2013, 1, 1, tzinfo=UTC))
    return e.tick(commit_every=commit_every)


def test_a_failing_firing_in_a_batch_is_redone_one_by_one_and_loses_nothing(
        backend: Backend, clock: FakeClock, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    defs = alert_definition(FAILS_FOR_ZERO_VISITS_YAML)
    batched = backend.open(clock, definitions=defs, pause_gc=True)
    (tmp_path / "each").mkdir()
    other = Backend(backend.kind, tmp_path / "each")
    each_clock = FakeClock(T0)
    each = other.open(each_clock, definitions=defs)
    redone: list[int] = []
    collecting: list[bool] = []
    one_by_one = batched.ticker._fire_one_by_one

    def spy(*args: Any) -> None:
        redone.append(args[3])  # how many firings the redo may make
        collecting.append(gc.isenabled())
        one_by_one(*args)

    monkeypatch.setattr(batched.ticker, "_fire_one_by_one", spy)
    try:
        got = _three_cases_then_catch_up(batched, clock, commit_every=500)
        want = _three_cases_then_catch_up(each, each_clock, commit_every=1)
        # The optimistic batch failed once (at its 7th firing, after C-1's cascade had written
        # rows and new timers) and was redone one by one.
        assert redone == [500]
        # The cycle collector is paused while the tick works through its batch (the engine
        # asked for it, as the daemon does), and back on once the tick has ended, even though
        # the batch failed and was redone.
        assert collecting == [False] and gc.isenabled()
        # Same counts and same rows as committing each firing: nothing lost, nothing twice.
        assert got == want
        assert (got.fired, got.breached, got.failed, got.conflicts) == (13, 5, 1, 0)
        rows = tick_summary(batched)
        assert rows == tick_summary(each)
        breach1 = datetime(2012, 6, 19, 23, tzinfo=UTC)
        breach2 = datetime(2012, 6, 27, 23, tzinfo=UTC)
        for ref in ("C-1", "C-3"):  # fired in the same transaction as C-2's failure, first
            good: Any = rows[ref]
            assert good["row"] == ("stage2", 3)
            assert good["history"] == [("start", T0), ("no_response", breach1),
                                       ("stage1_overdue", breach2)]
            assert [t[2:4] for t in good["timers"]] == [("fired", 1)] * 8
            assert [m[0] for m in good["outbox"]].count("escalated") == 1 + 3
            assert len(good["outbox"]) == 1 + 1 + 3  # reminder, escalation, three nags
        bad: Any = rows["C-2"]
        assert bad["row"] == ("alert", 1) and bad["history"] == [("start", T0)]
        assert [m[0] for m in bad["outbox"]] == ["reminder"]
        failing = next(t for t in bad["timers"] if t[0] == "escalate_on_breach")
        retry_at = datetime(2013, 1, 1, 0, 0, 30, tzinfo=UTC)  # first backoff: 30 s
        assert failing[2:] == ("pending", 1, True, retry_at)
        # Later ticks (one due timer each, still batched) back off and give up the same way.
        for _ in range(6):
            for c in (clock, each_clock):
                c.advance(timedelta(hours=1))
            assert batched.tick(commit_every=500) == each.tick(commit_every=1)
        rows = tick_summary(batched)
        assert rows == tick_summary(each)
        failing = next(t for t in rows["C-2"]["timers"]  # type: ignore[index]
                       if t[0] == "escalate_on_breach")
        assert failing[2:5] == ("failed", 5, True)
    finally:
        batched.close()
        each.close()
        other.drop()


def test_every_timer_row_is_named_by_its_id_fired_or_not(engine: Engine, clock: Any) -> None:
    """Readdressing a timer's dead letter (``icsflow outbox retry``) reads which timer queued
    it from the row's id: a declared store capability, on every store."""
    started(engine)
    clock.set(T0 + timedelta(days=60))
    engine.tick()
    rows = table_rows(engine, "timers")
    assert {r["status"] for r in rows} >= {"fired"}
    assert all(engine.timer_name(r["id"]) == r["name"] for r in rows)
    assert engine.timer_name(max(r["id"] for r in rows) + 1000) is None
