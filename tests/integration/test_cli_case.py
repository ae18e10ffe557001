"""``icsflow start/fire/show/list/tick/db upgrade`` on a real SQLite file."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from engine_support import ALERT_YAML

from icsflow.workflow.cli import cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "alert.yaml").write_text(ALERT_YAML)
    return {"ICSFLOW_DB": f"sqlite:///{tmp_path / 'c.db'}", "ICSFLOW_DEFINITIONS": str(defs),
            "ICSFLOW_CONFIG": "", "ICSFLOW_MAILDIR": str(tmp_path / "mail")}


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


START = ["start", "alert", "--ref", "C-1", "--actor", "iro-1", "--role", "iro",
         "--set", "concern=no plan", "--set", "iro_email=iro@example.org",
         "--set", "team_manager_email=tm@example.org", "--at", "2012-06-01T10:00"]


@pytest.mark.real_migrations  # `db upgrade` on an empty file runs every Alembic migration
def test_db_upgrade_then_start_fire_show_list(env: dict[str, str]) -> None:
    code, out, _ = run(env, "db", "upgrade")
    assert code == 0 and "upgraded from empty" in out
    assert "up to date" in run(env, "db", "upgrade")[1]
    code, out, _ = run(env, *START, "--json")
    assert code == 0
    inst = json.loads(out)
    assert inst["deadlines"] == {"response_due": "2012-06-19"}
    assert datetime.fromisoformat(inst["history"][0]["at"]) == datetime.fromisoformat(
        "2012-06-01T10:00:00+01:00")  # a naive --at is Europe/London time
    code, out, _ = run(env, "fire", inst["id"], "respond", "--actor", "tm-1", "--role",
                       "team_manager", "--set", "response=agreed", "--note", "called",
                       "--at", "2012-06-05T09:00", "--json")
    assert code == 0 and json.loads(out)["state"] == "responded"
    code, out, _ = run(env, "show", inst["id"])
    # Human output reads labels (issue 28; unlabelled names read spaced and capitalised).
    assert code == 0 and "state: Responded" in out and "Respond " in out and "met" in out
    code, out, _ = run(env, "list", "--state", "responded")
    assert code == 0 and inst["id"] in out
    code, out, _ = run(env, "list", "--json", "--definition", "alert")
    assert [i["id"] for i in json.loads(out)] == [inst["id"]]


def test_refusals_are_one_line_exit_1(env: dict[str, str]) -> None:
    code, out, _ = run(env, *START, "--json")
    iid = json.loads(out)["id"]
    for args, words in [
        (["fire", iid, "respond", "--actor", "x", "--role", "iro", "--set", "response=x"],
         "allowed roles: team_manager"),
        (["fire", iid, "accept", "--actor", "x", "--role", "iro"], "not allowed in state"),
        (["fire", iid, "comment", "--actor", "x", "--role", "iro", "--set", "visits=lots"],
         "visits"),
        (["fire", iid, "comment", "--actor", "x", "--role", "iro", "--set", "nope=1"],
         "unknown field"),
        (["show", "missing"], "no instance"),
        (["start", "nosuch", "--ref", "C", "--actor", "a", "--role", "iro"], "nosuch"),
    ]:
        code, out, err = run(env, *args)
        assert code == 1, (args, out, err)
        assert err.startswith("error: ") and words in err and err.count("\n") == 1
        assert "Traceback" not in err


def test_usage_errors_exit_2(env: dict[str, str]) -> None:
    assert run(env, "fire", "only-an-id")[0] == 2
    assert run(env, *START[:-1], "not-a-date")[0] == 2


def test_tick_with_now_replays_timers(env: dict[str, str]) -> None:
    code, out, _ = run(env, *START, "--json")
    iid = json.loads(out)["id"]
    code, out, _ = run(env, "tick", "--now", "2012-07-01T00:00")
    assert code == 0 and "fired" in out
    code, out, _ = run(env, "show", iid, "--json")
    shown = json.loads(out)
    assert shown["state"] == "stage2"
    assert [h["event"] for h in shown["history"]] == ["start", "no_response", "stage1_overdue"]
