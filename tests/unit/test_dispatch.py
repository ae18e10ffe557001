"""Dispatcher: send once, retry with backoff, dead-letter, office hours, bad rows fail alone."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta

import pytest

from icsflow.notifiers import DeliveryError, Message, RecordingNotifier
from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.clock import FakeClock
from icsflow.workflow.daemon.dispatch import (
    Dispatcher,
    DispatchResult,
    backoff_delay,
    message_id_for,
)
from icsflow.workflow.daemon.office_hours import OfficeHours
from icsflow.workflow.instance import OutboxStatus
from icsflow.workflow.ports import OutboxMessage

OPEN = datetime(2012, 1, 6, 10, 0, tzinfo=UTC)  # Friday 10:00 GMT
NIGHT = datetime(2012, 1, 6, 23, 0, tzinfo=UTC)
HOURS = OfficeHours(time(8), time(18), WorkingCalendar())


@dataclass
class Row:
    item: OutboxMessage
    status: str = "pending"
    next_attempt_at: datetime | None = None
    owner: str | None = None
    lease_until: datetime | None = None
    last_error: str | None = None
    sent_at: datetime | None = None


class FakeOutbox:
    """The dispatcher's storage port in memory."""

    def __init__(self) -> None:
        self.rows: dict[int, Row] = {}
        self.keys: set[str] = set()
        self.renewals: list[tuple[list[int], datetime]] = []

    def add(self, *, recipients: Sequence[str] = ("tm@example.org",), urgent: bool = False,
            subject: str = "Alert response due", key: str | None = None) -> int:
        new_id = len(self.rows) + 1
        self.rows[new_id] = Row(OutboxMessage(
            id=new_id, idempotency_key=key or f"k{new_id}", recipients=tuple(recipients),
            subject=subject, body="body", template="reminder", urgent=urgent,
            status=OutboxStatus.PENDING, attempts=0, created_at=OPEN, instance_id="i-1",
            ref="C-1"))
        return new_id

    def claim(self, now: datetime, owner: str, lease_until: datetime, limit: int, *,
              urgent_only: bool, lease_now: datetime) -> list[OutboxMessage]:
        out = []
        for row in self.rows.values():
            if row.status != "pending" or (urgent_only and not row.item.urgent):
                continue
            if row.next_attempt_at and row.next_attempt_at > now:
                continue
            if row.lease_until and row.lease_until > lease_now:
                continue
            row.item = replace(row.item, attempts=row.item.attempts + 1)
            row.owner, row.lease_until = owner, lease_until
            out.append(row.item)
            if len(out) == limit:
                break
        return out

    def mark_sent(self, item_id: int, owner: str, at: datetime) -> None:
        if self.rows[item_id].owner != owner:  # settles need the claim, as in SqlOutbox
            return
        self.rows[item_id].status, self.rows[item_id].sent_at = "sent", at

    def schedule_retry(self, item_id: int, owner: str, at: datetime, reason: str) -> None:
        row = self.rows[item_id]
        row.next_attempt_at, row.last_error, row.lease_until = at, reason, None

    def mark_failed(self, item_id: int, owner: str, reason: str) -> None:
        self.rows[item_id].status, self.rows[item_id].last_error = "failed", reason

    def release(self, item_ids: Sequence[int], owner: str) -> None:
        for i in item_ids:
            row = self.rows[i]
            row.lease_until = None
            row.item = replace(row.item, attempts=row.item.attempts - 1)

    def renew(self, item_ids: Sequence[int], owner: str, lease_until: datetime) -> set[int]:
        self.renewals.append((list(item_ids), lease_until))
        held = {i for i in item_ids if self.rows[i].status == "pending"
                and self.rows[i].owner == owner and self.rows[i].lease_until is not None}
        for i in held:
            self.rows[i].lease_until = lease_until
        return held

    def mark_sent_with_copies(self, item_id: int, owner: str, at: datetime,
                              channels: Sequence[str], copy_message_id: str) -> None:
        self.mark_sent(item_id, owner, at)
        item = self.rows[item_id].item
        for channel in channels:
            key = f"{channel}-copy:{item_id}"
            if key not in self.keys:
                self.keys.add(key)
                new_id = self.add(recipients=item.recipients, subject=item.subject,
                                  urgent=item.urgent, key=key)
                self.rows[new_id].item = replace(self.rows[new_id].item, channel=channel,
                                                 message_id=copy_message_id)

    def defer(self, item_ids: Sequence[int], owner: str, until: datetime, reason: str) -> None:
        for i in item_ids:
            row = self.rows[i]
            row.lease_until, row.next_attempt_at, row.last_error = None, until, reason
            row.item = replace(row.item, attempts=row.item.attempts - 1)

    def count_due(self, now: datetime) -> int:
        return sum(1 for r in self.rows.values() if r.status == "pending")

    def enqueue(self, *, idempotency_key: str, recipients: Sequence[str], subject: str,
                body: str, template: str, urgent: bool, now: datetime,
                instance_id: str | None = None) -> bool:
        if idempotency_key in self.keys:
            return False
        self.keys.add(idempotency_key)
        new_id = self.add(recipients=recipients, subject=subject, urgent=urgent,
                          key=idempotency_key)
        self.rows[new_id].item = replace(self.rows[new_id].item, template=template, body=body)
        return True

    def list(self, status: OutboxStatus | str | None = None, limit: int | None = None,
             instance_id: str | None = None) -> list[OutboxMessage]:
        rows = [replace(r.item, status=OutboxStatus(r.status)) for r in self.rows.values()]
        return [m for m in rows if status is None or m.status == status][:limit]


class FlakyNotifier:
    """Fails the first ``failures`` sends with a temporary (or permanent) error."""

    name = "flaky"

    def __init__(self, failures: int, permanent: bool = False) -> None:
        self.failures = failures
        self.permanent = permanent
        self.sent: list[Message] = []

    def send(self, message: Message) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise DeliveryError("connection refused", permanent=self.permanent)
        self.sent.append(message)

    def close(self) -> None:
        pass


def make(outbox: FakeOutbox, notifier: object, **kwargs: object) -> Dispatcher:
    options: dict[str, object] = dict(office_hours=HOURS, sender="icsflow@example.org",
                                      clock=FakeClock(OPEN), rng=lambda: 0.5, owner="test")
    options.update(kwargs)
    return Dispatcher(outbox, notifier, **options)  # type: ignore[arg-type]


def test_a_due_message_is_sent_once_with_a_stable_message_id() -> None:
    outbox, notifier = FakeOutbox(), RecordingNotifier()
    outbox.add()
    assert make(outbox, notifier).dispatch_once(OPEN) == DispatchResult(sent=1)
    assert make(outbox, notifier).dispatch_once(OPEN) == DispatchResult()
    assert len(notifier.messages) == 1
    message = notifier.messages[0]
    assert message.message_id == message_id_for(1, "k1")
    assert message.recipients == ("tm@example.org",)
    assert ("X-Icsflow-Ref", "C-1") in message.headers


def test_message_ids_are_derived_from_row_and_key() -> None:
    assert message_id_for(42, "k").startswith("<outbox-42.")
    assert message_id_for(42, "k").endswith("@icsflow>")
    assert message_id_for(42, "k") != message_id_for(42, "j")


def test_a_temporary_failure_is_retried_later_with_backoff() -> None:
    outbox, notifier = FakeOutbox(), FlakyNotifier(1)
    outbox.add()
    assert make(outbox, notifier).dispatch_once(OPEN) == DispatchResult(retried=1)
    row = outbox.rows[1]
    assert row.next_attempt_at == OPEN + timedelta(seconds=60)
    assert row.last_error is not None and "connection refused" in row.last_error
    assert make(outbox, notifier).dispatch_once(OPEN + timedelta(seconds=30)).sent == 0
    assert make(outbox, notifier).dispatch_once(OPEN + timedelta(seconds=61)).sent == 1
    assert outbox.rows[1].item.attempts == 2


def test_after_max_attempts_the_row_is_a_dead_letter() -> None:
    outbox, notifier = FakeOutbox(), FlakyNotifier(99)
    outbox.add()
    dispatcher = make(outbox, notifier, max_attempts=3, office_hours=None)
    now = OPEN
    for _ in range(3):
        dispatcher.dispatch_once(now)
        now += timedelta(hours=7)
    assert outbox.rows[1].status == "failed"
    assert "gave up after 3 attempts" in (outbox.rows[1].last_error or "")


def test_a_permanent_failure_fails_at_once() -> None:
    outbox = FakeOutbox()
    outbox.add()
    result = make(outbox, FlakyNotifier(1, permanent=True)).dispatch_once(OPEN)
    assert result == DispatchResult(failed=1)
    assert outbox.rows[1].item.attempts == 1


def test_a_message_without_recipients_fails_only_its_row() -> None:
    outbox, notifier = FakeOutbox(), RecordingNotifier()
    outbox.add(recipients=())
    outbox.add()
    result = make(outbox, notifier).dispatch_once(OPEN)
    assert (result.sent, result.failed) == (1, 1)
    assert "no recipients" in (outbox.rows[1].last_error or "")


def test_a_header_injection_fails_only_its_row() -> None:
    outbox, notifier = FakeOutbox(), RecordingNotifier()
    outbox.add(subject="Alert\r\nBcc: everyone@example.org")
    outbox.add()
    result = make(outbox, notifier).dispatch_once(OPEN)
    assert (result.sent, result.failed) == (1, 1)


def test_a_dead_letter_tells_the_admin_once() -> None:
    outbox, notifier = FakeOutbox(), RecordingNotifier()
    outbox.add(recipients=())
    dispatcher = make(outbox, notifier, admin_address="admin@example.org")
    dispatcher.dispatch_once(OPEN)
    dispatcher.dispatch_once(OPEN)
    notices = [m for m in notifier.messages if m.recipients == ("admin@example.org",)]
    assert len(notices) == 1
    assert "icsflow outbox retry 1" in notices[0].body


def test_an_unexpected_notifier_error_is_retried_not_raised() -> None:
    class Broken:
        name = "broken"

        def send(self, message: Message) -> None:
            raise RuntimeError("bug")

        def close(self) -> None:
            pass

    outbox = FakeOutbox()
    outbox.add()
    assert make(outbox, Broken()).dispatch_once(OPEN) == DispatchResult(retried=1)


def test_outside_office_hours_only_urgent_messages_go() -> None:
    outbox, notifier = FakeOutbox(), RecordingNotifier()
    outbox.add()
    outbox.add(urgent=True)
    result = make(outbox, notifier).dispatch_once(NIGHT)
    assert (result.sent, result.waiting) == (1, 1)
    assert notifier.messages[0].urgent
    assert make(outbox, notifier).dispatch_once(OPEN + timedelta(days=3)).sent == 1


def test_a_bank_holiday_holds_non_urgent_mail() -> None:
    outbox, notifier = FakeOutbox(), RecordingNotifier()
    outbox.add()
    jubilee = datetime(2012, 6, 5, 10, 0, tzinfo=UTC)
    assert make(outbox, notifier).dispatch_once(jubilee).waiting == 1


def test_batches_are_drained() -> None:
    outbox, notifier = FakeOutbox(), RecordingNotifier()
    for _ in range(7):
        outbox.add()
    assert make(outbox, notifier, batch_size=3).dispatch_once(OPEN).sent == 7


def test_a_stop_request_gives_back_the_rest_of_the_batch() -> None:
    outbox = FakeOutbox()
    for _ in range(3):
        outbox.add()

    class StopAfterOne(RecordingNotifier):
        dispatcher: Dispatcher | None = None

        def send(self, message: Message) -> None:
            super().send(message)
            assert self.dispatcher is not None
            self.dispatcher.request_stop()

    notifier = StopAfterOne()
    dispatcher = make(outbox, notifier)
    notifier.dispatcher = dispatcher
    assert dispatcher.dispatch_once(OPEN).sent == 1
    assert [r.status for r in outbox.rows.values()] == ["sent", "pending", "pending"]
    assert outbox.rows[2].lease_until is None and outbox.rows[2].item.attempts == 0


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    assert backoff_delay(1, 60, lambda: 0.5) == timedelta(seconds=60)
    assert backoff_delay(3, 60, lambda: 0.5) == timedelta(seconds=240)
    assert backoff_delay(3, 60, lambda: 0.0) == timedelta(seconds=192)
    assert backoff_delay(3, 60, lambda: 1.0) == timedelta(seconds=288)
    assert backoff_delay(50, 60, lambda: 0.5) == timedelta(hours=6)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        make(FakeOutbox(), RecordingNotifier()).dispatch_once(datetime(2012, 1, 6))


def test_a_retry_during_a_replay_waits_its_backoff_in_real_time() -> None:
    """`tick --now 2012-...` replays the past; a failed send must not fall due at once."""
    real = FakeClock(datetime(2026, 11, 26, 10, 0, tzinfo=UTC))
    outbox, notifier = FakeOutbox(), RecordingNotifier()
    outbox.add()
    notifier.fail_next(1)
    assert make(outbox, notifier, clock=real).dispatch_once(OPEN).retried == 1
    [row] = outbox.rows.values()
    assert row.next_attempt_at is not None and row.next_attempt_at > real.now()
    assert make(outbox, notifier, clock=real).dispatch_once(OPEN).sent == 0


class SlowNotifier(RecordingNotifier):
    """A slow SMTP server: each send takes ``seconds`` on the fake clock, and ``during`` runs
    while the message is in flight (another daemon's claim, say)."""

    def __init__(self, clock: FakeClock, seconds: float,
                 during: Callable[[Message], None] = lambda m: None) -> None:
        super().__init__()
        self.clock, self.seconds, self.during = clock, seconds, during

    def send(self, message: Message) -> None:
        self.clock.advance(timedelta(seconds=self.seconds))
        self.during(message)
        super().send(message)


def test_a_slow_batch_renews_its_lease_so_no_other_daemon_can_claim_it() -> None:
    """Lease 20 s, 6 s a message: without renewal the lease runs out during the 4th send."""
    outbox, clock = FakeOutbox(), FakeClock(OPEN)
    for _ in range(8):
        outbox.add()
    taken: list[OutboxMessage] = []

    def another_daemon_claims(message: Message) -> None:
        now = clock.now()
        taken.extend(outbox.claim(now, "other", now + timedelta(seconds=20), 50,
                                  urgent_only=False, lease_now=now))
        row = outbox.rows[int(dict(message.headers)["X-Icsflow-Outbox-Id"])]
        assert row.owner == "test" and row.lease_until is not None and row.lease_until > now

    notifier = SlowNotifier(clock, 6, another_daemon_claims)
    result = make(outbox, notifier, clock=clock, lease_seconds=20,
                  batch_size=8).dispatch_once(OPEN)
    assert result == DispatchResult(sent=8) and taken == []
    assert len(notifier.messages) == 8
    # Renewed before the 3rd, 5th and 7th message (10 s used of 20), the unsettled rows only.
    assert [(ids, at - OPEN) for ids, at in outbox.renewals] == [
        ([3, 4, 5, 6, 7, 8], timedelta(seconds=32)),
        ([5, 6, 7, 8], timedelta(seconds=44)),
        ([7, 8], timedelta(seconds=56))]


def test_a_message_whose_lease_was_lost_is_not_sent() -> None:
    """One send hangs past the whole lease; another daemon claims the batch meanwhile; this
    dispatcher then renews, learns it lost the rest, and sends none of them. (The message
    in flight is the other daemon's now too: a send longer than the lease is the one way to
    a duplicate besides a dying dispatcher, hence smtp.timeout well under the lease.)"""
    outbox, clock = FakeOutbox(), FakeClock(OPEN)
    for _ in range(4):
        outbox.add()
    taken: list[OutboxMessage] = []

    def another_daemon_claims(message: Message) -> None:
        now = clock.now()
        taken.extend(outbox.claim(now, "other", now + timedelta(seconds=20), 50,
                                  urgent_only=False, lease_now=now))

    notifier = SlowNotifier(clock, 25, another_daemon_claims)
    notifier.during = lambda m: another_daemon_claims(m) if not notifier.messages else None
    result = make(outbox, notifier, clock=clock, lease_seconds=20,
                  batch_size=4).dispatch_once(OPEN)
    assert [m.id for m in taken] == [1, 2, 3, 4]  # claimable once the lease ran out
    assert result == DispatchResult(sent=1, lost=3)
    assert [dict(m.headers)["X-Icsflow-Outbox-Id"] for m in notifier.messages] == ["1"]
    # The rows are the other daemon's to send: untouched here, still leased to it.
    assert [(r.status, r.owner) for r in outbox.rows.values()] == [("pending", "other")] * 4


def test_a_fast_batch_does_not_renew() -> None:
    outbox, clock = FakeOutbox(), FakeClock(OPEN)
    for _ in range(5):
        outbox.add()
    notifier = SlowNotifier(clock, 1)
    assert make(outbox, notifier, clock=clock, lease_seconds=20).dispatch_once(OPEN).sent == 5
    assert outbox.renewals == []
