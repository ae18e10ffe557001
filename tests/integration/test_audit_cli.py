"""``icsflow audit``: the command line's reads of children are audited; the trail is listed by
user, child, date and kind; ``audit verify`` finds an edited or a deleted row."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, delete, update
from web_support import alert_data

from icsflow.storage.audit import AuditEntry, AuditStore, audit_log
from icsflow.workflow import Actor, Engine, FakeClock
from icsflow.workflow.cli import cli

ME = "cli:" + getpass.getuser()


@pytest.fixture()
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    engine = Engine.open(db=url, clock=FakeClock(datetime(2011, 12, 1, 10, 0, tzinfo=UTC)))
    try:
        for n, child in ((1, "CH-1"), (2, "CH-2")):
            engine.start("alert_dispute", ref=f"ALERT-{n}", data=alert_data(n),
                         actor=Actor("iro", "iro"), child=child)
    finally:
        engine.close()
    return url


def run(db: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", db, *args])


def store(db: str) -> AuditStore:
    return AuditStore(create_engine(db))


@pytest.mark.parametrize(("args", "children"), [
    (["show", "ALERT-1"], ("CH-1",)),
    (["list"], ("CH-1", "CH-2")),
    (["list", "--child", "CH-2", "--format", "csv"], ("CH-2",)),
    (["child", "CH-2"], ("CH-2",)),
    (["export", "-"], ("CH-1", "CH-2")),
    (["report", "--as-at", "2011-12-20", "--list", "alerts.raised"], ("CH-1", "CH-2")),
])
def test_a_command_that_prints_childrens_data_is_audited(db: str, args: list[str],
                                                         children: tuple[str, ...]) -> None:
    r = run(db, *args)
    assert r.exit_code == 0, r.output
    [row] = store(db).rows()
    assert row.entry.user == ME and row.entry.role == "operator" and row.entry.kind == "read"
    assert set(row.entry.children) == set(children)
    assert row.entry.purpose == f"cli {args[0]}" + (" --list alerts.raised"
                                                     if args[0] == "report" else "")


def test_the_trail_is_listed_by_user_child_date_and_kind(db: str) -> None:
    audit = store(db)
    base = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    audit.append(AuditEntry(base, "tm", "team_manager", "read", "child page", ("CH-1",)))
    audit.append(AuditEntry(base + timedelta(days=1), "tm", "team_manager", "break_glass",
                            "child page", ("CH-2",), None, "covering a colleague today"))
    audit.append(AuditEntry(base + timedelta(days=2), "iro", "iro", "refused", "api child",
                            ("CH-2",), None, "not allocated"))
    as_json = json.loads(run(db, "audit", "--user", "tm", "--format", "json").stdout)
    assert [r["seq"] for r in as_json] == [1, 2]
    assert [r["seq"] for r in json.loads(run(db, "audit", "--child", "CH-2", "--format",
                                             "json").stdout)] == [2, 3]
    dated = json.loads(run(db, "audit", "--from", "2026-01-06", "--to", "2026-01-06",
                           "--format", "json").stdout)
    assert [r["seq"] for r in dated] == [2]
    glass = run(db, "audit", "--break-glass")
    assert "covering a colleague today" in glass.stdout and "not allocated" not in glass.stdout
    assert run(db, "audit", "--kind", "nonsense").exit_code == 2
    assert "seq,at,user" in run(db, "audit", "--format", "csv").stdout


def test_verify_passes_and_prints_the_head_to_keep(db: str) -> None:
    run(db, "list")
    run(db, "child", "CH-1")
    r = run(db, "audit", "verify")
    assert r.exit_code == 0 and "audit chain intact: 2 rows; head 2:" in r.stdout
    anchor = r.stdout.strip().rsplit(" ", 1)[-1]
    assert run(db, "audit", "verify", "--anchor", anchor).exit_code == 0


def test_verify_detects_an_edited_row(db: str) -> None:
    for _ in range(3):
        run(db, "list")
    with create_engine(db).begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 2).values(children='["CH-9"]'))
    r = run(db, "audit", "verify")
    assert r.exit_code == 1
    assert r.stderr.strip() == ("error: audit chain broken at row 2: row 2 was changed: its "
                                "content no longer matches its hash")


def test_verify_detects_a_deleted_row(db: str) -> None:
    for _ in range(3):
        run(db, "list")
    with create_engine(db).begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 1))
    r = run(db, "audit", "verify")
    assert r.exit_code == 1 and "audit chain broken at row 1: row 1 is missing" in r.stderr


def test_an_administrators_changes_to_users_are_audited(db: str) -> None:
    r = CliRunner().invoke(cli, ["--db", db, "user", "add", "tm", "--role", "team_manager",
                                 "--team", "tm.1@council.example", "--password-stdin"],
                           input="a-long-password-1\n")
    assert r.exit_code == 0, r.output
    run(db, "user", "token", "tm", "--label", "portal")
    run(db, "user", "disable", "tm")
    rows = store(db).rows(kinds=("account",))
    assert [r.entry.purpose for r in rows] == ["user add tm", "user token tm", "user disable tm"]
    assert all(r.entry.user == ME for r in rows)
    assert "a-long-password-1" not in json.dumps([r.to_json() for r in rows])
