# ruff: noqa: F811 - pytest fixtures imported from engine_support are used as arguments
"""An event carries only the fields its transition ``set:``s, at every door (Python API, CLI,
web form, JSON API, import): a team manager answering an Alert cannot redirect the IRO's email
or rewrite the concern on the way. Nothing is written when a field is refused."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from engine_support import (  # noqa: F401 - fixtures
    ALERT_YAML,
    IRO,
    START_DATA,
    TM,
    backend,
    clock,
    engine,
)
from fastapi.testclient import TestClient
from web_support import WebWorld, build

from icsflow.workflow import Engine
from icsflow.workflow.cli import cli
from icsflow.workflow.errors import FieldNotSettable, ValidationError
from icsflow.workflow.transfer.importer import import_file

ATTACK = {"iro_email": "attacker@evil.example"}


def _unchanged(e: Engine, case_id: str, state: str, data: dict[str, object]) -> None:
    inst = e.get(case_id)
    assert inst.state == state
    assert {k: inst.data.get(k) for k in data} == data
    assert e.outbox.list(instance_id=case_id) == [] or all(
        "attacker" not in m.recipients for m in e.outbox.list(instance_id=case_id))


def test_the_python_api_refuses_a_field_the_event_does_not_set(engine: Engine) -> None:
    inst = engine.start("alert", ref="C-1", data=START_DATA, actor=IRO)
    with pytest.raises(FieldNotSettable) as info:
        engine.fire(inst.id, "respond", actor=TM,
                    data={"response": "done", **ATTACK, "concern": "rewritten"})
    err = info.value
    assert err.fields == ["iro_email", "concern"] and err.allowed == ["response"]
    assert err.instance_id == inst.id and err.event == "respond"
    assert str(err) == (f"case {inst.id}: event 'respond' in state 'alert' may not set fields "
                        "'iro_email', 'concern'; the fields it may set: response. Nothing was "
                        "changed")
    _unchanged(engine, inst.id, "alert", {"iro_email": "iro@example.org",
                                          "concern": "no plan"})
    assert [h.event for h in engine.get(inst.id).history] == ["start"]


def test_an_event_with_no_set_fields_takes_none(engine: Engine) -> None:
    inst = engine.start("alert", ref="C-1", data=START_DATA, actor=IRO)
    with pytest.raises(ValidationError, match="the fields it may set: none"):
        engine.fire(inst.id, "escalate", actor=IRO, data={"concern": "louder"})
    assert engine.get(inst.id).state == "alert"


def test_the_fields_of_the_transition_taken_are_accepted(engine: Engine) -> None:
    inst = engine.start("alert", ref="C-1", data=START_DATA, actor=IRO)
    done = engine.fire(inst.id, "respond", actor=TM, data={"response": "done"})
    assert done.state == "responded" and done.data["response"] == "done"
    assert done.data["iro_email"] == "iro@example.org"


def test_a_field_set_only_for_another_role_is_refused(tmp_path: Path) -> None:
    """Two transitions of one event from one state: each role may set only its own fields."""
    text = ALERT_YAML.replace("""  - event: comment
    from: "*"
    roles: [iro, team_manager]
    set: {visits: optional}""", """  - event: comment
    from: "*"
    roles: [iro]
    set: {visits: optional}
  - event: comment
    from: "*"
    roles: [team_manager]
    set: {meeting_date: optional}""")
    from engine_support import alert_definition

    from icsflow.workflow import FakeClock
    from icsflow.workflow.clock import LONDON

    clock = FakeClock(__import__("datetime").datetime(2012, 6, 1, 9, tzinfo=LONDON))
    with Engine.open(f"sqlite:///{tmp_path / 'x.db'}", definitions=alert_definition(text),
                     clock=clock) as e:
        inst = e.start("alert", ref="C-1", data=START_DATA, actor=IRO)
        with pytest.raises(FieldNotSettable, match="may not set field 'visits'"):
            e.fire(inst.id, "comment", actor=TM, data={"visits": 3})
        assert e.fire(inst.id, "comment", actor=TM,
                      data={"meeting_date": "2012-06-07"}).data["meeting_date"] == "2012-06-07"
        assert e.fire(inst.id, "comment", actor=IRO, data={"visits": 3}).data["visits"] == 3


# -- the other doors ------------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> WebWorld:
    w = build(tmp_path)
    yield w
    w.engine.close()


def test_the_json_api_refuses_a_field_the_event_does_not_set(world: WebWorld) -> None:
    c = TestClient(world.app, follow_redirects=False)
    h = {"Authorization": f"Bearer {world.tokens['tm']}"}
    r = c.post(f"/api/cases/{world.overdue_id}/events/respond",
               json={"data": {"response": "Done", **ATTACK, "highest_stage": "alert"}},
               headers=h)
    assert r.status_code == 422
    assert "may not set fields 'iro_email', 'highest_stage'" in r.json()["error"]
    _unchanged(world.engine, world.overdue_id, "alert", {"iro_email": "iro.1@council.example"})


def test_the_web_form_refuses_a_field_it_does_not_show(world: WebWorld) -> None:
    from test_web import csrf_of, sign_in

    c = TestClient(world.app, follow_redirects=False)
    sign_in(c, "tm")
    form = c.get(f"/cases/{world.overdue_id}/events/respond")
    assert 'name="iro_email"' not in form.text  # the form only shows the set: fields
    r = c.post(f"/cases/{world.overdue_id}/events/respond",
               data={"csrf_token": csrf_of(form.text), "response": "Done", **ATTACK})
    assert r.status_code == 422
    page = html.unescape(r.text)  # the page words the refusal in labels, not ids
    iro_email = world.app.state.web.labels.field("alert_dispute", "iro_email")
    assert "may not set field" in page and iro_email in page and "iro_email" not in page
    _unchanged(world.engine, world.overdue_id, "alert", {"iro_email": "iro.1@council.example"})


def test_the_cli_refuses_a_field_the_event_does_not_set(tmp_path: Path) -> None:
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "alert.yaml").write_text(ALERT_YAML)
    env = {"ICSFLOW_DB": f"sqlite:///{tmp_path / 'c.db'}", "ICSFLOW_DEFINITIONS": str(defs),
           "ICSFLOW_CONFIG": "", "ICSFLOW_MAILDIR": str(tmp_path / "mail")}
    runner = CliRunner()
    started = runner.invoke(cli, ["start", "alert", "--ref", "C-1", "--actor", "iro-1",
                                  "--role", "iro", "--set", "concern=no plan",
                                  "--set", "iro_email=iro@example.org", "--json"], env=env)
    assert started.exit_code == 0, started.stderr
    case_id = json.loads(started.stdout)["id"]
    result = runner.invoke(cli, ["fire", "C-1", "respond", "--actor", "tm-1", "--role",
                                 "team_manager", "--set", "response=ok",
                                 "--set", "iro_email=attacker@evil.example"], env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "may not set field 'iro_email'; the fields it may set: response" in result.stderr
    shown = json.loads(runner.invoke(cli, ["show", case_id, "--json"], env=env).stdout)
    assert shown["state"] == "alert" and shown["data"]["iro_email"] == "iro@example.org"


def test_an_import_row_setting_another_field_is_named_and_nothing_is_written(
        tmp_path: Path) -> None:
    from datetime import datetime

    from icsflow.workflow import FakeClock
    from icsflow.workflow.clock import LONDON

    csv_path = tmp_path / "year.csv"
    csv_path.write_text(
        "ref,definition,event,at,actor,role,concern,iro_email,team_manager_email,response\n"
        "C-1,alert_dispute,start,2011-12-01,iro-1,iro,Plan drift,iro@example.org,"
        "tm@example.org,\n"
        "C-1,alert_dispute,respond,2011-12-05,tm-1,team_manager,,attacker@evil.example,,Done\n",
        encoding="utf-8")
    clock = FakeClock(datetime(2012, 1, 10, 12, tzinfo=LONDON))
    with Engine.open(f"sqlite:///{tmp_path / 'i.db'}", clock=clock) as e:
        report = import_file(e, csv_path)
        assert not report.ok
        messages = [str(p) for p in report.problems]
        assert any("year.csv:3" in m and "may not set field 'iro_email'" in m
                   for m in messages), messages
        assert e.list_cases() == []
