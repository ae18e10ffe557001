"""``icsflow user``: web users and tokens from the command line; passwords never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine

from icsflow.storage.web_users import UserStore
from icsflow.workflow.cli import cli
from icsflow.workflow.web.auth import password_matches, token_digest

SECRET = "a-long-enough-password"


def run(db: str, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--db", db, *args], input=stdin)


def store(db: str) -> UserStore:
    return UserStore(create_engine(db))


def fresh(tmp_path: Path) -> str:
    """A migrated database: read and user commands never create one."""
    db = f"sqlite:///{tmp_path / 'u.db'}"
    assert run(db, "db", "upgrade").exit_code == 0
    return db


def test_user_commands_need_a_database(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'missing.db'}"
    r = run(db, "user", "add", "x", "--role", "iro", "--password-stdin", stdin=SECRET + "\n")
    assert r.exit_code == 1 and "no database" in r.output


def test_add_passwd_disable_and_token(tmp_path: Path) -> None:
    db = fresh(tmp_path)
    added = run(db, "user", "add", "alice", "--role", "team_manager", "--password-stdin",
                stdin=SECRET + "\n")
    assert added.exit_code == 0, added.output
    assert SECRET not in added.output
    record = store(db).get("alice")
    assert record is not None and record.role == "team_manager"
    assert SECRET not in record.password_hash and password_matches(record.password_hash, SECRET)

    again = run(db, "user", "add", "alice", "--role", "iro", "--password-stdin",
                stdin=SECRET + "\n")
    assert again.exit_code == 1 and "exists" in again.output

    changed = run(db, "user", "passwd", "alice", "--password-stdin", stdin="another-password-1\n")
    assert changed.exit_code == 0
    record = store(db).get("alice")
    assert record is not None and password_matches(record.password_hash, "another-password-1")

    token = run(db, "user", "token", "alice").output.strip()
    assert token.startswith("icsf_") and store(db).token_user(token_digest(token)) == "alice"

    assert run(db, "user", "disable", "alice").exit_code == 0
    record = store(db).get("alice")
    assert record is not None and record.disabled
    assert store(db).token_user(token_digest(token)) is None  # tokens revoked with the user
    assert "disabled" in run(db, "user", "list").output


def test_unknown_role_short_password_and_unknown_user_are_refused(tmp_path: Path) -> None:
    db = fresh(tmp_path)
    bad_role = run(db, "user", "add", "bob", "--role", "team_manger", "--password-stdin",
                   stdin=SECRET + "\n")
    assert bad_role.exit_code == 1 and "did you mean 'team_manager'" in bad_role.output
    short = run(db, "user", "add", "bob", "--role", "iro", "--password-stdin", stdin="short\n")
    assert short.exit_code == 1 and "at least 10" in short.output
    assert store(db).get("bob") is None
    assert run(db, "user", "disable", "nobody").exit_code == 1


def test_demo_user_signs_in_with_the_printed_password(tmp_path: Path) -> None:
    from icsflow.workflow import Engine
    from icsflow.workflow.web.demo_user import DEMO_ROLE, add_demo_user

    db = f"sqlite:///{tmp_path / 'demo.db'}"
    Engine.open(db=db).close()  # the demo's database, migrated
    name, password = add_demo_user(db)
    record = store(db).get(name)
    assert record is not None and record.role == DEMO_ROLE
    assert password_matches(record.password_hash, password)
    name2, password2 = add_demo_user(db)  # a second run gives a new password
    record = store(db).get(name2)
    assert record is not None and password_matches(record.password_hash, password2)
    assert not password_matches(record.password_hash, password)


@pytest.mark.parametrize("name", ["\u0430lice", "al\u200bice", "bob smith", ""])
def test_a_user_name_that_could_pass_for_another_is_refused(tmp_path: Path, name: str) -> None:
    """A user name is the actor id of every event the user fires: a Cyrillic "а" in "аlice"
    beside alice, a zero-width space or a space would let one person pass for another."""
    env = {"ICSFLOW_DB": f"sqlite:///{tmp_path / 'u.db'}", "ICSFLOW_CONFIG": ""}
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    result = runner.invoke(cli, ["user", "add", name, "--role", "iro", "--password-stdin"],
                           input="correct-horse-battery\n", env=env)
    assert result.exit_code != 0
    assert "user name" in result.stderr or "Missing argument" in result.stderr
    listed = runner.invoke(cli, ["user", "list"], env=env)
    assert "alice" not in listed.stdout
