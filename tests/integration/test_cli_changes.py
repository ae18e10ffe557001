"""``icsflow diff | migrate | calendar reproject`` and ``show``'s explanations, on SQLite.

Every refusal is one ``error:`` line and exit 1 with nothing written.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from engine_support import ALERT_YAML

from icsflow.workflow import WorkingCalendar
from icsflow.workflow.cli import cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "alert.yaml").write_text(ALERT_YAML)
    return {"ICSFLOW_DB": f"sqlite:///{tmp_path / 'c.db'}", "ICSFLOW_DEFINITIONS": str(defs),
            "ICSFLOW_CONFIG": ""}


# When the moves happen: the cases' own days (on today's date every 2012 deadline is long past
# due, breached by time, and would not move).
NOW = "2012-06-01T09:00"
MIGRATE = ("migrate", "alert", "--now", NOW)


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def start(env: dict[str, str], ref: str, at: str) -> str:
    code, out, err = run(env, "start", "alert", "--ref", ref, "--actor", "iro-1", "--role",
                         "iro", "--set", "concern=no plan", "--set", "iro_email=i@example.org",
                         "--at", at, "--json")
    assert code == 0, err
    return str(json.loads(out)["id"])


def add_version(env: dict[str, str], version: int, old: str, new: str) -> None:
    text = ALERT_YAML.replace("version: 1", f"version: {version}").replace(old, new)
    (Path(env["ICSFLOW_DEFINITIONS"]) / f"alert_v{version}.yaml").write_text(text)


def test_diff_migrate_and_show_explain(env: dict[str, str]) -> None:
    first = start(env, "C-1", "2012-05-30T10:00")
    code, out, _ = run(env, "show", first)
    assert code == 0
    jubilee = WorkingCalendar().reason(date(2012, 6, 5))  # its name varies by holidays release
    assert "why: 10 working days after entry (2012-05-30T10:00+01:00, entered by start) = " \
           f"2012-06-15; passed over 2012-06-04 Spring Bank Holiday, 2012-06-05 {jubilee}, " \
           "4 weekend days" in out
    add_version(env, 2, "after: 10 working days", "after: 5 working days")
    code, out, _ = run(env, "diff", "alert")
    assert code == 0 and out.splitlines() == [
        "alert: version 1 -> version 2", "  response_due: 10 working days -> 5 working days"]
    code, out, _ = run(env, "diff", "alert", "--from-version", "1", "--to-version", "2",
                       "--json")
    assert json.loads(out)["changes"][0]["name"] == "response_due"
    code, out, err = run(env, "diff", "alert", "--from-version", "7")
    assert code == 1 and err.startswith("error: alert has no version 7")

    code, out, _ = run(env, *MIGRATE, "--to-version", "2", "--dry-run")
    assert code == 0 and "C-1" in out and "response_due: 2012-06-15 -> 2012-06-08" in out
    assert json.loads(run(env, "show", first, "--json")[1])["version"] == 1
    code, out, _ = run(env, *MIGRATE, "--to-version", "2", "--json")
    plan = json.loads(out)
    assert code == 0 and plan["migrated"] == 1 and not plan["dry_run"]
    shown = json.loads(run(env, "show", first, "--json")[1])
    assert shown["version"] == 2 and shown["history"][-1]["event"] == "migrated"
    [detail] = shown["deadline_details"]
    assert detail["explain"]["duration"] == "5 working days after"
    assert detail["explain"]["skipped"][-1] == {"day": "2012-06-05", "reason": jubilee}


def test_a_missing_state_or_a_bad_map_is_one_line_and_writes_nothing(
        env: dict[str, str]) -> None:
    first = start(env, "C-1", "2012-05-30T10:00")
    code, _, err = run(env, "fire", first, "respond", "--actor", "tm-1", "--role",
                       "team_manager", "--set", "response=soon", "--at", "2012-06-01T10:00")
    assert code == 0, err
    start(env, "C-2", "2012-05-31T10:00")
    add_version(env, 2, "responded", "answered")
    before = run(env, "list", "--json")[1]
    code, out, err = run(env, *MIGRATE, "--to-version", "2")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "has no state responded" in err and "C-1" in err and "--map responded=" in err
    assert run(env, "list", "--json")[1] == before
    code, _, err = run(env, *MIGRATE, "--to-version", "2", "--map", "responded")
    assert code == 1 and "expected OLD_STATE=NEW_STATE" in err
    code, _, err = run(env, *MIGRATE, "--to-version", "2", "--map", "responded=nope")
    assert code == 1 and "nope" in err
    assert run(env, "list", "--json")[1] == before
    code, out, _ = run(env, *MIGRATE, "--to-version", "2", "--where", "alert")
    assert code == 0 and "C-2" in out and "C-1" not in out
    code, out, _ = run(env, *MIGRATE, "--to-version", "2", "--map",
                       "responded=answered")
    assert code == 0 and "state responded -> answered" in out
    assert json.loads(run(env, "show", first, "--json")[1])["state"] == "answered"
    code, _, err = run(env, *MIGRATE, "--to-version", "9")
    assert code == 1 and err.startswith("error: ") and "version 9" in err


def test_calendar_reproject_lists_then_moves(env: dict[str, str], tmp_path: Path) -> None:
    first = start(env, "C-1", "2012-05-30T10:00")  # due 2012-06-15: window has 2012-06-11
    start(env, "C-2", "2012-06-18T10:00")  # due 2012-07-02: window does not
    config = tmp_path / "icsflow.yaml"
    config.write_text("calendar:\n  closures:\n    - {date: 2012-06-11, name: Training day}\n")
    closed = {**env, "ICSFLOW_CONFIG": str(config)}
    code, out, _ = run(closed, "calendar", "reproject", "--now", NOW, "--dry-run")
    assert code == 0
    rows = [ln for ln in out.splitlines() if " -> " in ln and not ln.startswith("ref")]
    assert len(rows) == 1 and rows[0].split()[:6] == [
        "C-1", "alert", "response_due", "2012-06-15", "->", "2012-06-18"]
    assert "2012-06-11 Training day added" in rows[0]
    code, out, _ = run(closed, "calendar", "reproject", "--now", NOW, "--json")
    assert json.loads(out)["moved"] == 1
    shown = json.loads(run(closed, "show", first, "--json")[1])
    assert shown["deadlines"]["response_due"] == "2012-06-18"
    assert shown["history"][-1]["note"] == "calendar changed: 2012-06-11 Training day added"
    assert run(closed, "calendar", "reproject", "--now", NOW, "--dry-run")[1].startswith(
        "Dry run: 0 open deadlines")
