# ruff: noqa: F811 - pytest fixtures imported from engine_support are used as arguments
"""Every door refuses a bad value in one line before the database, alike on SQLite and
PostgreSQL, and changes nothing (workflow/limits.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from engine_support import (  # noqa: F401 - fixtures
    ALERT_YAML,
    IRO,
    START_DATA,
    TM,
    Backend,
    alert_definition,
    backend,
    clock,
    engine,
)

from icsflow.workflow import Actor, Engine, FakeClock
from icsflow.workflow.config import load_config
from icsflow.workflow.errors import ConfigurationError, DefinitionError, ValidationError


def _nothing_written(e: Engine) -> bool:
    return e.list() == []


@pytest.mark.parametrize("ref", ["x" * 201, "C-1\r\nBcc: all@example.org", "C\x00-1", "C-1\x07"])
def test_a_bad_case_reference_is_refused_before_the_database(engine: Engine, ref: str) -> None:
    with pytest.raises(ValidationError, match="^ref: ") as info:
        engine.start("alert", ref=ref, data=START_DATA, actor=IRO)
    assert "\n" not in str(info.value)
    assert _nothing_written(engine)


def test_a_long_actor_id_is_refused_the_same_on_every_database(engine: Engine) -> None:
    with pytest.raises(ValidationError, match="^actor: 201 characters is too long"):
        engine.start("alert", ref="C-1", data=START_DATA, actor=Actor("a" * 201, "iro"))
    assert _nothing_written(engine)


@pytest.mark.parametrize("at", [date(9999, 12, 31), date(1, 1, 1), date(1989, 12, 31),
                                datetime(2101, 1, 1, tzinfo=UTC)])
def test_an_event_time_outside_the_calendar_is_refused(engine: Engine, at: date) -> None:
    with pytest.raises(ValidationError, match="outside the supported dates"):
        engine.start("alert", ref="C-1", data=START_DATA, actor=IRO, at=at)
    assert _nothing_written(engine)


@pytest.mark.parametrize("value", ["2150-01-01", "1900-01-01"])
def test_a_date_field_outside_the_calendar_is_refused(engine: Engine, value: str) -> None:
    with pytest.raises(ValidationError, match="field 'meeting_date': .* outside the supported"):
        engine.start("alert", ref="C-1", data={**START_DATA, "meeting_date": value}, actor=IRO)
    assert _nothing_written(engine)


def test_a_tick_outside_the_calendar_is_refused(engine: Engine) -> None:
    with pytest.raises(ValidationError, match="^now: 9999-12-31"):
        engine.tick(datetime(9999, 12, 31, 23, 59, tzinfo=UTC))


def test_an_event_before_the_cases_last_event_is_refused(engine: Engine,
                                                         clock: FakeClock) -> None:
    inst = engine.start("alert", ref="C-1", data=START_DATA, actor=IRO)
    with pytest.raises(ValidationError, match="before the case's last recorded event "
                       r"\(start at 2012-06-01T09:00:00\+00:00\)"):
        engine.fire(inst.id, "respond", TM, data={"response": "x"}, at=date(2011, 1, 1))
    after = engine.get(inst.id)
    assert (after.state, len(after.history)) == ("alert", 1)


def test_a_header_bound_field_with_a_line_break_is_refused_but_a_body_text_is_not(
        backend: Backend, clock: FakeClock) -> None:
    yaml = ALERT_YAML.replace('subject: "Alert {{ ref }}: responded"',
                              'subject: "Alert {{ ref }}: {{ data.response }}"')
    e = backend.open(clock, definitions=alert_definition(yaml))
    try:
        inst = e.start("alert", ref="C-1", data={**START_DATA, "concern": "two\nlines"},
                       actor=IRO)
        with pytest.raises(ValidationError, match="field 'response': contains the control "
                           "character '\\\\n'; it would break the email headers"):
            e.fire(inst.id, "respond", TM, data={"response": "ok\nBcc: x@example.org"})
        assert e.get(inst.id).state == "alert"
    finally:
        e.close()


@pytest.mark.parametrize("change, problem", [
    ("version: 1", "version 99999999999 is out of range"),
    ("after: 10 working days", "99999999999 working days is longer than the working-day "
                               "calendar"),
])
def test_a_definition_the_database_or_calendar_cannot_hold_is_refused_at_open(
        backend: Backend, clock: FakeClock, change: str, problem: str) -> None:
    new = change.replace("1", "99999999999", 1) if change.startswith("version") else \
        change.replace("10", "99999999999")
    with pytest.raises(DefinitionError, match=r"alert\.yaml:\d+: .*" + problem):
        backend.open(clock, definitions=alert_definition(ALERT_YAML.replace(change, new, 1)))


def test_a_deadline_counted_past_the_calendar_refuses_the_start_in_one_line(
        engine: Engine) -> None:
    with pytest.raises(ValidationError, match="would fall outside the supported dates"):
        engine.start("alert", ref="C-1", data=START_DATA, actor=IRO,
                     at=datetime(2100, 12, 30, 9, tzinfo=UTC))
    assert _nothing_written(engine)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e300", "0"])
def test_an_interval_of_nan_or_inf_is_refused(value: str) -> None:
    with pytest.raises(ConfigurationError, match="^ICSFLOW_SWEEP_SECONDS: .* is not a positive"):
        load_config(None, env={"ICSFLOW_SWEEP_SECONDS": value})


def test_an_empty_or_invisible_actor_is_refused(engine: Engine) -> None:
    for actor in ("", "  ", "iro\u200b1", "\u202eiro"):
        with pytest.raises(ValidationError, match="^actor: "):
            engine.start("alert", ref="C-1", data=START_DATA, actor=Actor(actor, "iro"))
    assert _nothing_written(engine)
    inst = engine.start("alert", ref="C-1", data=START_DATA, actor=IRO)
    with pytest.raises(ValidationError, match="^actor: an identifier is required"):
        engine.fire(inst.id, "escalate", actor=Actor("", "iro"))
    assert engine.get(inst.id).state == "alert"


def test_references_actors_and_children_are_stored_normalised(engine: Engine) -> None:
    inst = engine.start("alert", ref="Ｃ－１", data=START_DATA, actor=Actor("ｉｒｏ-1", "iro"),
                        child="ＣＨ-1")
    assert (inst.ref, inst.child, inst.history[0].actor) == ("C-1", "CH-1", "iro-1")
    assert [c.id for c in engine.find("Ｃ－１")] == [inst.id] == [c.id for c in engine.find("C-1")]


def test_a_look_alike_child_id_is_refused(engine: Engine) -> None:
    with pytest.raises(ValidationError, match="^child: .*mixes letters of several scripts"):
        engine.start("alert", ref="C-1", data=START_DATA, actor=IRO, child="С\u0048-1")
    assert _nothing_written(engine)


def test_a_new_sqlite_database_is_readable_by_its_owner_only(tmp_path, clock) -> None:
    import stat

    path = tmp_path / "private" / "icsflow.db"
    with Engine.open(f"sqlite:///{path}", definitions=alert_definition(), clock=clock) as e:
        e.start("alert", ref="C-1", data=START_DATA, actor=IRO)
        for p in (path, path.with_name("icsflow.db-wal"), path.with_name("icsflow.db-shm")):
            if p.exists():
                assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
