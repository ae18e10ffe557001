"""``icsflow run``: the daemon, a thin shell around ``tick(now)``.

Why APScheduler only wakes us: every durable fact (timers, outbox rows, digests sent) lives in
our tables, claimed with leases and ``SKIP LOCKED``, so several daemons can share one database
and a restart loses nothing. APScheduler runs with its in-memory job store only (its FAQ forbids
sharing a persistent job store between schedulers); a job that misses its moment just runs late.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from sqlalchemy import Engine as SqlEngine
from sqlalchemy.exc import DBAPIError, OperationalError

from icsflow.workflow.clock import Clock, SystemClock
from icsflow.workflow.commands import Mode, open_engine, policy_from, system_clock
from icsflow.workflow.config import Config, calendar_from, config_warnings
from icsflow.workflow.daemon.digests import next_timer_due, queue_digests
from icsflow.workflow.daemon.dispatch import Dispatcher
from icsflow.workflow.daemon.health import Health, HealthServer, sd_notify
from icsflow.workflow.daemon.metrics import DaemonMetrics
from icsflow.workflow.daemon.wiring import (
    build_dispatcher,
    check_mail_channel,
    db_engine,
    describe_database,
    describe_mail_channel,
    office_hours_from,
)
from icsflow.workflow.engine import load_definitions
from icsflow.workflow.errors import ConfigurationError, WorkflowError
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
                 engine_factory: Callable[[], Any] | None = None,
                 metrics_address: tuple[str, int] | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or system_clock(config)
        self.calendar = calendar_from(config)
        self.hours = office_hours_from(config, self.calendar)
        self._engine_factory = engine_factory or (
            lambda: open_engine(config, mode=Mode.CREATE, clock=self.clock,
                                calendar=self.calendar, pause_gc=True))
        self._engine: Any = None
        self._sql: SqlEngine | None = None
        self._dispatcher: Dispatcher | None = None
        self._close_dispatcher: Callable[[], None] = lambda: None
        self._tick_lock = threading.Lock()
        self._ready_lock = threading.Lock()  # jobs start together: set up (and migrate) once
        self._db_down_until: datetime | None = None
        self._db_failures = 0  # in a row; the wait grows by policy_from(config).database
        self._db_retry = policy_from(config).database
        self.stopping = threading.Event()
        # Held while a job adds to the scheduler and while stop() marks the daemon stopping:
        # APScheduler's shutdown(wait=True) holds its job-store lock until running jobs end,
        # so a job adding a job after shutdown began would wait for it for ever.
        self._lifecycle = threading.Lock()
        self._scheduler: Any = None
        self._stopper: threading.Thread | None = None
        self._fatal: WorkflowError | None = None
        self.metrics_address = metrics_address
        self.health = Health(config.intervals.sweep_seconds, probe=self._probe_database)
        self.metrics = DaemonMetrics(lambda: self._sql, self.clock.now, self.calendar.local_date)
        self.server: HealthServer | None = None

    # -- resources, reopened after a database outage --------------------------------------

    def _ready(self) -> bool:
        with self._ready_lock:
            return self._set_up()

    def _set_up(self) -> bool:
        real = datetime.now(UTC)
        if self._db_down_until is not None and real < self._db_down_until:
            return False
        if self._fatal is not None:
            return False
        try:
            if self._sql is None:
                self._sql = db_engine(self.config)
            if self._engine is None:
                self._engine = self._engine_factory()
                from icsflow.workflow.changes.reproject import warn_if_calendar_changed
                warn_if_calendar_changed(self._engine, _log)  # never moves deadlines itself
                self.health.definitions_loaded = True
            if self._dispatcher is None:
                self._dispatcher, self._close_dispatcher = build_dispatcher(
                    self.config, calendar=self.calendar, clock=self.clock, engine=self._sql)
        except _DB_ERRORS as exc:
            self._database_down(exc)
            return False
        except WorkflowError as exc:  # e.g. a file changed under a used version: stop, exit 1
            self._refuse(exc)
            return False
        if self._db_down_until is not None:
            _log.info("database_recovered")
            self._db_down_until = None
            self._db_failures = 0
        return True

    def _database_down(self, exc: BaseException) -> None:
        self._db_failures += 1
        wait = self._db_retry.delay(self._db_failures)
        self._db_down_until = datetime.now(UTC) + wait
        _log.warning("database_unavailable", retry_in_seconds=wait.total_seconds(),
                     error=type(exc).__name__)

    def _refuse(self, exc: WorkflowError) -> None:
        """A problem no retry can fix (definitions): log each line, then stop with status 1."""
        self._fatal = exc
        if self._scheduler is None or not self._scheduler.running:
            return  # at start-up: run() raises it, and the CLI prints each line
        for problem in getattr(exc, "problems", None) or [str(exc)]:
            _log.error("daemon_refused", problem=problem)
        self._on_signal(signal.SIGTERM, None)

    def _probe_database(self) -> str | None:
        """Why the database cannot be reached now (None when ``SELECT 1`` works)."""
        if self._sql is None:
            return "not connected yet"
        if self._db_down_until is not None:
            return "reconnecting after an outage"
        try:
            with self._sql.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
                conn.rollback()
        except Exception as exc:  # noqa: BLE001 - reported as the reason, never raised
            return type(exc).__name__
        return None

    def _guard(self, job: Callable[[], None]) -> Callable[[], None]:
        name = getattr(job, "__name__", "job")

        def run() -> None:
            if self.stopping.is_set() or not self._ready():
                return
            try:
                job()
            except _DB_ERRORS as exc:
                self._database_down(exc)
            except Exception as exc:  # noqa: BLE001 - one failed job must not end the daemon
                count = self.health.job_failed(name)
                _log.exception("job_failed", job=name, consecutive_failures=count,
                               error=type(exc).__name__)
            else:
                self.health.job_succeeded(name)
        run.__name__ = name
        return run

    # -- jobs -------------------------------------------------------------------------------

    def sweep(self) -> None:
        """Fire due timers, then arm a one-shot wake-up at the next due time."""
        with self._tick_lock:
            now = self.clock.now()
            started = time.monotonic()
            result = self._engine.tick(now, batch_size=self.config.intervals.timer_batch,
                                       should_stop=self.stopping.is_set)
            if result.fired or result.failed:
                _log.info("timers_swept", fired=result.fired, failed=result.failed,
                          queued=result.queued)
            self.metrics.swept(fired=result.fired, failed=result.failed,
                               seconds=time.monotonic() - started, finished=time.time())
            self.health.swept()
            if self.health.healthy_sweep():
                sd_notify("WATCHDOG=1")
        if result.fired or result.queued:
            self.dispatch()
        self._arm_wakeup()

    def dispatch(self) -> None:
        assert self._dispatcher is not None
        self._dispatcher.dispatch_once(self.clock.now())

    def digests(self) -> None:
        assert self._sql is not None
        queue_digests(self._sql, self.config, self.calendar, self.hours, self.clock.now(),
                      open_cases=lambda: self._engine.list_cases(open_only=True))

    def _arm_wakeup(self) -> None:
        if self._scheduler is None or self._sql is None or self.stopping.is_set():
            return
        due = next_timer_due(self._sql)
        if due is None:
            return
        now = self.clock.now()
        real_at = datetime.now(UTC) + max(due - now, timedelta(0))
        with self._lifecycle:  # not once stop() has begun the scheduler's shutdown
            if self.stopping.is_set():
                return
            self._scheduler.add_job(self._guard(self.sweep), "date", run_date=real_at,
                                    id="timer_wakeup", replace_existing=True,
                                    misfire_grace_time=None, coalesce=True, max_instances=1)

    # -- lifecycle --------------------------------------------------------------------------

    def stop(self, *_args: object) -> None:
        """SIGTERM/SIGINT: finish the message in hand, then shut the scheduler down."""
        with self._lifecycle:  # a job adding a job finishes first, or sees the daemon stopping
            if self.stopping.is_set():
                return
            self.stopping.set()
        _log.info("daemon_stopping")
        if self._dispatcher is not None:
            self._dispatcher.request_stop()
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def start_up(self) -> None:
        """Refuse to start on a problem no retry can fix: a definition that does not load, a
        file changed under a version already used, a bad mail setting (WorkflowError, every
        problem with its FILE:LINE). An unreachable database is not one: the jobs retry."""
        check_mail_channel(self.config)  # an SMTP URL parsed, the Maildir writable
        load_definitions(self.config.definitions_dir)  # without the database, FILE:LINE first
        with self._ready_lock:
            self._set_up()
        if self._fatal is not None:
            raise self._fatal

    def run(self) -> int:
        """Block until stopped; returns the exit status (0). Raises WorkflowError when the
        daemon refuses to start (or, after an outage, to go on)."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.blocking import BlockingScheduler

        if self.metrics_address is not None:
            host, port = self.metrics_address
            try:
                self.server = HealthServer(host, port, self.health, self.metrics)
            except OSError as exc:
                raise ConfigurationError(f"metrics server: cannot listen on {host}:{port}: "
                                         f"{exc.strerror or exc}") from None
        try:
            self.start_up()
        except BaseException:
            if self.server is not None:
                self.server.stop()
            self._close()
            raise
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
        if self.server is not None:
            self.server.start()
        _log.info("daemon_started", database=describe_database(self.config),
                  mail_channel=describe_mail_channel(self.config),
                  definitions=self._definitions_loaded(),
                  metrics=f"{self.server.url}/metrics" if self.server else None,
                  sweep_seconds=intervals.sweep_seconds,
                  dispatch_seconds=intervals.dispatch_seconds, now=self.clock.now().isoformat())
        for problem in config_warnings(self.config):
            _log.warning("config_warning", problem=problem)
        sd_notify("READY=1")
        try:
            self._scheduler.start()
        finally:
            with self._lifecycle:
                self.stopping.set()
            sd_notify("STOPPING=1")
            if self._stopper is not None:
                self._stopper.join(timeout=9.0)
            elif self._scheduler.running:
                self._scheduler.shutdown(wait=True)
            if self.server is not None:
                self.server.stop()
            self._close()
        _log.info("daemon_stopped")
        if self._fatal is not None:
            raise self._fatal
        return 0

    def _definitions_loaded(self) -> list[str]:
        # Before the database is reached there is no engine yet: what the files hold.
        found = self._engine.definitions if self._engine is not None \
            else load_definitions(self.config.definitions_dir)
        return sorted(f"{d.name} v{d.version}" for d in found)

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
