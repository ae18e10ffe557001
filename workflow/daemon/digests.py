"""Daily digests and the weekly allocation list: queued once per role per day."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Protocol, cast

from sqlalchemy import Engine as SqlEngine
from sqlalchemy import Table, func, select

from icsflow.storage.outbox import SqlOutbox
from icsflow.storage.tables import DeadlineRow, InstanceRow, TimerRow
from icsflow.workflow.allocation import allocation_list
from icsflow.workflow.calendar import WorkingCalendar, long_date
from icsflow.workflow.config import Config
from icsflow.workflow.context import case_url, days_left, due_words
from icsflow.workflow.daemon.office_hours import OfficeHours
from icsflow.workflow.instance import Instance
from icsflow.workflow.labels import Labels
from icsflow.workflow.logging import get_logger

_log = get_logger("icsflow.daemon")
T = cast(Table, TimerRow.__table__)
I = cast(Table, InstanceRow.__table__)  # noqa: E741
D = cast(Table, DeadlineRow.__table__)


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
                  hours: OfficeHours, now: datetime, *,
                  open_cases: Callable[[], Sequence[Instance]] | None = None) -> int:
    """Queue today's digests (once per role per day, whichever daemon gets there first).

    With ``open_cases`` (the daemon passes the engine's), the weekly allocation email is the
    full allocation list: review due dates, working days left, out-of-county placements, the
    IROs who know the family, and caseloads against the IRO Handbook's band."""
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
        body = _digest_body(today, overdue, soon, calendar, config.digest.due_within_working_days,
                            labels=Labels.load(config.definitions_dir),
                            base_url=config.web.base_url)
        for role in config.digest.roles:
            queued += _queue_role(outbox, config, role, f"digest:{role}:{today.isoformat()}",
                                  f"icsflow daily digest for {long_date(today)}: "
                                  f"{len(overdue)} overdue, {len(soon)} due soon", body,
                                  "daily_digest", now)
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
        if open_cases is not None:
            listing = allocation_list(open_cases(), today, calendar,
                                      definition=config.digest.allocation_definition,
                                      waiting_state=config.digest.allocation_state)
            lines = [f"Week {year}-W{week:02d}, allocation meeting on "
                     f"{config.digest.allocation_weekday.title()}", "", listing.text()]
        else:
            lines = [f"Reviews waiting for IRO allocation, week {year}-W{week:02d}: "
                     f"{len(waiting)}", ""] + [
                f"- Case {r.ref} (started {long_date(calendar.local_date(_aware(r.started_at)))})"
                for r in waiting]
        lines += ["", "Asked of you: allocate a Chair to each review at the allocation meeting, "
                  "and record each allocation on its case."]
        if config.web.base_url:
            lines += ["", f"The allocation page: {config.web.base_url.rstrip('/')}/allocation"]
        lines += ["", "Independent Chair Service"]
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


class _DueCase(Protocol):
    """One row of the digest's query: a live deadline and the case it belongs to."""

    @property
    def id(self) -> str: ...
    @property
    def ref(self) -> str: ...
    @property
    def definition(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def due_date(self) -> date: ...


def _digest_body(today: date, overdue: Sequence[_DueCase], soon: Sequence[_DueCase],
                 calendar: WorkingCalendar, horizon: int, *, labels: Labels | None = None,
                 base_url: str | None = None) -> str:
    """The daily digest in labels (process, state and deadline as a person reads them), each
    case linked to its page and the digest to the Today page when ``base_url`` is set."""
    labels = labels or Labels()

    def line(r: _DueCase, when: str) -> list[str]:
        what = labels.of(r.definition, "deadline", r.name)
        state = labels.of(r.definition, "state", r.state)
        found = [f"- Case {r.ref}, {labels.title(r.definition)}, at \"{state}\": {what}, "
                 f"{when}"]
        url = case_url(base_url, r.id)
        return found + ([f"  {url}"] if url else [])

    lines = [f"Overdue on {long_date(today)}: {len(overdue)}"]
    for r in overdue:
        late = -days_left(calendar, today, r.due_date)
        lines += line(r, f"was due {long_date(r.due_date)} ({due_words(-late)})")
    lines += ["", f"Due within {horizon} working days: {len(soon)}"]
    for r in soon:
        left = days_left(calendar, today, r.due_date)
        lines += line(r, f"due {long_date(r.due_date)} ({due_words(left)})")
    lines += ["", "Asked of you: check that each overdue case has someone acting on it today."]
    if base_url:
        lines += ["", f"Today's page: {base_url.rstrip('/')}/"]
    return "\n".join(lines + ["", "Independent Chair Service"]) + "\n"
