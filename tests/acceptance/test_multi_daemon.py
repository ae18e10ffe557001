"""Acceptance: four daemons on one PostgreSQL database, two of them killed with -9 part-way, and
the database cut during a claimed batch and during a send. Every unanswered Alert's response is
breached, every reminder and escalation is sent once (a killed sender may repeat the one message
it had in flight: the documented window), and no timer is lost.

``ICSFLOW_MULTI_DAEMON_CASES`` sets how many Alerts (120 by default; the issue's run is 2,000).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from acceptance_support import ROOT, SmtpServer, Workspace, make_workspace, wait_for

# Each test here takes 20-45 s: four daemons (subprocesses) on 120 Alerts, and the leases of the
# daemons killed part-way must run out in real time for the survivors (a daemon's clock cannot
# be moved from outside); the SQLite kill loop ticks 600 Alerts three times.
pytestmark = [pytest.mark.slow, pytest.mark.postgres]
NOW = "2012-01-06T12:00:00+00:00"  # Alerts raised 2011-12-19: response due 2012-01-05
CASES = int(os.environ.get("ICSFLOW_MULTI_DAEMON_CASES", "120"))
DIRECTORY = {"iro_service_manager": ["ism@example.org"], "head_of_service": ["hos@example.org"],
             "director": ["director@example.org"], "admin": ["admin@example.org"]}


@pytest.fixture
def pg_db() -> Iterator[str]:
    base = os.environ.get("ICSFLOW_TEST_PG")
    if not base:
        pytest.skip("ICSFLOW_TEST_PG is not set")
    import sqlalchemy

    name = f"icsflow_multi_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield sqlalchemy.engine.make_url(base).set(database=name).render_as_string(
            hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


TIMER_LEASE_SECONDS = 10  # a third of the default: dead daemons' timers come back sooner


def _workspace(tmp_path: Path, db: str, smtp: SmtpServer) -> Workspace:
    # An outbox lease longer than a batch takes to send (the dispatcher does not renew it):
    # a 3 s lease under four busy daemons lets a second daemon resend rows still in flight.
    ws = make_workspace(tmp_path, db, smtp.url, directory=DIRECTORY,
                        digest={"enabled": False},
                        intervals={"lease_seconds": 20,
                                   "timer_lease_seconds": TIMER_LEASE_SECONDS})
    ws.env["ICSFLOW_DEFINITIONS"] = str(ROOT / "definitions" / "builtin")
    ws.icsflow("db", "upgrade")
    return ws


def _start_alerts(ws: Workspace, count: int) -> None:
    code = (
        "from datetime import datetime\n"
        "from icsflow.workflow import Actor, Engine\n"
        f"e = Engine.open(db={ws.db!r}, definitions=None)\n"
        "data = {'team_manager_email': 'tm@example.org', 'iro_email': 'iro@example.org',\n"
        "        'service_manager_email': 'sm@example.org', 'concern': 'Plan drift'}\n"
        "at = datetime.fromisoformat('2011-12-19T10:00:00+00:00')\n"
        f"for n in range({count}):\n"
        "    e.start('alert_dispute', ref=f'A-{n}', data=data, actor=Actor('iro-1', 'iro'),\n"
        "            at=at)\n"
        "e.close()\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ws.path, env=ws.env, text=True,
                          capture_output=True, timeout=60 + count / 5)
    assert proc.returncode == 0, proc.stderr


_POLLING: dict[str, Any] = {}  # database URL -> the engine the test's polls read it with


@pytest.fixture(autouse=True)
def _polls_share_one_connection() -> Iterator[None]:
    """The test polls counts twenty times a second while daemons work: one kept connection per
    database, not a new engine and PostgreSQL backend for every poll."""
    yield
    for engine in _POLLING.values():
        engine.dispose()
    _POLLING.clear()


def _scalar(db: str, sql: str) -> Any:
    import sqlalchemy

    engine = _POLLING.get(db)
    if engine is None:
        engine = _POLLING[db] = sqlalchemy.create_engine(db, pool_size=1, pool_pre_ping=True)
    with engine.connect() as conn:
        return conn.exec_driver_sql(sql).scalar()


def _fired(db: str) -> int:
    return int(_scalar(db, "SELECT count(*) FROM timers WHERE status = 'fired'"))


def _settled(db: str, expected_fired: int) -> bool:
    pending = _scalar(db, "SELECT count(*) FROM outbox WHERE status = 'pending'")
    return _fired(db) >= expected_fired and pending == 0


def _verdicts(db: str, smtp: SmtpServer, cases: int, killed: int) -> dict[str, int]:
    """Every Alert's verdict and mail, as the service would count them."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(db)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT status, count(*) FROM deadlines WHERE name = 'response_due' "
                "GROUP BY status").all()
            reminders = conn.exec_driver_sql(
                "SELECT status, count(*) FROM timers WHERE name = 'response_reminder' "
                "GROUP BY status").all()
            per_case = conn.exec_driver_sql(
                "SELECT instance_id, template, count(*) FROM outbox "
                "GROUP BY instance_id, template").all()
            sent = conn.exec_driver_sql(
                "SELECT status, count(*) FROM outbox GROUP BY status").all()
    finally:
        engine.dispose()
    statuses = dict((str(k), int(v)) for k, v in rows)
    assert statuses == {"breached": cases}, statuses
    assert dict((str(k), int(v)) for k, v in reminders) == {"fired": cases}
    templates = Counter(t for _, t, n in per_case for _ in range(n))
    assert templates == {"response_reminder": cases, "no_response": cases}
    assert {n for _, _, n in per_case} == {1}
    assert dict((str(k), int(v)) for k, v in sent) == {"sent": 2 * cases}
    ids = Counter(smtp.message_ids())
    assert len(ids) == 2 * cases  # every message arrived
    repeated = sum(n - 1 for n in ids.values())
    assert repeated <= killed  # at most the one in flight in each killed daemon
    return {"breached": statuses["breached"], "reminders_sent": templates["response_reminder"],
            "escalations_sent": templates["no_response"], "repeated": repeated}


@pytest.mark.parametrize("kill", [0, 2])
def test_four_daemons_breach_every_unanswered_alert_and_send_every_reminder(
        tmp_path: Path, smtp: SmtpServer, pg_db: str, kill: int) -> None:
    ws = _workspace(tmp_path, pg_db, smtp)
    _start_alerts(ws, CASES)
    expected_fired = 3 * CASES  # reminder, internal breach, escalation per case
    started = time.monotonic()
    daemons = [ws.spawn("run", "--now", NOW) for _ in range(4)]
    try:
        if kill:
            wait_for(lambda: _fired(pg_db) >= expected_fired // 5, 120, "timers to fire")
            for d in daemons[:kill]:
                os.kill(d.pid, signal.SIGKILL)
                d.wait(timeout=10)
        # Dead daemons' timer leases (10 s here) and outbox leases (20 s here) run out.
        wait_for(lambda: _settled(pg_db, expected_fired), 120 + CASES / 10,
                 "every timer fired and the outbox drained")
        time.sleep(1.5)  # a bounded grace period to catch a late duplicate
    finally:
        for d in daemons[kill:]:
            d.send_signal(signal.SIGTERM)
            assert d.wait(timeout=20) == 0
    numbers = _verdicts(pg_db, smtp, CASES, kill)
    print(f"\n{CASES} alerts, 4 daemons, {kill} killed: {numbers} "
          f"in {time.monotonic() - started:.1f} s")


def test_the_database_cut_during_a_claimed_batch_and_during_a_send(
        tmp_path: Path, smtp: SmtpServer, pg_db: str) -> None:
    import sqlalchemy
    from test_database_outage import TcpProxy

    direct = sqlalchemy.engine.make_url(pg_db)
    proxy = TcpProxy((direct.host or "127.0.0.1", direct.port or 5432))
    proxy.up()
    via_proxy = direct.set(host="127.0.0.1", port=proxy.port).render_as_string(
        hide_password=False)
    ws = _workspace(tmp_path, via_proxy, smtp)
    cases = max(CASES, 120)
    _start_alerts(ws, cases)
    expected_fired = 3 * cases
    log = lambda: "".join(p.read_text() for p in tmp_path.glob("daemon-*.log"))  # noqa: E731
    daemons: list[subprocess.Popen[str]] = []
    try:
        # Small batches, so that the cut falls inside a claimed batch.
        daemons = [ws.spawn("run", "--now", NOW, ICSFLOW_TIMER_BATCH="20") for _ in range(2)]
        wait_for(lambda: _fired(pg_db) >= 1, 60, "the first firing")
        proxy.down()  # during a claimed batch
        wait_for(lambda: "database_unavailable" in log(), 30, "the outage to be noticed")
        time.sleep(0.5)
        proxy.up()
        wait_for(lambda: len(smtp.received) >= 5, 120, "mail to flow")
        proxy.down()  # during a send: marking the row sent fails
        time.sleep(0.5)
        proxy.up()
        wait_for(lambda: _settled(pg_db, expected_fired), 180, "everything to settle")
        time.sleep(1.5)
        assert all(d.poll() is None for d in daemons), "the daemons keep running"
    finally:
        for d in daemons:
            d.send_signal(signal.SIGTERM)
            d.wait(timeout=20)
        proxy.down()
    _verdicts(pg_db, smtp, cases, killed=4)  # each cut may repeat the message in flight


@pytest.mark.parametrize("rounds", [2])
def test_tick_killed_part_way_on_sqlite_loses_no_reminder(tmp_path: Path, smtp: SmtpServer,
                                                          rounds: int) -> None:
    """The SQLite kill loop: `tick --now` killed with -9 part-way (inside a batch), a tick at
    once (the dead tick's leases stand: its cases wait), then one after the lease: every
    reminder is sent, no timer is cancelled unfired, every response is breached."""
    db_file = tmp_path / "kill.db"
    ws = _workspace(tmp_path, f"sqlite:///{db_file}", smtp)
    cases = 600
    _start_alerts(ws, cases)
    expected_fired = 3 * cases
    for _ in range(rounds):
        proc = ws.spawn("tick", "--now", NOW)
        wait_for(lambda p=proc: _fired(ws.db) > 0 or p.poll() is not None, 120,  # type: ignore[misc]
                 "a first commit")
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    ws.icsflow("tick", "--now", NOW, timeout=300)  # the dead ticks' cases wait for their leases
    # A tick whose clock runs past the lease: a dead tick's claims come back (as they would
    # to a tick run TIMER_LEASE_SECONDS + 1 later, with nobody sleeping through the lease).
    ws.icsflow("tick", "--now", NOW, timeout=300,
               env={"ICSFLOW_CLOCK_OFFSET_SECONDS": str(TIMER_LEASE_SECONDS + 1)})
    assert _fired(ws.db) == expected_fired
    cancelled = _scalar(ws.db, "SELECT count(*) FROM timers WHERE status = 'cancelled'")
    assert cancelled == 0
    _verdicts(ws.db, smtp, cases, killed=0)
