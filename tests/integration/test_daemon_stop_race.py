"""SIGTERM while a sweep arms its wake-up: the daemon stops at once.

APScheduler's ``shutdown(wait=True)`` holds its job-store lock until the running jobs end. A
sweep that had checked "not stopping", then added its wake-up job after the shutdown began,
waited for that lock for ever: stop() waited for the sweep, and the process never exited (seen
once in CI: ``daemon_stopping`` logged, no exit). The check and the add are now one step
against stop()."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from icsflow.workflow.config import load_config
from icsflow.workflow.daemon import runner


def test_a_stop_during_the_wakeup_arming_does_not_wait_for_ever(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(None, env={}, overrides={
        "database_url": ("--db", f"sqlite:///{tmp_path / 'race.db'}")})
    daemon = runner.Daemon(config)
    querying, answer = threading.Event(), threading.Event()

    def next_due(_sql: object) -> datetime:  # the sweep's query, held open by the test
        querying.set()
        answer.wait(30)
        return datetime(2012, 1, 2, tzinfo=UTC)

    monkeypatch.setattr(runner, "next_timer_due", next_due)
    scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(2)}, timezone=UTC)
    scheduler.start()
    daemon._scheduler = scheduler  # noqa: SLF001 - the daemon's run() would make it
    daemon._sql = object()  # type: ignore[assignment]  # noqa: SLF001 - read by the patched query
    try:
        scheduler.add_job(daemon._arm_wakeup, "date",  # noqa: SLF001
                          run_date=datetime.now(UTC) + timedelta(milliseconds=10))
        assert querying.wait(10), "the sweep did not reach its query"
        for _ in range(500):  # bounded: until the scheduler has dropped its one-shot job
            if not scheduler.get_jobs():
                break
            querying.wait(0.01)
        stopper = threading.Thread(target=daemon.stop, daemon=True)
        stopper.start()
        for _ in range(200):  # bounded: until the shutdown has begun (it waits for the sweep)
            if not scheduler.running:
                break
            stopper.join(0.01)
        answer.set()
        stopper.join(10)
        assert not stopper.is_alive(), "stop() waited for a sweep that waited for stop()"
        assert scheduler.get_jobs() == []  # no wake-up was armed after the stop
    finally:
        answer.set()
        if scheduler.running:
            scheduler.shutdown(wait=False)
