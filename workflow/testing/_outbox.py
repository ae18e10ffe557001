"""The in-memory store's outbox: ``workflow.ports.Outbox`` (what a dispatcher needs) and the
read side ``storage.outbox.SqlOutbox`` offers the CLI and the web page, on the same rows the
engine's transactions queue.

Every method is its own short transaction, as on SQL. A claim leases rows to an owner and
counts the attempt at claim time; the settle methods touch only a row still pending and still
leased to the same owner, so a dispatcher that lost its lease cannot mark another's delivery.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Unpack

from icsflow.workflow.instance import OutboxStatus
from icsflow.workflow.ports import OutboxMessage
from icsflow.workflow.testing._tables import (
    Database,
    Draft,
    MessageChanges,
    MessageRow,
    Tables,
    as_text,
    read_list,
    stored_at,
    stored_json,
)


def _message(r: MessageRow, tables: Tables) -> OutboxMessage:
    case = tables.instances.get(r.instance_id) if r.instance_id is not None else None
    return OutboxMessage(id=r.id, idempotency_key=r.idempotency_key,
                         recipients=tuple(map(as_text, read_list(r.recipients))), subject=r.subject,
                         body=r.body, template=r.template, urgent=r.urgent,
                         status=OutboxStatus(r.status), attempts=r.attempts,
                         created_at=r.created_at, instance_id=r.instance_id,
                         ref=case.ref if case is not None else None,
                         next_attempt_at=r.next_attempt_at, last_error=r.last_error,
                         sent_at=r.sent_at, channel=r.channel, message_id=r.message_id)


def _held_by(owner: str) -> Callable[[MessageRow], bool]:
    return lambda r: r.status == "pending" and r.claimed_by == owner


class InMemoryOutbox:
    """The outbox rows of one in-memory store."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def _update(self, draft: Draft, ids: Sequence[int], match: Callable[[MessageRow], bool],
                **values: Unpack[MessageChanges]) -> builtins.list[MessageRow]:
        done = []
        for i in dict.fromkeys(ids):
            row = draft.tables.outbox.get(i)
            if row is not None and match(row):
                new = replace(row, **values)
                draft.put_message(new)
                done.append(new)
        return done

    def _update_now(self, ids: Sequence[int], match: Callable[[MessageRow], bool],
                    **values: Unpack[MessageChanges]) -> builtins.list[MessageRow]:
        with self._db.atomic() as draft:
            return self._update(draft, ids, match, **values)

    # -- the dispatcher ----------------------------------------------------------------------

    def claim(self, now: datetime, owner: str, lease_until: datetime, limit: int, *,
              urgent_only: bool, lease_now: datetime) -> builtins.list[OutboxMessage]:
        """Lease up to ``limit`` pending rows due by ``now`` (by due time, then id) that
        nobody holds or whose lease ran out by ``lease_now``, counting one attempt on each."""
        with self._db.atomic() as draft:
            due = sorted((r for r in draft.tables.outbox.values()
                          if r.status == "pending" and r.next_attempt_at is not None
                          and r.next_attempt_at <= now
                          and (r.claimed_by is None or r.claim_expires_at is None
                               or r.claim_expires_at < lease_now)
                          and (r.urgent or not urgent_only)),
                         key=lambda r: (r.next_attempt_at, r.id))[:limit]
            lease = stored_at(lease_until)
            claimed = [replace(r, claimed_by=owner, claim_expires_at=lease,
                               attempts=r.attempts + 1) for r in due]
            for r in claimed:
                draft.put_message(r)
            return sorted((_message(r, draft.tables) for r in claimed), key=lambda m: m.id)

    def mark_sent(self, message_id: int, owner: str, at: datetime) -> None:
        self.mark_sent_many([message_id], owner, at)

    def mark_sent_many(self, message_ids: Sequence[int], owner: str, at: datetime) -> None:
        """Mark a delivered batch sent in one transaction."""
        if message_ids:
            self._update_now(message_ids, _held_by(owner), claimed_by=None,
                             claim_expires_at=None, status="sent", sent_at=stored_at(at),
                             last_error=None)

    def schedule_retry(self, message_id: int, owner: str, at: datetime, reason: str) -> None:
        self._update_now([message_id], _held_by(owner), claimed_by=None, claim_expires_at=None,
                         next_attempt_at=stored_at(at), last_error=reason[:2000])

    def mark_failed(self, message_id: int, owner: str, reason: str) -> None:
        self._update_now([message_id], _held_by(owner), claimed_by=None, claim_expires_at=None,
                         status="failed", last_error=reason[:2000])

    def release(self, message_ids: Sequence[int], owner: str) -> None:
        """Give back leased rows not attempted: their attempt is not counted."""
        with self._db.atomic() as draft:
            for r in [draft.tables.outbox[i] for i in dict.fromkeys(message_ids)
                      if i in draft.tables.outbox]:
                self._update(draft, [r.id], _held_by(owner), claimed_by=None,
                             claim_expires_at=None, attempts=r.attempts - 1)

    def renew(self, message_ids: Sequence[int], owner: str,
              lease_until: datetime) -> builtins.set[int]:
        """Extend the lease on rows still pending and leased to ``owner``; their ids."""
        if not message_ids:
            return builtins.set()
        held = self._update_now(message_ids, _held_by(owner),
                                claim_expires_at=stored_at(lease_until))
        return {r.id for r in held}

    def mark_sent_with_copies(self, message_id: int, owner: str, at: datetime,
                              channels: Sequence[str], copy_message_id: str) -> None:
        """Mark sent and queue one copy per channel (key ``CHANNEL-copy:ID``, queued once) in
        one transaction; nothing if the lease was lost (whoever holds the row queues them)."""
        with self._db.atomic() as draft:
            marked = self._update(draft, [message_id], _held_by(owner), claimed_by=None,
                                  claim_expires_at=None, status="sent", sent_at=stored_at(at),
                                  last_error=None)
            if not marked:
                return
            sent = marked[0]
            for channel in channels:
                key = f"{channel}-copy:{message_id}"
                if key in draft.tables.outbox_keys:
                    continue
                draft.put_message(replace(
                    sent, id=draft.next_id("outbox"), status="pending", attempts=0,
                    next_attempt_at=stored_at(at), last_error=None, idempotency_key=key,
                    created_at=stored_at(at), sent_at=None, channel=channel,
                    message_id=copy_message_id))

    def defer(self, message_ids: Sequence[int], owner: str, until: datetime,
              reason: str) -> None:
        """Give back leased rows because their channel is down, due again at ``until``."""
        with self._db.atomic() as draft:
            for i in dict.fromkeys(message_ids):
                r = draft.tables.outbox.get(i)
                if r is not None:
                    self._update(draft, [i], _held_by(owner), claimed_by=None,
                                 claim_expires_at=None, attempts=r.attempts - 1,
                                 next_attempt_at=stored_at(until), last_error=reason[:2000])

    def count_due(self, now: datetime) -> int:
        return sum(1 for r in self._db.tables.outbox.values()
                   if r.status == "pending" and r.next_attempt_at is not None
                   and r.next_attempt_at <= now)

    def enqueue(self, *, idempotency_key: str, recipients: Sequence[str], subject: str,
                body: str, template: str, urgent: bool, now: datetime,
                instance_id: str | None = None) -> bool:
        """Queue a message unless one with this key exists; True if queued now."""
        with self._db.atomic() as draft:
            if idempotency_key in draft.tables.outbox_keys:
                return False
            draft.put_message(MessageRow(
                id=draft.next_id("outbox"), instance_id=instance_id,
                recipients=stored_json(builtins.list(recipients)), subject=subject, body=body,
                template=template, urgent=urgent, status="pending", attempts=0,
                next_attempt_at=stored_at(now), last_error=None,
                idempotency_key=idempotency_key, created_at=stored_at(now)))
            return True

    # -- operators and the read side ---------------------------------------------------------

    def retry(self, message_id: int, now: datetime,
              recipients: Sequence[str] | None = None) -> bool:
        """A failed row back to pending with its attempts reset, to ``recipients`` if given."""
        values: MessageChanges = dict(status="pending", attempts=0,
                                      next_attempt_at=stored_at(now), claimed_by=None,
                                      claim_expires_at=None)
        if recipients is not None:
            values["recipients"] = stored_json(builtins.list(recipients))
        return bool(self._update_now([message_id], lambda r: r.status == "failed", **values))

    def get(self, message_id: int) -> OutboxMessage | None:
        tables = self._db.tables
        row = tables.outbox.get(message_id)
        return _message(row, tables) if row is not None else None

    def list(self, status: OutboxStatus | str | None = None, limit: int | None = None,
             instance_id: str | None = None) -> builtins.list[OutboxMessage]:
        """Rows in id order with their case reference, optionally of one status or case."""
        tables = self._db.tables
        rows = [r for r in sorted(tables.outbox.values(), key=lambda r: r.id)
                if (status is None or r.status == str(status))
                and (instance_id is None or r.instance_id == instance_id)]
        return [_message(r, tables) for r in rows[:limit]]

    def counts(self) -> dict[str, int]:
        """How many rows have each status."""
        out: dict[str, int] = {}
        for r in self._db.tables.outbox.values():
            out[r.status] = out.get(r.status, 0) + 1
        return out


__all__ = ["InMemoryOutbox"]
