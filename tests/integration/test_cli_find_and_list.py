"""Cases as people name them: references, ``list --as-at/--overdue/--format csv``, typos, and
``validate`` against the versions a database already uses."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from engine_support import ALERT_YAML
from sqlalchemy import create_engine, text

from icsflow.workflow.cli import cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "alert.yaml").write_text(ALERT_YAML)
    return {"ICSFLOW_DB": f"sqlite:///{tmp_path / 'c.db'}", "ICSFLOW_DEFINITIONS": str(defs),
            "ICSFLOW_CONFIG": ""}


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def start(env: dict[str, str], ref: str, at: str = "2012-06-01T10:00") -> str:
    code, out, err = run(env, "start", "alert", "--ref", ref, "--actor", "iro-1", "--role",
                         "iro", "--set", "concern=no plan", "--set", "iro_email=iro@example.org",
                         "--set", "team_manager_email=tm@example.org", "--at", at, "--json")
    assert code == 0, err
    return str(json.loads(out)["id"])


def respond(env: dict[str, str], case: str, at: str) -> tuple[int, str, str]:
    return run(env, "fire", case, "respond", "--actor", "tm-1", "--role", "team_manager",
               "--set", "response=agreed", "--at", at)


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_show_and_fire_take_a_reference(env: dict[str, str]) -> None:
    iid = start(env, "C-1")
    code, out, _ = run(env, "show", "C-1")
    assert code == 0 and out.startswith(iid)
    code, out, err = respond(env, "C-1", "2012-06-05T09:00")
    assert code == 0, err
    assert "state: Responded" in run(env, "show", iid)[1]  # ids still work (labels shown)


def test_an_ambiguous_reference_lists_the_matches_and_changes_nothing(
        env: dict[str, str]) -> None:
    """start refuses a reference another case has; a database from before that rule (or
    written by another tool) may still hold two: naming them lists both, changes nothing."""
    first = start(env, "C-2")
    second = start(env, "C-2B", "2012-06-04T10:00")
    code, _, err = run(env, "start", "alert", "--ref", "C-2", "--actor", "iro-1", "--role",
                       "iro", "--set", "concern=no plan", "--set", "iro_email=i@example.org")
    assert code == 1 and "'C-2' is already the reference of another case" in err
    sql = create_engine(env["ICSFLOW_DB"])
    with sql.begin() as conn:  # as an older database may hold them
        conn.execute(text("UPDATE instances SET ref = 'C-2' WHERE id = :i"), {"i": second})
    sql.dispose()
    code, out, err = run(env, "show", "C-2")
    assert code == 1 and out == ""
    assert "reference 'C-2' matches 2 cases" in err
    assert first in err and second in err
    code, _, err = respond(env, "C-2", "2012-06-05T09:00")
    assert code == 1 and first in err
    assert all(json.loads(run(env, "show", i, "--json")[1])["state"] == "alert"
               for i in (first, second))
    code, _, err = run(env, "show", "C-404")
    assert code == 1 and err.strip() == ("error: no instance with id 'C-404', nor a case with "
                                         "that reference (icsflow list shows them)")


def test_list_as_at_rebuilds_states_and_deadlines_from_history(env: dict[str, str]) -> None:
    iid = start(env, "C-3")
    assert respond(env, iid, "2012-06-22T11:00")[0] == 0  # late: due 19 June (jubilee)
    code, out, _ = run(env, "list", "--as-at", "2012-05-31", "--format", "csv")
    assert code == 0 and csv_rows(out) == []  # not started yet
    code, out, _ = run(env, "list", "--as-at", "2012-06-21", "--format", "csv")
    [row] = csv_rows(out)
    assert (row["ref"], row["state"], row["deadline"], row["due"]) == \
        ("C-3", "alert", "response_due", "2012-06-19")
    assert row["working_days_overdue"] == "2"  # 20 and 21 June
    code, out, _ = run(env, "list", "--as-at", "2012-06-22", "--format", "csv")
    [row] = csv_rows(out)
    assert (row["state"], row["deadline"]) == ("responded", "")
    code, out, _ = run(env, "list", "--as-at", "2012-06-21", "--state", "responded")
    assert code == 0 and out.strip() == "no cases"
    code, out, _ = run(env, "list", "--as-at", "2012-06-21", "--json")
    assert json.loads(out)[0]["state"] == "alert"


def test_list_overdue_worst_first_with_working_days(env: dict[str, str]) -> None:
    late = start(env, "C-LATE", "2012-05-01T10:00")
    later = start(env, "C-LATER", "2012-06-01T10:00")
    start(env, "C-NOT-YET", "2012-06-20T10:00")
    code, out, _ = run(env, "list", "--overdue", "--as-at", "2012-06-25", "--format", "csv")
    assert code == 0
    rows = csv_rows(out)
    assert [r["id"] for r in rows] == [late, later]
    # 1 May + 10 working days = 16 May (7 May a bank holiday); 17 May .. 25 June has 26
    # working days (4 and 5 June off for the jubilee)
    assert [(r["due"], r["working_days_overdue"]) for r in rows] == \
        [("2012-05-16", "26"), ("2012-06-19", "4")]
    code, out, _ = run(env, "list", "--overdue", "--as-at", "2012-06-25")
    assert "Response due 2012-05-16 (26)" in out.splitlines()[1]  # labels (issue 28)
    # Now (the wall clock is long past 2012) every unanswered case is overdue.
    code, out, _ = run(env, "list", "--overdue", "--json")
    assert [c["ref"] for c in json.loads(out)] == ["C-LATE", "C-LATER", "C-NOT-YET"]
    assert json.loads(out)[0]["overdue_deadline"] == "response_due"


@pytest.mark.parametrize("args, message", [
    (["--definition", "alret"], "unknown definition 'alret' (known: alert); did you mean "
                                "'alert'?"),
    (["--state", "respnded"], "did you mean 'responded'?"),
    (["--definition", "alert", "--state", "nowhere"], "unknown state 'nowhere'"),
])
def test_unknown_filters_exit_1_with_did_you_mean(env: dict[str, str], args: list[str],
                                                   message: str) -> None:
    start(env, "C-4")
    code, out, err = run(env, "list", *args)
    assert code == 1 and out == "" and message in err


def test_validate_with_a_database_names_a_version_changed_since_first_used(
        env: dict[str, str], tmp_path: Path) -> None:
    first = start(env, "C-5")
    start(env, "C-6")
    assert respond(env, first, "2012-06-05T09:00")[0] == 0
    run(env, "fire", first, "accept", "--actor", "iro-1", "--role", "iro", "--set",
        "outcome=satisfactory")
    code, out, _ = run(env, "validate")
    assert code == 0 and "none changed since first used (1 version used" in out
    path = tmp_path / "defs" / "alert.yaml"
    path.write_text(ALERT_YAML.replace("title: Alert", "title: Alert (changed)"))
    code, out, err = run(env, "validate")
    assert code == 1 and out == ""
    assert err.splitlines()[0] == (f"{path}:2: alert v1 changed since first used: bump version "
                                   "to 2 (1 open case stays on v1)")
    # Without a database the file is fine on its own, as before.
    no_db = {k: v for k, v in env.items() if k != "ICSFLOW_DB"}
    assert run(no_db, "validate")[1].strip() == "1 definition OK"
    # The bumped version passes.
    path.write_text(ALERT_YAML.replace("version: 1", "version: 2"))
    assert run(env, "validate")[0] == 0


def test_validate_against_a_missing_sqlite_file_leaves_no_file(tmp_path: Path,
                                                               env: dict[str, str]) -> None:
    missing = tmp_path / "none.db"
    code, out, _ = run({**env, "ICSFLOW_DB": f"sqlite:///{missing}"}, "validate")
    assert code == 0 and "0 versions used" in out
    assert not missing.exists()
