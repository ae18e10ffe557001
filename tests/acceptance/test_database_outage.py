"""Acceptance: the daemon survives its database going away and recovers by itself."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from acceptance_support import SmtpServer, TcpProxy, make_workspace, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
LATE = "2012-01-20T10:00:00+00:00"


def test_database_down_then_up_the_daemon_keeps_running_and_delivers(
        tmp_path: Path, smtp: SmtpServer) -> None:
    base = os.environ.get("ICSFLOW_TEST_PG")
    if not base:
        pytest.skip("ICSFLOW_TEST_PG is not set")
    import sqlalchemy

    name = f"icsflow_outage_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    direct = sqlalchemy.engine.make_url(base).set(database=name)
    proxy = TcpProxy((direct.host or "127.0.0.1", direct.port or 5432))
    proxy.up()
    via_proxy = direct.set(host="127.0.0.1", port=proxy.port)
    try:
        ws = make_workspace(tmp_path, via_proxy.render_as_string(hide_password=False), smtp.url)
        ws.icsflow("db", "upgrade")
        daemon = ws.spawn("run", "--now", LATE)
        log = lambda: "".join(p.read_text() for p in tmp_path.glob("daemon-*.log"))  # noqa: E731
        case_mail = lambda: [r for r in smtp.received  # noqa: E731
                             if str(r.message["Subject"]).startswith("Alert for O-")]
        try:
            wait_for(lambda: "daemon_started" in log(), 20, "the daemon to start")
            proxy.down()
            wait_for(lambda: "database_unavailable" in log(), 20, "the outage to be noticed")
            assert daemon.poll() is None, "the daemon must keep running without its database"
            proxy.up()
            ws.start_cases(["O-1", "O-2"])  # work arriving once the database is back
            wait_for(lambda: len(case_mail()) >= 4, 40, "a reminder and an escalation each")
            assert "database_recovered" in log()
        finally:
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=10) == 0
        ids = smtp.message_ids()  # the daily digests are in here too
        assert len(ids) == len(set(ids))
        assert len(case_mail()) == 4
    finally:
        proxy.down()
        time.sleep(0.1)
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()
