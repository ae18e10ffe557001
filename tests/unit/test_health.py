"""Health for operators: readiness reasons, the HTTP routes, Prometheus gauges, sd_notify."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from icsflow.workflow import Actor, Engine
from icsflow.workflow.clock import FakeClock
from icsflow.workflow.config import Config, IntervalsConfig
from icsflow.workflow.daemon import Daemon
from icsflow.workflow.daemon.health import FAILING_AFTER, Health, HealthServer, sd_notify
from icsflow.workflow.daemon.metrics import DaemonMetrics

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "definitions" / "examples" / "alert_example.yaml"


class Wall:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_ready_only_with_database_definitions_and_a_recent_sweep() -> None:
    wall = Wall()
    problem: list[str | None] = [None]
    health = Health(30, probe=lambda: problem[0], wall=wall)
    assert health.reasons() == ["definitions not loaded", "no timer sweep has succeeded yet"]
    health.definitions_loaded = True
    health.swept()
    assert health.reasons() == []
    wall.t += 60  # exactly two intervals: still ready
    assert health.reasons() == []
    wall.t += 1
    assert health.reasons() == ["last timer sweep succeeded 61s ago (more than two intervals, "
                                "60s)"]
    health.swept()
    problem[0] = "OperationalError"
    assert health.reasons() == ["database unreachable: OperationalError"]


def test_a_job_failing_again_and_again_makes_the_daemon_unready_until_it_succeeds() -> None:
    health = Health(30, wall=Wall())
    health.definitions_loaded = True
    health.swept()
    counts = [health.job_failed("outbox_dispatch") for _ in range(FAILING_AFTER)]
    assert counts == list(range(1, FAILING_AFTER + 1))
    assert health.reasons() == [f"job outbox_dispatch failed {FAILING_AFTER} times in a row"]
    assert not health.healthy_sweep()
    health.job_succeeded("outbox_dispatch")
    assert health.reasons() == [] and health.healthy_sweep()


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - loopback
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'h.db'}"


def _overdue_case(db: str) -> None:
    clock = FakeClock(datetime(2012, 1, 2, 10, tzinfo=UTC))
    with Engine.open(db=db, definitions=EXAMPLE, clock=clock) as engine:
        engine.start("alert_example", "H-1", {"concern": "c", "team_manager_email":
                                              "tm@example.org", "iro_email": "iro@example.org"},
                     Actor("iro-1", "iro"),
                     at=date(2012, 1, 2))


def test_the_server_answers_healthz_readyz_and_metrics_on_loopback(db: str) -> None:
    from icsflow.storage.db import create_db_engine

    _overdue_case(db)
    sql = create_db_engine(db)
    now = datetime(2012, 2, 1, 10, tzinfo=UTC)
    metrics = DaemonMetrics(lambda: sql, lambda: now, lambda at: at.date())
    health = Health(1, wall=Wall())
    server = HealthServer("127.0.0.1", 0, health, metrics)
    server.start()
    try:
        assert server.host == "127.0.0.1"
        assert _get(f"{server.url}/healthz")[:2] == (200, "application/json")
        status, _, body = _get(f"{server.url}/readyz")
        assert status == 503
        assert json.loads(body)["reasons"] == ["definitions not loaded",
                                               "no timer sweep has succeeded yet"]
        health.definitions_loaded = True
        health.swept()
        metrics.swept(fired=3, failed=0, seconds=0.25, finished=1234.0)
        assert _get(f"{server.url}/readyz")[0] == 200
        status, kind, text = _get(f"{server.url}/metrics")
        assert _get(f"{server.url}/nowhere")[0] == 404
    finally:
        server.stop()
        sql.dispose()
    assert status == 200 and kind.startswith("text/plain")
    samples = _samples(text)
    assert samples["icsflow_timer_firings_total"] == 3
    assert samples["icsflow_sweep_duration_seconds"] == 0.25
    assert samples["icsflow_last_sweep_success_timestamp_seconds"] == 1234.0
    assert samples["icsflow_ready"] == 1
    assert samples["icsflow_database_up"] == 1
    # The case's timers are all due by February; its response deadline is overdue.
    assert samples["icsflow_timers_due"] == samples["icsflow_timers_pending"] > 0
    assert samples["icsflow_oldest_due_timer_age_seconds"] > 0
    assert samples['icsflow_overdue_deadlines{definition="alert_example"}'] == 1
    assert samples['icsflow_outbox_messages{status="failed"}'] == 0
    assert samples["icsflow_outbox_dead_letters"] == 0


def _samples(text: str) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


def test_metrics_say_the_database_is_down_instead_of_failing() -> None:
    metrics = DaemonMetrics(lambda: None, lambda: datetime.now(UTC), lambda at: at.date())
    from prometheus_client import generate_latest

    assert b"icsflow_database_up 0.0" in generate_latest(metrics.registry)


def test_sd_notify_sends_one_datagram_to_notify_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(path)
        listener.settimeout(5)
        assert sd_notify("READY=1", {"NOTIFY_SOCKET": path})
        assert listener.recv(100) == b"READY=1"


def test_sd_notify_without_a_socket_does_nothing_and_a_dead_socket_never_raises(
        tmp_path: Path) -> None:
    assert not sd_notify("READY=1", {})
    assert not sd_notify("WATCHDOG=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")})


class _FailingEngine:
    definitions: list[Any] = []

    def tick(self, now: datetime, batch_size: int, should_stop: Any = None) -> Any:
        raise RuntimeError("boom")

    def close(self) -> None:
        pass


def test_a_sweep_failing_three_times_is_logged_with_its_count_and_the_daemon_is_unready(
        db: str, caplog: pytest.LogCaptureFixture) -> None:
    config = Config(database_url=db, maildir="-", intervals=IntervalsConfig(sweep_seconds=1))
    daemon = Daemon(config, engine_factory=_FailingEngine)
    sweep = daemon._guard(daemon.sweep)
    try:
        with caplog.at_level("ERROR", logger="icsflow"):
            for _ in range(3):
                sweep()
    finally:
        daemon._close()
    events = [r.icsflow_event for r in caplog.records]  # type: ignore[attr-defined]
    assert [(e["event"], e["job"], e["consecutive_failures"]) for e in events] == [
        ("job_failed", "sweep", 1), ("job_failed", "sweep", 2), ("job_failed", "sweep", 3)]
    assert "job sweep failed 3 times in a row" in daemon.health.reasons()


def test_watchdog_is_sent_after_each_healthy_sweep(db: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    config = Config(database_url=db, maildir="-", definitions_dir=str(EXAMPLE))
    daemon = Daemon(config, clock=FakeClock(datetime(2012, 1, 2, tzinfo=UTC)))
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(path)
        listener.settimeout(5)
        try:
            daemon.start_up()
            daemon._guard(daemon.sweep)()
            assert listener.recv(100) == b"WATCHDOG=1"
        finally:
            daemon._close()
    assert daemon.health.reasons() == []
