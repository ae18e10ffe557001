# ruff: noqa: F811 - pytest fixtures imported from engine_support are used as arguments
"""Cases belong to a child: stored, listed, shown, and read back as the child's timeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from engine_support import (
    ALERT_YAML,
    IRO,
    START_DATA,
    TM,
    Backend,
    backend,  # noqa: F401 - fixture
    clock,  # noqa: F401 - fixture
    engine,  # noqa: F401 - fixture
)
from sqlalchemy import text

from icsflow.definitions.registry import DefinitionSet
from icsflow.storage.db import create_db_engine, upgrade
from icsflow.workflow import Engine, FakeClock
from icsflow.workflow.cli import cli
from icsflow.workflow.errors import ValidationError
from icsflow.workflow.timeline import child_timeline


def test_a_case_keeps_its_child_and_family(engine: Engine) -> None:
    inst = engine.start("alert", ref="C-1", data=START_DATA, actor=IRO, child="CH-100",
                        family="F-7")
    again = engine.get(inst.id)
    assert (again.child, again.family) == ("CH-100", "F-7")
    assert again.to_json()["child"] == "CH-100" and again.to_json()["family"] == "F-7"


def test_a_case_without_a_child_says_null(engine: Engine) -> None:
    inst = engine.start("alert", ref="C-1", data=START_DATA, actor=IRO)
    assert inst.child is None and inst.to_json()["child"] is None


def test_list_by_child_and_family(engine: Engine) -> None:
    a = engine.start("alert", ref="C-1", data=START_DATA, actor=IRO, child="CH-1", family="F")
    b = engine.start("alert", ref="C-2", data=START_DATA, actor=IRO, child="CH-2", family="F")
    engine.start("alert", ref="C-3", data=START_DATA, actor=IRO)
    assert [i.id for i in engine.list(child="CH-1")] == [a.id]
    assert {i.id for i in engine.list_cases(family="F")} == {a.id, b.id}
    assert engine.list(child="nobody") == []


@pytest.mark.parametrize("bad", ["", "  ", "Jane Smith", "x" * 201, "a\tb"])
def test_a_child_identifier_with_spaces_or_empty_is_refused(engine: Engine, bad: str) -> None:
    with pytest.raises(ValidationError, match="child"):
        engine.start("alert", ref="C-1", data=START_DATA, actor=IRO, child=bad)
    assert engine.list() == []


def test_timeline_lists_open_cases_first_and_events_newest_first(
        engine: Engine, clock: FakeClock) -> None:
    first = engine.start("alert", ref="C-1", data=START_DATA, actor=IRO, child="CH-1")
    clock.advance(timedelta(days=1))
    second = engine.start("alert", ref="C-2", data=START_DATA, actor=IRO, child="CH-1")
    clock.advance(timedelta(days=1))
    engine.fire(first.id, "respond", actor=TM, data={"response": "done"})
    engine.fire(first.id, "accept", actor=IRO, data={"outcome": "satisfactory"})
    tl = child_timeline("CH-1", engine.child_cases("CH-1"), clock.now(), engine.calendar)
    assert [c.id for c in tl.cases] == [second.id, first.id]  # open before closed
    assert [e.entry.event for e in tl.events] == ["accept", "respond", "start", "start"]
    assert [d.name for d in tl.live_deadlines(tl.cases[0])] == ["response_due"]
    js = tl.to_json()
    assert js["cases"][0]["deadlines"][0]["working_days_left"] >= 0
    assert js["events"][0]["instance_id"] == first.id


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "alert.yaml").write_text(ALERT_YAML)
    return {"ICSFLOW_DB": f"sqlite:///{tmp_path / 'c.db'}", "ICSFLOW_DEFINITIONS": str(defs),
            "ICSFLOW_CONFIG": ""}


def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


START = ["start", "alert", "--actor", "iro-1", "--role", "iro",
         "--set", "concern=no plan", "--set", "iro_email=iro@example.org",
         "--at", "2011-12-19T10:00"]


def test_cli_start_child_then_list_and_child_timeline(env: dict[str, str]) -> None:
    code, out, err = _run(env, *START, "--ref", "C-1", "--child", "CH-9", "--family", "F-1",
                          "--json")
    assert code == 0, err
    inst = json.loads(out)
    assert inst["child"] == "CH-9" and inst["family"] == "F-1"
    _run(env, *START, "--ref", "C-2")
    code, out, _ = _run(env, "list", "--child", "CH-9", "--json")
    assert [i["id"] for i in json.loads(out)] == [inst["id"]]
    code, out, _ = _run(env, "child", "CH-9", "--now", "2011-12-20T09:00", "--json")
    assert code == 0
    tl = json.loads(out)
    assert tl["child"] == "CH-9" and tl["families"] == ["F-1"]
    assert tl["cases"][0]["deadlines"][0]["due"] == "2012-01-05"  # Christmas and Boxing Day
    assert tl["events"][0]["event"] == "start"
    code, out, _ = _run(env, "child", "CH-9", "--now", "2011-12-20T09:00")
    # The human timeline reads labels (issue 28); --json above keeps the names.
    assert code == 0 and "Response due" in out and "2012-01-05" in out and "Start" in out


def test_cli_child_unknown_is_one_line_exit_1(env: dict[str, str]) -> None:
    _run(env, "db", "upgrade")
    code, _, err = _run(env, "child", "CH-404")
    assert code == 1 and err.count("\n") == 1 and "CH-404" in err
    code, _, err = _run(env, *START, "--ref", "C-1", "--child", "two words")
    assert code == 1 and "child" in err


def test_migration_adds_child_columns_to_an_existing_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    sql = create_db_engine(url)
    upgrade(sql, "0002")
    now = datetime(2011, 12, 1, tzinfo=UTC).replace(tzinfo=None)
    with sql.begin() as conn:
        conn.execute(text(
            "INSERT INTO instances (id, definition, definition_version, ref, state, data, "
            "version, created_at, updated_at, started_at) VALUES ('i1', 'alert', 1, 'C-1', "
            "'alert', '{}', 1, :t, :t, :t)"), {"t": now})
    upgrade(sql)
    with sql.connect() as conn:
        assert conn.execute(text("SELECT child, family FROM instances")).one() == (None, None)
        names = {r[1] for r in conn.execute(text("PRAGMA index_list('instances')"))}
    assert {"ix_instances_child", "ix_instances_family"} <= names
    sql.dispose()


def test_two_transactions_of_one_child_at_once_still_make_one_dual_status(
        backend: Backend, clock: FakeClock) -> None:
    """A plan made while the child is being made looked after, at the same moment: whichever
    commits second sees the other's case, so dual status starts exactly once."""
    import threading

    from icsflow.workflow import Actor

    engine = backend.open(clock, definitions=DefinitionSet.load_default(), directory={
        "admin": ["admin@example.org"], "minute_manager": ["m@example.org"],
        "iro_service_manager": ["ism@example.org"], "service_manager": ["sm@example.org"]})
    try:
        for n in range(4):
            child = f"RACE-{n}"
            conf = engine.start("cp_conference", ref=f"P-{n}", actor=Actor("cpc-1", "cpc"),
                                data={"strategy_discussion_on": "2011-10-03",
                                      "team_manager_email": "tm@example.org"}, child=child)
            barrier = threading.Barrier(2)
            errors: list[BaseException] = []

            def plan(conf_id: str = conf.id, barrier: threading.Barrier = barrier,
                     errors: list[BaseException] = errors) -> None:
                try:
                    barrier.wait()
                    engine.fire(conf_id, "hold_icpc", Actor("cpc-1", "cpc"),
                                data={"held_at": "2011-10-20T10:00:00+01:00",
                                      "plan_made": True})
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)

            def looked_after(child: str = child, barrier: threading.Barrier = barrier,
                             errors: list[BaseException] = errors) -> None:
                try:
                    barrier.wait()
                    engine.start("initial_review", ref=f"R-{child}",
                                 actor=Actor("sw", "social_worker"),
                                 data={"looked_after_on": "2011-10-20",
                                       "team_manager_email": "tm@example.org"}, child=child)
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)

            threads = [threading.Thread(target=plan), threading.Thread(target=looked_after)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert errors == []
            dual = [i for i in engine.list(child=child) if i.definition == "dual_status"]
            assert len(dual) == 1, child
    finally:
        engine.close()
