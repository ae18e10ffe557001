"""Read commands never create a database, read a read-only one, and a bad mail channel stops
``tick`` before any timer fires."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from engine_support import ALERT_YAML

from icsflow.workflow.cli import cli

START = ["start", "alert", "--ref", "C-1", "--actor", "iro-1", "--role", "iro",
         "--set", "concern=no plan", "--set", "iro_email=iro@example.org",
         "--set", "team_manager_email=tm@example.org", "--at", "2012-06-01T10:00"]


def _env(tmp_path: Path, db: Path) -> dict[str, str]:
    defs = tmp_path / "defs"
    defs.mkdir(exist_ok=True)
    (defs / "alert.yaml").write_text(ALERT_YAML)
    return {"ICSFLOW_DB": f"sqlite:///{db}", "ICSFLOW_DEFINITIONS": str(defs),
            "ICSFLOW_CONFIG": "", "ICSFLOW_MAILDIR": str(tmp_path / "mail")}


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("args", [["list"], ["show", "x"], ["outbox"], ["tick"],
                                  ["fire", "x", "respond", "--actor", "t", "--role", "tm"]])
def test_a_command_that_does_not_create_says_no_database_and_creates_nothing(
        tmp_path: Path, args: list[str]) -> None:
    db = tmp_path / "nonexistent" / "dir" / "x.db"
    code, out, err = run(_env(tmp_path, db), *args)
    assert code == 1
    assert err.strip() == (f"error: no database at {db} (`icsflow db upgrade` or "
                           "`icsflow start` creates one)")
    assert not (tmp_path / "nonexistent").exists()


def test_start_creates_the_database(tmp_path: Path) -> None:
    db = tmp_path / "new" / "x.db"
    assert run(_env(tmp_path, db), *START)[0] == 0
    assert db.is_file()


def test_list_reads_without_writing_even_a_new_definition(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    env = _env(tmp_path, db)
    assert run(env, *START)[0] == 0
    (tmp_path / "defs" / "other.yaml").write_text(ALERT_YAML.replace("name: alert",
                                                                     "name: other"))
    before = db.read_bytes()
    db.chmod(0o444)
    try:
        code, out, err = run(env, "list")
    finally:
        db.chmod(0o644)
    assert code == 0, err
    assert "C-1" in out
    assert db.read_bytes() == before  # opened read-only: not even `other` was registered


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write a read-only file")
def test_list_works_on_a_read_only_file_in_a_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    env = _env(tmp_path, folder / "c.db")
    assert run(env, *START)[0] == 0
    (folder / "c.db").chmod(0o444)
    folder.chmod(0o555)
    try:
        code, out, err = run(env, "list")
    finally:
        folder.chmod(0o755)
    assert code == 0, err
    assert "C-1" in out


def test_a_bad_maildir_stops_tick_before_any_timer_fires(tmp_path: Path) -> None:
    env = _env(tmp_path, tmp_path / "c.db")
    assert run(env, *START)[0] == 0
    blocker = tmp_path / "mail-is-a-file"
    blocker.write_text("")
    code, out, err = run({**env, "ICSFLOW_MAILDIR": str(blocker)}, "tick", "--now",
                         "2012-07-01T00:00")
    assert code == 1 and err.startswith("error: mail channel: ")
    assert "timers" not in out
    code, out, _ = run(env, "show", "--json", *[line.split()[0] for line in
                                                run(env, "list")[1].splitlines()[1:2]])
    assert '"state": "alert"' in out
