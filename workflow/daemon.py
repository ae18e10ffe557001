"""``icsflow run``: the composition root and the daemon, a thin shell around ``tick(now)``.

Why APScheduler only wakes us: every durable fact (timers, outbox rows, digests sent) lives in
our tables, claimed with leases and ``SKIP LOCKED``, so several daemons can share one database
and a restart loses nothing. APScheduler runs with its in-memory job store only (its FAQ forbids
sharing a persistent job store between schedulers); a job that misses its moment just runs late.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from types import FrameType
from typing import Any, cast

from sqlalchemy import Engine as SqlEngine
from sqlalchemy import Table, func, select
from sqlalchemy.exc import DBAPIError, OperationalError

from notifiers import LogNotifier, MaildirNotifier, Message, SmtpNotifier, WebhookNotifier
from notifiers.base import DeliveryError, Notifier
from storage.outbox import SqlOutbox
from storage.tables import DeadlineRow, InstanceRow, TimerRow
from workflow.calendar import WorkingCalendar
from workflow.clock import Clock, SystemClock
from workflow.config import Config, calendar_from
from workflow.context import days_left
from workflow.dispatch import Dispatcher
from workflow.errors import ConfigurationError
from workflow.logging import get_logger
from workflow.office_hours import OfficeHours

_log = get_logger("workflow.daemon")
T = cast(Table, TimerRow.__table__)
I = cast(Table, InstanceRow.__table__)  # noqa: E741
D = cast(Table, DeadlineRow.__table__)
_DB_ERRORS = (OperationalError, DBAPIError)


# -- wiring ------------------------------------------------------------------------------------

def office_hours_from(config: Config, calendar: WorkingCalendar) -> OfficeHours:
    return OfficeHours(config.office_hours.start, config.office_hours.end, calendar)


def db_engine(config: Config) -> SqlEngine:
    from storage.db import create_db_engine

    return create_db_engine(config.database_url)


class _WithWebhookCopy:
    """Email first; then a best-effort webhook copy whose failure never resends the email."""

    def __init__(self, primary: Notifier, webhook: Notifier) -> None:
        self.primary = primary
        self.webhook = webhook
        self.name = f"{primary.name}+webhook"

    def send(self, message: Message) -> None:
        self.primary.send(message)
        try:
            self.webhook.send(message)
        except DeliveryError as exc:
            _log.warning("webhook_copy_failed", reason=exc.reason, permanent=exc.permanent)

    def close(self) -> None:
        self.primary.close()
        self.webhook.close()


def build_notifier(config: Config) -> Notifier:
    """SMTP when a URL is configured, else the Maildir sink; plus an optional webhook copy."""
    try:
        primary: Notifier
        if config.smtp.url:
            primary = SmtpNotifier.from_url(config.smtp.url, config.smtp.password,
                                            timeout=config.smtp.timeout)
        elif config.maildir == "-":
            primary = LogNotifier()
        else:
            primary = MaildirNotifier(config.maildir)
        if config.webhook is not None:
            hook = WebhookNotifier(config.webhook.url, config.webhook.secret or "")
            return _WithWebhookCopy(primary, hook)
        return primary
    except (ValueError, OSError) as exc:
        raise ConfigurationError(f"mail channel: {exc}") from None


def build_dispatcher(config: Config, *, calendar: WorkingCalendar | None = None,
                     clock: Clock | None = None, engine: SqlEngine | None = None,
                     ) -> tuple[Dispatcher, Callable[[], None]]:
    """A dispatcher wired from configuration, and the function that releases its resources."""
    cal = calendar or calendar_from(config)
    own_engine = engine is None
    sql = engine if engine is not None else db_engine(config)
    _ensure_schema(sql)
    notifier = build_notifier(config)
    dispatcher = Dispatcher(
        SqlOutbox(sql), notifier, office_hours=office_hours_from(config, cal),
        sender=config.smtp.mail_from, clock=clock or SystemClock(),
        max_attempts=config.intervals.outbox_max_attempts,
        backoff_base=config.intervals.backoff_base_seconds,
        lease_seconds=config.intervals.lease_seconds,
        batch_size=config.intervals.outbox_batch, admin_address=config.admin_address)

    def close() -> None:
        notifier.close()
        if own_engine:
            sql.dispose()

    return dispatcher, close


def _ensure_schema(sql: SqlEngine) -> None:
    from storage.db import ensure_schema

    ensure_schema(sql)


def open_engine(config: Config, *, clock: Clock | None = None,
                calendar: WorkingCalendar | None = None) -> Any:
    """The workflow engine wired from configuration (database, definitions, calendar, roles)."""
    from workflow.engine import Engine

    return Engine.open(db=config.database_url, definitions=config.definitions_dir,
                       clock=clock, calendar=calendar or calendar_from(config),
                       directory=dict(config.directory), admin_address=config.admin_address,
                       sender=config.smtp.mail_from)


# -- digests -----------------------------------------------------------------------------------

def next_timer_due(sql: SqlEngine) -> datetime | None:
    """When the earliest pending timer is due (drives the one-shot wake-up)."""
    with sql.connect() as conn:
        due = conn.execute(select(func.min(T.c.due_at)).where(T.c.status == "pending")
                           ).scalar_one_or_none()
        conn.rollback()
    if due is not None and due.tzinfo is None:
        due = due.replace(tzinfo=UTC)
    return cast(datetime | None, due)


def is_first_working_day_of_week(calendar: WorkingCalendar, day: date) -> bool:
    monday = day - timedelta(days=day.weekday())
    return calendar.is_working_day(day) and calendar.previous_working_day(day) < monday


def queue_digests(sql: SqlEngine, config: Config, calendar: WorkingCalendar,
                  hours: OfficeHours, now: datetime) -> int:
    """Queue today's digests (once per role per day, whichever daemon gets there first)."""
    if not hours.is_open(now):
        return 0
    today = calendar.local_date(now)
    outbox = SqlOutbox(sql)
    queued = 0
    if config.digest.enabled:
        horizon = calendar.add_working_days(today, config.digest.due_within_working_days)
        with sql.connect() as conn:
            rows = conn.execute(
                select(I.c.id, I.c.ref, I.c.definition, I.c.state, D.c.name, D.c.due_date,
                       D.c.status)
                .select_from(D.join(I, I.c.id == D.c.instance_id))
                .where(I.c.closed_at.is_(None), D.c.met_at.is_(None),
                       D.c.status.in_(("live", "breached")), D.c.due_date <= horizon)
                .order_by(D.c.due_date, I.c.ref)).all()
            conn.rollback()
        overdue = [r for r in rows if r.status == "breached" or r.due_date < today]
        soon = [r for r in rows if r not in overdue]
        body = _digest_body(today, overdue, soon, calendar, config.digest.due_within_working_days)
        for role in config.digest.roles:
            queued += _queue_role(outbox, config, role, f"digest:{role}:{today.isoformat()}",
                                  f"icsflow daily digest {today.isoformat()}: {len(overdue)} "
                                  f"overdue, {len(soon)} due soon", body, "daily_digest", now)
    if config.digest.allocation_enabled and is_first_working_day_of_week(calendar, today):
        with sql.connect() as conn:
            waiting = conn.execute(
                select(I.c.ref, I.c.started_at).where(
                    I.c.definition == config.digest.allocation_definition,
                    I.c.state == config.digest.allocation_state, I.c.closed_at.is_(None))
                .order_by(I.c.started_at)).all()
            conn.rollback()
        year, week, _ = today.isocalendar()
        if not waiting:  # nothing to allocate: no email (the digest says the same)
            return queued
        lines = [f"Reviews waiting for IRO allocation, week {year}-W{week:02d}: {len(waiting)}",
                 ""] + [f"- {r.ref} (case started {calendar.local_date(_aware(r.started_at))})"
                        for r in waiting]
        queued += _queue_role(outbox, config, config.digest.allocation_role,
                              f"allocation:{year}-W{week:02d}",
                              f"icsflow: {len(waiting)} review{'' if len(waiting) == 1 else 's'} "
                              "waiting for IRO allocation",
                              "\n".join(lines) + "\n", "allocation_list", now)
    return queued


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _queue_role(outbox: SqlOutbox, config: Config, role: str, key: str, subject: str,
                body: str, template: str, now: datetime) -> int:
    recipients = config.directory.get(role, ())
    if not recipients:
        _log.warning("digest_skipped", role=role, reason="no directory entry for the role")
        return 0
    if outbox.enqueue(idempotency_key=key, recipients=recipients, subject=subject, body=body,
                      template=template, urgent=False, now=now):
        _log.info("digest_queued", role=role, template=template, recipient_count=len(recipients))
        return 1
    return 0


def _digest_body(today: date, overdue: Sequence[Any], soon: Sequence[Any],
                 calendar: WorkingCalendar, horizon: int) -> str:
    lines = [f"Cases overdue on {today.isoformat()}: {len(overdue)}"]
    for r in overdue:
        late = -days_left(calendar, today, r.due_date)
        lines.append(f"- {r.ref} {r.definition} ({r.state}): {r.name} was due "
                     f"{r.due_date.isoformat()}, {late} working days ago")
    lines += ["", f"Deadlines due within {horizon} working days: {len(soon)}"]
    for r in soon:
        left = days_left(calendar, today, r.due_date)
        lines.append(f"- {r.ref} {r.definition} ({r.state}): {r.name} due "
                     f"{r.due_date.isoformat()} ({left} working days)")
    return "\n".join(lines) + "\n"


# -- the daemon ----------------------------------------------------------------------------------

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


__all__ = ["Daemon", "OffsetClock", "build_dispatcher", "build_notifier",
           "calendar_from", "office_hours_from", "open_engine", "queue_digests",
           "next_timer_due", "is_first_working_day_of_week"]
