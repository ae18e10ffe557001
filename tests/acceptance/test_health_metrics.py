"""Acceptance: `icsflow run --metrics-port` serves health and Prometheus metrics while it works,
and /readyz follows the database going away and coming back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from acceptance_support import (
    SmtpServer,
    TcpProxy,
    Workspace,
    free_port,
    make_workspace,
    wait_for,
)

pytestmark = pytest.mark.slow
LATE = "2012-01-20T10:00:00+00:00"


def get(url: str) -> tuple[int, str]:
    """What ``curl`` would show: the status and the body."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - loopback
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def samples(text: str) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


def stop(daemon: subprocess.Popen[str]) -> None:
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=10) == 0


def daemon_log(ws: Workspace) -> str:
    return "".join(p.read_text() for p in ws.path.glob("daemon-*.log"))


def test_metrics_show_timers_outbox_sweeps_and_overdue_deadlines_during_run(
        workspace: Workspace, smtp: SmtpServer) -> None:
    # Escalate 20 working days after the due date instead of at the breach, so that at LATE
    # both cases' response deadlines are overdue and not yet escalated.
    defn = workspace.path / "defs" / "alert_example.yaml"
    text = defn.read_text(encoding="utf-8")
    assert "    at: breach\n    fire: no_response" in text
    defn.write_text(text.replace("    at: breach\n    fire: no_response",
                                 "    after: 20 working days\n    fire: no_response"),
                    encoding="utf-8")
    workspace.start_cases(["M-1", "M-2"])
    port = free_port()
    daemon = workspace.spawn("run", "--now", LATE, "--metrics-port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get(f"{base}/readyz")[0] == 200, 20, "the daemon to be ready")
        wait_for(lambda: samples(get(f"{base}/metrics")[1]).get(
            "icsflow_timer_firings_total", 0) >= 2, 20, "the timers to fire")
        wait_for(lambda: len(smtp.received) >= 2, 20, "the mail to go")
        assert get(f"{base}/healthz") == (200, '{"status": "ok"}\n')
        status, text = get(f"{base}/metrics")
    finally:
        stop(daemon)
    assert status == 200
    found = samples(text)
    for gauge in ("icsflow_timers_pending", "icsflow_timers_due",
                  "icsflow_oldest_due_timer_age_seconds", "icsflow_outbox_dead_letters",
                  "icsflow_sweep_duration_seconds",
                  "icsflow_last_sweep_success_timestamp_seconds"):
        assert gauge in found, gauge
    assert found["icsflow_last_sweep_success_timestamp_seconds"] > time.time() - 60
    assert found['icsflow_outbox_messages{status="sent"}'] >= 2
    assert found['icsflow_overdue_deadlines{definition="alert_example"}'] == 2
    assert found["icsflow_database_up"] == 1
    events = [json.loads(line) for line in daemon_log(workspace).splitlines()]  # JSON only
    [started] = [e for e in events if e["event"] == "daemon_started"]
    assert started["definitions"] == ["alert_example v1"]
    assert started["mail_channel"] == f"smtp://127.0.0.1:{smtp.port}"
    assert started["metrics"] == f"{base}/metrics"
    # The workspace's short lease (3 s, so that these tests run quickly) against a 5 s SMTP
    # timeout: a setting the daemon accepts and warns about once, at start.
    [warned] = [e for e in events if e["event"] == "config_warning"]
    assert warned["level"] == "warning"
    assert "smtp.timeout (5 s)" in warned["problem"] and "(3 s)" in warned["problem"]


@pytest.mark.postgres
def test_readyz_turns_503_when_the_database_goes_away_and_200_when_it_returns(
        tmp_path: Path, smtp: SmtpServer) -> None:
    base_url = os.environ.get("ICSFLOW_TEST_PG")
    if not base_url:
        pytest.skip("ICSFLOW_TEST_PG is not set")
    import sqlalchemy

    name = f"icsflow_ready_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    direct = sqlalchemy.engine.make_url(base_url).set(database=name)
    proxy = TcpProxy((direct.host or "127.0.0.1", direct.port or 5432))
    proxy.up()
    # Trust authentication ignores the password; the log must not show it anyway.
    via_proxy = direct.set(host="127.0.0.1", port=proxy.port, password="s3cr3t-pw")
    port = free_port()
    ready = f"http://127.0.0.1:{port}/readyz"
    try:
        ws = make_workspace(tmp_path, via_proxy.render_as_string(hide_password=False), smtp.url)
        ws.icsflow("db", "upgrade")
        daemon = ws.spawn("run", "--metrics-port", str(port))
        try:
            wait_for(lambda: get(ready)[0] == 200, 20, "the daemon to be ready")
            proxy.down()
            wait_for(lambda: get(ready)[0] == 503, 20, "/readyz to notice the outage")
            reasons = json.loads(get(ready)[1])["reasons"]
            assert any(r.startswith("database unreachable") for r in reasons), reasons
            assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200  # alive all the same
            proxy.up()
            wait_for(lambda: get(ready)[0] == 200, 40, "/readyz to see the database back")
        finally:
            stop(daemon)
        log = daemon_log(ws)
        started = json.loads(next(line for line in log.splitlines()
                                  if '"daemon_started"' in line))
        assert started["database"] == (f"postgresql+psycopg://{direct.username}:***@"
                                       f"127.0.0.1:{proxy.port}/{name}")
        assert "s3cr3t-pw" not in log
        assert "Traceback" not in log
    finally:
        proxy.down()
        time.sleep(0.1)
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def test_systemd_hears_ready_then_watchdog_then_stopping(workspace: Workspace) -> None:
    import socket

    path = str(workspace.path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(path)
        listener.settimeout(30)
        daemon = workspace.spawn("run", NOTIFY_SOCKET=path)
        try:
            assert listener.recv(64) == b"READY=1"
            assert listener.recv(64) == b"WATCHDOG=1"  # the first sweep, healthy
        finally:
            stop(daemon)
        heard = []
        listener.settimeout(1)
        try:
            while True:
                heard.append(listener.recv(64))
        except TimeoutError:
            pass
    assert heard and heard[-1] == b"STOPPING=1"
    assert set(heard) <= {b"WATCHDOG=1", b"STOPPING=1"}
