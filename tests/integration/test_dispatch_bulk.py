"""Bulk dispatch to a Maildir: a batch is written, fsynced and settled as one, and a crash
between storing and settling never stores a Message-ID twice."""

from __future__ import annotations

import mailbox
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from icsflow.notifiers.maildir import MaildirNotifier
from icsflow.workflow.clock import FakeClock
from icsflow.workflow.daemon.dispatch import Dispatcher, DispatchResult
from icsflow.workflow.instance import OutboxStatus
from icsflow.workflow.ports import OutboxMessage

NOW = datetime(2012, 1, 6, 10, 0, tzinfo=UTC)


class Outbox:
    """The dispatcher's port in memory, with the bulk settle and a crash on demand."""

    def __init__(self, n: int, bad: Sequence[int] = ()) -> None:
        self.items = {k: OutboxMessage(
            id=k, idempotency_key=f"k{k}", recipients=(() if k in bad else (f"tm{k}@x.org",)),
            subject=f"Alert {k}", body="body", template="reminder", urgent=False,
            status=OutboxStatus.PENDING, attempts=0, created_at=NOW) for k in range(1, n + 1)}
        self.status = {k: "pending" for k in self.items}
        self.settles: list[list[int]] = []
        self.crash_next_settle = False

    def claim(self, now: datetime, owner: str, lease_until: datetime, limit: int, *,
              urgent_only: bool, lease_now: datetime) -> list[OutboxMessage]:
        due = [replace(i, attempts=i.attempts + 1) for k, i in self.items.items()
               if self.status[k] == "pending"][:limit]
        return due

    def mark_sent_many(self, ids: Sequence[int], owner: str, at: datetime) -> None:
        if self.crash_next_settle:
            self.crash_next_settle = False
            raise KeyboardInterrupt("the daemon died before the batch was marked")
        self.settles.append(list(ids))
        for k in ids:
            self.status[k] = "sent"

    def mark_sent(self, k: int, owner: str, at: datetime) -> None:
        raise AssertionError("a Maildir batch is settled as one")

    def mark_failed(self, k: int, owner: str, reason: str) -> None:
        self.status[k] = "failed"

    def schedule_retry(self, k: int, owner: str, at: datetime, reason: str) -> None:
        raise AssertionError(reason)

    def release(self, ids: Sequence[int], owner: str) -> None:
        pass

    def renew(self, ids: Sequence[int], owner: str, lease_until: datetime) -> set[int]:
        return {k for k in ids if self.status[k] == "pending"}

    def count_due(self, now: datetime) -> int:
        return 0


def _dispatcher(outbox: Outbox, folder: Path) -> Dispatcher:
    return Dispatcher(outbox, MaildirNotifier(folder), office_hours=None,  # type: ignore[arg-type]
                      sender="icsflow@x.org", clock=FakeClock(NOW), batch_size=50)


def test_a_batch_is_stored_and_settled_in_one_transaction(tmp_path: Path) -> None:
    outbox = Outbox(120, bad=[7])
    result = _dispatcher(outbox, tmp_path / "mail").dispatch_once(NOW)
    assert result == DispatchResult(sent=119, failed=1)
    assert [len(s) for s in outbox.settles] == [49, 50, 20]
    assert outbox.status[7] == "failed"
    assert len(mailbox.Maildir(tmp_path / "mail")) == 119


def test_a_crash_before_the_settle_resends_but_stores_each_message_once(
        tmp_path: Path) -> None:
    outbox = Outbox(30)
    outbox.crash_next_settle = True
    try:
        _dispatcher(outbox, tmp_path / "mail").dispatch_once(NOW)
    except KeyboardInterrupt:
        pass
    assert len(mailbox.Maildir(tmp_path / "mail")) == 30
    assert all(s == "pending" for s in outbox.status.values())
    again = _dispatcher(outbox, tmp_path / "mail").dispatch_once(NOW)  # after the restart
    assert again == DispatchResult(sent=30)
    assert len(mailbox.Maildir(tmp_path / "mail")) == 30
    assert not list((tmp_path / "mail" / "tmp").iterdir())
