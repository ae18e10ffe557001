"""The outbox dispatcher: deliver queued messages once, retry what can succeed, park the rest.

Why an outbox: a transition and the emails it causes are written in one transaction, and sending
happens afterwards, here. A row is claimed with a lease (PostgreSQL ``FOR UPDATE SKIP LOCKED``,
SQLite's single writer), sent, then marked sent; a crash between the server accepting a message
and the mark is the one window in which a message can go twice (the same Message-ID both times,
so mail clients can fold them). Temporary failures back off exponentially with jitter up to
``max_attempts``; permanent failures and malformed messages (no recipient, header injection)
fail their own row at once and never stop the daemon.

Each channel has rows of its own: the engine queues "email" rows; when one is marked sent, a
copy row per extra channel (the webhook) is queued in the same transaction, carrying the
email's Message-ID, and is retried and dead-lettered like any row, so a failing webhook never
resends the email and a sent email's copy is never dropped. A circuit breaker per channel
stops a batch from paying a dead endpoint's timeout once per message: after the first
failure of the endpoint itself, the channel's other rows are put back untried (no attempt
counted) until the breaker closes again.

A batch's lease is renewed once it has used ``RENEW_AFTER`` (half) of ``lease_seconds``,
checked before each message: a slow SMTP server cannot make the lease run out mid-batch and
let another daemon claim and send the same rows. A row whose lease was lost anyway (the
renewal came after another daemon claimed it) is skipped, never sent.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from icsflow.notifiers.base import BatchNotifier, DeliveryError, Notifier
from icsflow.notifiers.message import Message, validate_message
from icsflow.workflow.clock import Clock, SystemClock, require_aware
from icsflow.workflow.daemon.office_hours import OfficeHours
from icsflow.workflow.logging import get_logger
from icsflow.workflow.notices import undelivered_notice
from icsflow.workflow.policy import RetryPolicy
from icsflow.workflow.ports import Outbox, OutboxMessage, default_owner

_log = get_logger("icsflow.dispatch")
MAX_BACKOFF = timedelta(hours=6)


@dataclass(frozen=True)
class DispatchResult:
    """What one dispatch pass did."""

    sent: int = 0  # email rows sent
    retried: int = 0
    failed: int = 0
    waiting: int = 0
    copies: int = 0  # copy rows (webhook) delivered
    deferred: int = 0  # rows put back untried because their channel's breaker was open
    lost: int = 0  # rows skipped because another process holds their lease now

    def __add__(self, other: DispatchResult) -> DispatchResult:
        return DispatchResult(self.sent + other.sent, self.retried + other.retried,
                              self.failed + other.failed, max(self.waiting, other.waiting),
                              self.copies + other.copies, self.deferred + other.deferred,
                              self.lost + other.lost)


def message_id_for(item_id: int, idempotency_key: str) -> str:
    """``<outbox-42.7f3a9c01b2d4@icsflow>``: stable across retries and restarts of one row."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:12]
    return f"<outbox-{item_id}.{digest}@icsflow>"


def outbox_retry(base_seconds: float, max_attempts: int | None = None) -> RetryPolicy:
    """The outbox's retry policy: base * 2**(attempts-1), capped at 6 hours, with +/-20%
    jitter so daemons spread out (``workflow.policy``)."""
    return RetryPolicy(base=timedelta(seconds=base_seconds), cap=MAX_BACKOFF, jitter=0.2,
                       max_attempts=max_attempts)


def backoff_delay(attempts: int, base_seconds: float, rng: Callable[[], float]) -> timedelta:
    """The delay after ``attempts`` failures under ``outbox_retry(base_seconds)``."""
    return outbox_retry(base_seconds).delay(attempts, rng)


EMAIL = "email"
RENEW_AFTER = 0.5  # renew a batch's lease once it has used this fraction of it


class _Lease:
    """The lease on one claimed batch: when it was last granted, and the rows lost."""

    def __init__(self, granted_at: datetime) -> None:
        self.granted_at = granted_at
        self.lost: set[int] = set()


class CircuitBreaker:
    """Per channel: open after a failure of the endpoint itself, for a backoff that grows
    with consecutive failures; closed again by the next success. While open, the channel's
    rows are not tried (one probe goes through once the backoff has passed)."""

    def __init__(self, retry: RetryPolicy, rng: Callable[[], float]) -> None:
        self.retry = retry
        self._rng = rng
        self._open_until: dict[str, datetime] = {}
        self._failures: dict[str, int] = {}
        self.reasons: dict[str, str] = {}

    def open_until(self, channel: str, now: datetime) -> datetime | None:
        until = self._open_until.get(channel)
        return until if until is not None and until > now else None

    def trip(self, channel: str, now: datetime, reason: str) -> datetime:
        failures = self._failures[channel] = self._failures.get(channel, 0) + 1
        until = now + self.retry.delay(failures, self._rng)
        self._open_until[channel] = until
        self.reasons[channel] = reason
        return until

    def succeeded(self, channel: str) -> None:
        self._failures.pop(channel, None)
        self._open_until.pop(channel, None)
        self.reasons.pop(channel, None)


class Dispatcher:
    """Claims due outbox rows in leased batches and delivers each through its channel's
    ``Notifier`` (``notifier`` for email rows, ``copies`` by channel name for copy rows)."""

    def __init__(self, outbox: Outbox, notifier: Notifier, *,
                 office_hours: OfficeHours | None, sender: str, clock: Clock | None = None,
                 max_attempts: int = 8, backoff_base: float = 60.0,
                 lease_seconds: float = 300.0, batch_size: int = 50,
                 admin_address: str | None = None, owner: str | None = None,
                 rng: Callable[[], float] = random.random,
                 copies: Mapping[str, Notifier] | None = None,
                 retry: RetryPolicy | None = None) -> None:
        """``retry`` (the configuration's ``Policy.outbox``) wins over ``max_attempts`` and
        ``backoff_base``, kept for callers that set only those."""
        self.outbox = outbox
        self.notifier = notifier
        self.copies: dict[str, Notifier] = dict(copies or {})
        self.retry = retry or outbox_retry(backoff_base, max_attempts)
        self.breaker = CircuitBreaker(replace(self.retry, max_attempts=None), rng)
        self.office_hours = office_hours
        self.sender = sender
        self.clock: Clock = clock or SystemClock()
        self.lease = timedelta(seconds=lease_seconds)
        self.batch_size = batch_size
        self.admin_address = admin_address
        self.owner = owner or default_owner()
        self._rng = rng
        self._stop = threading.Event()

    def request_stop(self) -> None:
        """Finish the message in hand, give back the rest of the batch, and return."""
        self._stop.set()

    def build_message(self, item: OutboxMessage) -> Message:
        """The channel-neutral message for a row; raises ValueError if it cannot be sent."""
        headers: list[tuple[str, str]] = [("X-Icsflow-Outbox-Id", str(item.id))]
        if item.ref:
            headers.append(("X-Icsflow-Ref", item.ref))
        if item.template:
            headers.append(("X-Icsflow-Template", item.template))
        message = Message(message_id=item.message_id
                          or message_id_for(item.id, item.idempotency_key),
                          sender=self.sender, recipients=tuple(item.recipients),
                          subject=item.subject, body=item.body, urgent=item.urgent,
                          headers=tuple(headers), date=self.clock.now())
        validate_message(message)
        return message

    def dispatch_once(self, now: datetime) -> DispatchResult:
        """Deliver every due row now allowed (urgent ones always; others in office hours)."""
        require_aware(now, "dispatch_once")
        open_now = self.office_hours is None or self.office_hours.is_open(now)
        total = DispatchResult()
        while not self._stop.is_set():
            lease_now = self.clock.now()
            # Rows are queued at real time even when timers run as of an earlier --now
            # (DESIGN: emails are sent at real time), so a row due by either clock is due.
            due_by = max(now, lease_now)
            batch = self.outbox.claim(due_by, self.owner, lease_now + self.lease,
                                      self.batch_size, urgent_only=not open_now,
                                      lease_now=lease_now)
            if not batch:
                break
            done = self._deliver_batch(batch, now, _Lease(lease_now))
            total = total + done
            # A short batch means nothing else is due, unless sending it queued copies.
            if len(batch) < self.batch_size and not (done.sent and self.copies):
                break
        waiting = 0 if open_now else self.outbox.count_due(max(now, self.clock.now()))
        result = replace(total, waiting=waiting)
        if (result.sent or result.retried or result.failed or result.copies or result.deferred
                or result.lost):
            _log.info("outbox_dispatched", sent=result.sent, retried=result.retried,
                      failed=result.failed, waiting=result.waiting, copies=result.copies,
                      deferred=result.deferred, lost=result.lost)
        return result

    def _deliver_batch(self, batch: list[OutboxMessage], now: datetime,
                       lease: _Lease) -> DispatchResult:
        counts = {"sent": 0, "copied": 0, "retried": 0, "failed": 0, "deferred": 0, "lost": 0}
        if self._in_bulk(batch, now):
            held = self._still_held(batch, lease)
            counts["lost"] = len(batch) - len(held)
            for outcome in self._deliver_bulk(held, now):
                counts[outcome] += 1
        else:
            for index, item in enumerate(batch):
                if self._stop.is_set():
                    self.outbox.release([i.id for i in batch[index:]], self.owner)
                    break
                if not self._still_held(batch[index:], lease, only=item):
                    counts["lost"] += 1
                    continue
                counts[self._deliver(item, now)] += 1
        return DispatchResult(counts["sent"], counts["retried"], counts["failed"], 0,
                              counts["copied"], counts["deferred"], counts["lost"])

    def _still_held(self, unsettled: list[OutboxMessage], lease: _Lease,
                    only: OutboxMessage | None = None) -> list[OutboxMessage]:
        """The rows (of ``unsettled``, or just ``only``) this dispatcher still holds, renewing
        the lease on every unsettled row first once half of it has been used."""
        at = self.clock.now()
        if at - lease.granted_at >= self.lease * RENEW_AFTER:
            ids = [i.id for i in unsettled if i.id not in lease.lost]
            held = self.outbox.renew(ids, self.owner, at + self.lease)
            lease.granted_at = at
            lost = [i for i in ids if i not in held]
            if lost:
                lease.lost.update(lost)
                _log.warning("outbox_lease_lost", outbox_ids=lost,
                             reason="another dispatcher claimed them after the lease ran out")
        rows = unsettled if only is None else [only]
        return [i for i in rows if i.id not in lease.lost]

    def _in_bulk(self, batch: list[OutboxMessage], now: datetime) -> bool:
        """A batch of plain emails to a channel that stores each Message-ID once (a Maildir)
        is written and settled as one: a crash before the settle resends the batch, which
        stores nothing new, so no message is ever delivered twice."""
        return (isinstance(self.notifier, BatchNotifier) and self.notifier.idempotent is True
                and not self.copies
                and all((i.channel or EMAIL) == EMAIL for i in batch)
                and self.breaker.open_until(EMAIL, self._channel_now(now)) is None)

    def _deliver_bulk(self, batch: list[OutboxMessage], now: datetime) -> list[str]:
        notifier = self.notifier
        assert isinstance(notifier, BatchNotifier)  # _in_bulk chose this path for it
        outcomes: list[str] = []
        ready: list[tuple[OutboxMessage, Message]] = []
        for item in batch:
            try:
                ready.append((item, self.build_message(item)))
            except (ValueError, TypeError) as exc:
                outcomes.append(self._fail(item, f"cannot build message: {exc}"))
        try:
            answers = list(notifier.send_many([m for _, m in ready]))
        except Exception as exc:  # noqa: BLE001 - a channel bug must not stop the daemon
            answers = [DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False)
                       ] * len(ready)
        sent: list[OutboxMessage] = []
        for (item, _), answer in zip(ready, answers, strict=True):
            if answer is None:
                sent.append(item)
                continue
            if answer.endpoint_down:
                self.breaker.trip(EMAIL, self._channel_now(now), str(answer))
            outcomes.append(self._fail(item, str(answer)) if answer.permanent
                            else self._retry(item, now, str(answer)))
        if sent:
            self.breaker.succeeded(EMAIL)
            self.outbox.mark_sent_many([i.id for i in sent], self.owner, self.clock.now())
            for item in sent:
                _log.info("email_sent", outbox_id=item.id, instance_id=item.instance_id,
                          ref=item.ref, template=item.template,
                          recipient_count=len(item.recipients), attempt=item.attempts,
                          urgent=item.urgent, channel=EMAIL)
            outcomes.extend("sent" for _ in sent)
        return outcomes

    def _channel_now(self, now: datetime) -> datetime:
        # Breakers and deferrals run on the later of both clocks, like retries (see _retry):
        # a deferred row must not fall due again within the same pass.
        return max(now, self.clock.now())

    def _deliver(self, item: OutboxMessage, now: datetime) -> str:
        channel = item.channel or EMAIL
        notifier = self.notifier if channel == EMAIL else self.copies.get(channel)
        if notifier is None:
            return self._retry(item, now, f"no {channel} channel is configured")
        closed_until = self.breaker.open_until(channel, self._channel_now(now))
        if closed_until is not None:
            reason = f"{channel} endpoint unavailable: {self.breaker.reasons.get(channel, '')}"
            self.outbox.defer([item.id], self.owner, closed_until, reason)
            return "deferred"
        try:
            message = self.build_message(item)
        except (ValueError, TypeError) as exc:
            return self._fail(item, f"cannot build message: {exc}")
        try:
            notifier.send(message)
        except DeliveryError as exc:
            if exc.endpoint_down:
                until = self.breaker.trip(channel, self._channel_now(now), str(exc))
                _log.warning("channel_breaker_open", channel=channel,
                             until=until.isoformat(), reason=exc.reason)
            if exc.permanent:
                return self._fail(item, str(exc))
            return self._retry(item, now, str(exc))
        except Exception as exc:  # noqa: BLE001 - a channel bug must not stop the daemon
            return self._retry(item, now, f"{type(exc).__name__}: {exc}")
        self.breaker.succeeded(channel)
        if channel == EMAIL and self.copies:
            self.outbox.mark_sent_with_copies(item.id, self.owner, self.clock.now(),
                                              sorted(self.copies), message.message_id)
        else:
            self.outbox.mark_sent(item.id, self.owner, self.clock.now())
        _log.info("email_sent" if channel == EMAIL else "copy_sent", outbox_id=item.id,
                  instance_id=item.instance_id, ref=item.ref, template=item.template,
                  recipient_count=len(item.recipients), attempt=item.attempts,
                  urgent=item.urgent, channel=channel)
        return "sent" if channel == EMAIL else "copied"

    def _retry(self, item: OutboxMessage, now: datetime, reason: str) -> str:
        if self.retry.gives_up(item.attempts):
            return self._fail(item, f"gave up after {item.attempts} attempts: {reason}")
        # From real time when replaying the past (`tick --now 2012-...`): a retry waits its
        # backoff for real, it does not fall due again at once.
        at = max(now, self.clock.now()) + self.retry.delay(item.attempts, self._rng)
        self.outbox.schedule_retry(item.id, self.owner, at, reason)
        _log.warning("email_retry_scheduled", outbox_id=item.id, ref=item.ref,
                     channel=item.channel,
                     attempt=item.attempts, next_attempt_at=at.isoformat(), reason=reason)
        return "retried"

    def _fail(self, item: OutboxMessage, reason: str) -> str:
        self.outbox.mark_failed(item.id, self.owner, reason)
        _log.error("email_failed", outbox_id=item.id, instance_id=item.instance_id,
                   channel=item.channel,
                   ref=item.ref, template=item.template, attempt=item.attempts, reason=reason)
        what = "message" if item.channel == EMAIL else f"the {item.channel} copy, message"
        if self.admin_address and item.template != "dead_letter_notice":
            title, text = undelivered_notice(message_id=item.id, ref=item.ref,
                                             subject=item.subject, what=what, reason=reason)
            self.outbox.enqueue(
                idempotency_key=f"dead-letter:{item.id}",
                recipients=[self.admin_address], subject=title, body=text,
                template="dead_letter_notice", urgent=False, now=self.clock.now(),
                instance_id=item.instance_id)
        return "failed"


__all__ = ["Dispatcher", "DispatchResult", "CircuitBreaker", "message_id_for",
           "backoff_delay"]
