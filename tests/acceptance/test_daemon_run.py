"""Acceptance: `icsflow run` delivers, stops on SIGTERM, survives kill -9, shares PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from acceptance_support import SmtpServer, Workspace, make_workspace, wait_for

pytestmark = pytest.mark.slow
LATE = "2012-01-20T10:00:00+00:00"


def _stop(proc: subprocess.Popen[str]) -> float:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    return time.monotonic() - started


def test_the_daemon_delivers_due_mail_and_stops_on_sigterm(workspace: Workspace,
                                                           smtp: SmtpServer) -> None:
    workspace.start_case("D-1")
    daemon = workspace.spawn("run", "--now", LATE)
    try:
        wait_for(lambda: len(smtp.received) >= 2, 15, "two emails")
    finally:
        elapsed = _stop(daemon)
    assert elapsed < 10
    assert len(set(smtp.message_ids())) == len(smtp.message_ids()) == 2


def test_sigterm_on_an_idle_daemon_exits_0_quickly(workspace: Workspace) -> None:
    daemon = workspace.spawn("run")
    wait_for(lambda: any("daemon_started" in p.read_text()
                         for p in workspace.path.glob("daemon-*.log")), 15, "start-up")
    assert _stop(daemon) < 10


def test_kill_9_during_dispatch_then_restart_delivers_everything(workspace: Workspace,
                                                                 smtp: SmtpServer) -> None:
    workspace.start_cases([f"K-{n}" for n in range(6)])
    workspace.icsflow("tick", "--now", LATE)  # fires timers; SMTP is reachable so mail goes
    sent_by_tick = len(smtp.received)
    # Start more cases, then kill the daemon while it is dispatching their mail.
    workspace.start_cases([f"K-{n}" for n in range(6, 12)])
    daemon = workspace.spawn("run", "--now", LATE)
    wait_for(lambda: len(smtp.received) > sent_by_tick, 20, "the daemon to start sending")
    os.kill(daemon.pid, signal.SIGKILL)
    daemon.wait(timeout=10)
    # Restart: rows leased by the dead daemon come back when its lease (3 s here) runs out.
    daemon = workspace.spawn("run", "--now", LATE)
    log = max(workspace.path.glob("daemon-*.log"), key=lambda p: int(p.stem.split("-")[1]))
    try:
        # Up first (its SIGTERM handler installed): if the first daemon had sent everything
        # before the kill, the outbox is already empty and the stop below would otherwise
        # reach a daemon still starting, which dies of the signal instead of exiting 0.
        wait_for(lambda: "daemon_started" in log.read_text(), 20, "the restarted daemon")
        wait_for(lambda: not json.loads(workspace.icsflow(
            "outbox", "--status", "pending", "--json").stdout), 20, "the outbox to drain")
    finally:
        _stop(daemon)
    ids = Counter(str(r.message["Message-ID"]) for r in smtp.received
                  if str(r.message["Subject"]).startswith("Alert for K-"))
    assert len(ids) == 24  # a reminder and an escalation for each of 12 cases
    # At most the one message in flight at the kill can go twice (the documented window).
    assert sum(count - 1 for count in ids.values()) <= 1


@pytest.mark.postgres  # over 10 s: two daemons on one database, 30 alerts and 2 digests
def test_two_daemons_on_postgresql_send_every_message_once(tmp_path: Path,
                                                           smtp: SmtpServer) -> None:
    base = os.environ.get("ICSFLOW_TEST_PG")
    if not base:
        pytest.skip("ICSFLOW_TEST_PG is not set")
    import sqlalchemy

    schema_db = f"icsflow_acc_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1)
                                     if base.startswith("postgresql://") else base,
                                     isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {schema_db}")
    url = sqlalchemy.engine.make_url(admin.url).set(database=schema_db)
    db = url.render_as_string(hide_password=False)
    try:
        ws = make_workspace(tmp_path, db, smtp.url)
        ws.icsflow("db", "upgrade")
        ws.start_cases([f"P-{n}" for n in range(15)])
        daemons = [ws.spawn("run", "--now", LATE) for _ in range(2)]
        try:
            wait_for(lambda: len(smtp.received) >= 32, 25, "30 alerts and 2 digests")
            time.sleep(1.5)  # a bounded grace period to catch any late duplicate
        finally:
            for daemon in daemons:
                _stop(daemon)
        ids = Counter(smtp.message_ids())
        assert len(ids) == 32 and set(ids.values()) == {1}
        digests = [r for r in smtp.received if "daily digest" in str(r.message["Subject"])]
        assert sorted(r.rcpt[0] for r in digests) == ["hos@example.org", "ism@example.org"]
        engine = sqlalchemy.create_engine(db)
        with engine.connect() as conn:
            fired = conn.exec_driver_sql(
                "SELECT instance_id, name, count(*) FROM timers WHERE status = 'fired' "
                "GROUP BY instance_id, name").all()
            history = conn.exec_driver_sql(
                "SELECT instance_id, count(*) FROM history WHERE event = 'no_response' "
                "GROUP BY instance_id").all()
        engine.dispose()
        assert len(history) == 15 and {row[1] for row in history} == {1}
        assert {row[2] for row in fired} == {1}
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {schema_db} WITH (FORCE)")
        admin.dispose()
