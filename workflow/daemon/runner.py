"""``icsflow run``: the daemon, a thin shell around ``tick(now)``.

Why APScheduler only wakes us: every durable fact (timers, outbox rows, digests sent) lives in
our tables, claimed with leases and ``SKIP LOCKED``, so several daemons can share one database
and a restart loses nothing. APScheduler runs with its in-memory job store only (its FAQ forbids
sharing a persistent job store between schedulers); a job that misses its moment just runs late.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from sqlalchemy import Engine as SqlEngine
from sqlalchemy.exc import DBAPIError, OperationalError

from icsflow.workflow.clock import Clock, SystemClock
from icsflow.workflow.config import Config, calendar_from
from icsflow.workflow.daemon.digests import next_timer_due, queue_digests
from icsflow.workflow.daemon.dispatch import Dispatcher
from icsflow.workflow.daemon.wiring import (
    build_dispatcher,
    build_notifier,
    db_engine,
    office_hours_from,
    open_engine,
)
from icsflow.workflow.logging import get_logger

_log = get_logger("icsflow.daemon")
_DB_ERRORS = (OperationalError, DBAPIError)


class OffsetClock:
    """Real time shifted so that start-up is ``start``: ``icsflow run --now``."""

    def __init__(self, start: datetime, base: Clock | None = None) -> None:
        self._base = base or SystemClock()
        self.offset = start - self._base.now()

    def now(self) -> datetime:
        return self._base.now() + self.offset


class Daemon:
    """Timer sweeps, outbox dispatch and digests on an in-memory APScheduler."""

    def __init__(self, config: Config, *, clock: Clock | None = None,
                 engine_factory: Callable[[], Any] | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.calendar = calendar_from(config)
        self.hours = office_hours_from(config, self.calendar)
        self._engine_factory = engine_factory or (
            lambda: open_engine(config, clock=self.clock, calendar=self.calendar))
        self._engine: Any = None
        self._sql: SqlEngine | None = None
        self._dispatcher: Dispatcher | None = None
        self._close_dispatcher: Callable[[], None] = lambda: None
        self._tick_lock = threading.Lock()
        self._ready_lock = threading.Lock()  # jobs start together: set up (and migrate) once
        self._db_down_until: datetime | None = None
        self._db_backoff = 1.0
        self.stopping = threading.Event()
        self._scheduler: Any = None
        self._stopper: threading.Thread | None = None

    # -- resources, reopened after a database outage --------------------------------------

    def _ready(self) -> bool:
        with self._ready_lock:
            return self._set_up()

    def _set_up(self) -> bool:
        real = datetime.now(UTC)
        if self._db_down_until is not None and real < self._db_down_until:
            return False
        try:
            if self._sql is None:
                self._sql = db_engine(self.config)
            if self._engine is None:
                self._engine = self._engine_factory()
                from icsflow.workflow.reproject import warn_if_calendar_changed
                warn_if_calendar_changed(self._engine, _log)  # never moves deadlines itself
            if self._dispatcher is None:
                self._dispatcher, self._close_dispatcher = build_dispatcher(
                    self.config, calendar=self.calendar, clock=self.clock, engine=self._sql)
        except _DB_ERRORS as exc:
            self._database_down(exc)
            return False
        if self._db_down_until is not None:
            _log.info("database_recovered")
            self._db_down_until = None
            self._db_backoff = 1.0
        return True

    def _database_down(self, exc: BaseException) -> None:
        self._db_down_until = datetime.now(UTC) + timedelta(seconds=self._db_backoff)
        _log.warning("database_unavailable", retry_in_seconds=self._db_backoff,
                     error=type(exc).__name__)
        self._db_backoff = min(self._db_backoff * 2, 60.0)

    def _guard(self, job: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            if self.stopping.is_set() or not self._ready():
                return
            try:
                job()
            except _DB_ERRORS as exc:
                self._database_down(exc)
            except Exception as exc:  # noqa: BLE001 - one failed job must not end the daemon
                _log.exception("job_failed", job=getattr(job, "__name__", "job"),
                               error=type(exc).__name__)
        run.__name__ = getattr(job, "__name__", "job")
        return run

    # -- jobs -------------------------------------------------------------------------------

    def sweep(self) -> None:
        """Fire due timers, then arm a one-shot wake-up at the next due time."""
        with self._tick_lock:
            now = self.clock.now()
            result = self._engine.tick(now, batch_size=self.config.intervals.timer_batch)
            fired = getattr(result, "fired", 0)
            if fired or getattr(result, "failed", 0):
                _log.info("timers_swept", fired=fired, failed=getattr(result, "failed", 0),
                          queued=getattr(result, "queued", 0))
        if fired or getattr(result, "queued", 0):
            self.dispatch()
        self._arm_wakeup()

    def dispatch(self) -> None:
        assert self._dispatcher is not None
        self._dispatcher.dispatch_once(self.clock.now())

    def digests(self) -> None:
        assert self._sql is not None
        queue_digests(self._sql, self.config, self.calendar, self.hours, self.clock.now())

    def _arm_wakeup(self) -> None:
        if self._scheduler is None or self._sql is None or self.stopping.is_set():
            return
        due = next_timer_due(self._sql)
        if due is None:
            return
        now = self.clock.now()
        real_at = datetime.now(UTC) + max(due - now, timedelta(0))
        self._scheduler.add_job(self._guard(self.sweep), "date", run_date=real_at,
                                id="timer_wakeup", replace_existing=True,
                                misfire_grace_time=None, coalesce=True, max_instances=1)

    # -- lifecycle --------------------------------------------------------------------------

    def stop(self, *_args: object) -> None:
        """SIGTERM/SIGINT: finish the message in hand, then shut the scheduler down."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        _log.info("daemon_stopping")
        if self._dispatcher is not None:
            self._dispatcher.request_stop()
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def run(self) -> int:
        """Block until stopped; returns the exit status (0)."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.blocking import BlockingScheduler

        build_notifier(self.config).close()  # a bad mail setting stops start-up in one line
        defaults = {"misfire_grace_time": None, "coalesce": True, "max_instances": 1}
        self._scheduler = BlockingScheduler(
            executors={"default": ThreadPoolExecutor(4)}, job_defaults=defaults, timezone=UTC)
        intervals = self.config.intervals
        start = datetime.now(UTC)
        self._scheduler.add_job(self._guard(self.sweep), "interval", id="timer_sweep",
                                seconds=intervals.sweep_seconds, next_run_time=start)
        self._scheduler.add_job(self._guard(self.dispatch), "interval", id="outbox_dispatch",
                                seconds=intervals.dispatch_seconds,
                                next_run_time=start + timedelta(milliseconds=200))
        self._scheduler.add_job(self._guard(self.digests), "interval", id="digests",
                                seconds=60, next_run_time=start + timedelta(seconds=1))
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        _log.info("daemon_started", sweep_seconds=intervals.sweep_seconds,
                  dispatch_seconds=intervals.dispatch_seconds, now=self.clock.now().isoformat())
        try:
            self._scheduler.start()
        finally:
            self.stopping.set()
            if self._stopper is not None:
                self._stopper.join(timeout=9.0)
            elif self._scheduler.running:
                self._scheduler.shutdown(wait=True)
            self._close()
        _log.info("daemon_stopped")
        return 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Shut down from a thread: a signal handler must not block on running jobs.
        if self._stopper is None:
            self._stopper = threading.Thread(target=self.stop, name="icsflow-stop", daemon=True)
            self._stopper.start()

    def _close(self) -> None:
        try:
            self._close_dispatcher()
            if self._engine is not None and hasattr(self._engine, "close"):
                self._engine.close()
            if self._sql is not None:
                self._sql.dispose()
        except Exception:  # noqa: BLE001 - closing is best effort at exit
            pass
