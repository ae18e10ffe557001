"""A dispatcher renews its outbox lease during a slow batch, on a real outbox (SQLite, and
PostgreSQL with ICSFLOW_TEST_PG): another daemon cannot claim the rows meanwhile, and a row
whose lease was lost is not sent. A fake clock stands for the slow server; nothing sleeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from icsflow.notifiers import Message, RecordingNotifier
from icsflow.storage.outbox import SqlOutbox
from icsflow.workflow.clock import FakeClock
from icsflow.workflow.daemon.dispatch import Dispatcher, DispatchResult

NOW = datetime(2012, 1, 6, 10, 0, tzinfo=UTC)
LEASE = timedelta(seconds=20)


def _queue(outbox: SqlOutbox, count: int) -> None:
    for n in range(count):
        outbox.enqueue(idempotency_key=f"k{n}", recipients=[f"tm-{n}@example.org"],
                       subject=f"Alert {n}", body="Respond.", template="reminder",
                       urgent=False, now=NOW)


def test_renew_extends_only_rows_still_pending_and_leased_to_the_owner(sql: Engine) -> None:
    outbox = SqlOutbox(sql)
    _queue(outbox, 4)
    mine = outbox.claim(NOW, "me", NOW + LEASE, 4, urgent_only=False, lease_now=NOW)
    assert [m.id for m in mine] == [1, 2, 3, 4]
    outbox.mark_sent(1, "me", NOW)
    assert outbox.renew([1, 2, 3, 4], "me", NOW + 2 * LEASE) == {2, 3, 4}
    # Renewed: another daemon finds nothing to claim after the first lease would have ended.
    later = NOW + LEASE + timedelta(seconds=1)
    assert outbox.claim(later, "other", later + LEASE, 10, urgent_only=False,
                        lease_now=later) == []
    # Run out, and claimed by another: no longer held, and not renewed.
    gone = NOW + 2 * LEASE + timedelta(seconds=1)
    taken = outbox.claim(gone, "other", gone + LEASE, 1, urgent_only=False, lease_now=gone)
    assert [m.id for m in taken] == [2]
    assert outbox.renew([2, 3, 4], "me", gone + LEASE) == {3, 4}  # run out, nobody took them
    assert outbox.renew([2, 3], "other", gone + LEASE) == {2}
    assert outbox.renew([], "me", gone) == set()


class SlowServer(RecordingNotifier):
    """Every send takes ``seconds`` on the fake clock; ``other`` claims while one is in flight."""

    def __init__(self, clock: FakeClock, seconds: float, outbox: SqlOutbox,
                 claim_during_send: int | None) -> None:
        super().__init__()
        self.clock, self.seconds, self.outbox = clock, seconds, outbox
        self.claim_during_send = claim_during_send
        self.taken: list[int] = []

    def send(self, message: Message) -> None:
        self.clock.advance(timedelta(seconds=self.seconds))
        if self.claim_during_send in (None, len(self.messages) + 1):
            now = self.clock.now()
            self.taken += [m.id for m in self.outbox.claim(
                now, "other", now + LEASE, 50, urgent_only=False, lease_now=now)]
        super().send(message)


def _dispatcher(sql: Engine, notifier: RecordingNotifier, clock: FakeClock) -> Dispatcher:
    return Dispatcher(SqlOutbox(sql), notifier, office_hours=None, sender="icsflow@example.org",
                      clock=clock, lease_seconds=LEASE.total_seconds(), batch_size=10,
                      owner="me")


def test_a_slow_batch_keeps_its_lease_and_every_row_is_sent_once(sql: Engine) -> None:
    outbox, clock = SqlOutbox(sql), FakeClock(NOW)
    _queue(outbox, 6)
    server = SlowServer(clock, 7, outbox, claim_during_send=None)  # 42 s for a 20 s lease
    assert _dispatcher(sql, server, clock).dispatch_once(NOW) == DispatchResult(sent=6)
    assert server.taken == []
    assert [m.status for m in outbox.list()] == ["sent"] * 6


def test_rows_whose_lease_was_lost_are_left_to_their_new_owner(sql: Engine) -> None:
    outbox, clock = SqlOutbox(sql), FakeClock(NOW)
    _queue(outbox, 4)
    server = SlowServer(clock, 25, outbox, claim_during_send=1)  # longer than the lease
    result = _dispatcher(sql, server, clock).dispatch_once(NOW)
    assert server.taken == [1, 2, 3, 4]
    assert result == DispatchResult(sent=1, lost=3)
    assert len(server.messages) == 1
    rows = outbox.list()
    assert [m.status for m in rows] == ["pending"] * 4  # the other daemon's to send
