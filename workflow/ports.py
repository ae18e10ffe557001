"""What the engine needs from storage, as small Protocols: the core never sees SQL.

The engine plans a transition in memory (a ``Change``) and hands it to a ``UnitOfWork`` that
writes it all in one transaction, or raises ``ConcurrencyConflict`` when the instance's row
version moved. ``storage.repository`` implements these for SQLite and PostgreSQL, and
``storage.outbox`` the ``Outbox`` the dispatcher sends from.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from icsflow.workflow.instance import (
    DeadlineInfo,
    DeadlineStatus,
    HistoryEntry,
    Instance,
    OutboxStatus,
    TimerStatus,
)

if TYPE_CHECKING:  # the changes room's own port; it imports this module's values
    from icsflow.workflow.changes.store import ChangeStore


@dataclass(frozen=True)
class InstanceRecord:
    id: str
    definition: str
    definition_version: int
    ref: str
    state: str
    data: dict[str, Any]
    row_version: int
    created_at: datetime
    started_at: datetime
    closed_at: datetime | None = None
    child: str | None = None  # the child's identifier in the case-management system
    family: str | None = None  # the family's identifier (IRO continuity across siblings)


@dataclass(frozen=True)
class DeadlineRecord:
    id: int
    info: DeadlineInfo


@dataclass(frozen=True)
class TimerRecord:
    id: int
    instance_id: str
    name: str
    kind: str  # "timer" (from the definition) or "breach" (internal: marks a deadline breached)
    due_at: datetime
    action: str
    status: TimerStatus
    deadline: str | None = None
    state: str | None = None
    first_due_at: datetime | None = None
    occurrence: int = 0
    attempts: int = 0
    claimed_by: str | None = None  # the worker holding the lease, if any
    claim_expires_at: datetime | None = None


@dataclass(frozen=True)
class Snapshot:
    """Everything a transition is planned from: the row, its history, deadlines, pending timers."""

    instance: InstanceRecord
    history: tuple[HistoryEntry, ...]
    deadlines: tuple[DeadlineRecord, ...]
    timers: tuple[TimerRecord, ...]


@dataclass(frozen=True)
class NewTimer:
    name: str
    kind: str
    due_at: datetime
    action: str
    deadline: str | None = None
    state: str | None = None
    first_due_at: datetime | None = None
    occurrence: int = 0


@dataclass(frozen=True)
class NewOutbox:
    recipients: tuple[str, ...]
    subject: str
    body: str
    template: str
    urgent: bool
    status: OutboxStatus
    idempotency_key: str
    last_error: str | None = None
    instance_id: str | None = None


@dataclass(frozen=True)
class DeadlineUpdate:
    """Set a deadline row's status (met/cancelled/breached) or move its due date."""

    id: int
    status: DeadlineStatus | None = None
    met_at: datetime | None = None
    due: date | None = None
    due_at: datetime | None = None
    only_if_status: tuple[DeadlineStatus, ...] = ()


@dataclass
class Change:
    """All the writes of one transition (or one timer firing), applied atomically."""

    instance_id: str
    expected_version: int | None  # None: a new instance
    new_instance: InstanceRecord | None = None
    state: str | None = None
    data: dict[str, Any] | None = None
    closed_at: datetime | None = None
    bump_version: bool = True
    history: list[HistoryEntry] = field(default_factory=list)
    new_deadlines: list[DeadlineInfo] = field(default_factory=list)
    deadline_updates: list[DeadlineUpdate] = field(default_factory=list)
    cancel_timers: list[int] = field(default_factory=list)
    new_timers: list[NewTimer] = field(default_factory=list)
    outbox: list[NewOutbox] = field(default_factory=list)
    claim_new_timers_before: datetime | None = None  # pre-claim new timers due by then (tick)
    recorded_at: datetime | None = None  # when written (real time), for created_at columns
    # Signals this change tells the child's other cases, and the case as it will be once
    # written (who sends them); the engine applies their reactions in the same transaction.
    signals: list[str] = field(default_factory=list)
    origin: InstanceRecord | None = None


class UnitOfWork(Protocol):
    """One database transaction; commits when the ``with`` block ends without error."""

    def load(self, instance_id: str) -> Snapshot: ...
    def load_many(self, instance_ids: Sequence[str]) -> dict[str, Snapshot]: ...
    def count_open(self, definition: str, field_name: str, value: object, *,
                   exclude: str | None = None) -> int:
        """Open cases of ``definition`` whose data ``field_name`` equals ``value``."""
        ...
    def load_child(self, child: str) -> builtins.list[Snapshot]:
        """Snapshots of every open case of ``child``, oldest first (signals read them)."""
        ...
    def refs_in_use(self, ref: str, *, spells: bool = False) -> set[str]:
        """``ref`` if a case has it, and with ``spells`` also ``ref-2``, ``ref-3``...; a start
        asks before writing its reference (under a lock where the database needs one)."""
        ...
    def apply(self, change: Change, *, owner: str | None = None,
              lease_until: datetime | None = None) -> list[TimerRecord]:
        """Write ``change``; returns the new timers (with ids) that were pre-claimed."""
        ...
    def extend_claims(self, timer_ids: Sequence[int], owner: str,
                      lease_until: datetime) -> None:
        """Move the lease of those pending timers still claimed by ``owner`` to
        ``lease_until`` (before a batch is redone one firing at a time)."""
        ...
    def take_over_timers(self, timer_ids: Sequence[int], owner: str, lease_until: datetime,
                         now: datetime) -> list[TimerRecord]:
        """Lease to ``owner`` those pending timers that nobody holds or whose lease ran out by
        ``now``; returns the ones taken."""
        ...
    def release_timers(self, timer_ids: Sequence[int], owner: str) -> None:
        """Give back pending timers ``owner`` holds (they wait for an earlier timer)."""
        ...
    def take_timer(self, timer_id: int, owner: str, fired_at: datetime, outcome: str) -> bool:
        """Mark a claimed pending timer fired; False if it was cancelled or claimed by another."""
        ...
    def set_outcome(self, timer_id: int, outcome: str, error: str | None = None) -> None: ...
    def timer_failed(self, timer_id: int, owner: str, error: str, retry_at: datetime,
                     give_up: bool) -> None: ...
    def commit(self) -> None:
        """Commit what is written so far and go on in a new transaction."""
        ...
    def rollback(self) -> None:
        """Undo everything since the last commit and go on in a new transaction."""
        ...


class Store(Protocol):
    def unit_of_work(self) -> AbstractContextManager[UnitOfWork]: ...
    def get(self, instance_id: str) -> Instance: ...
    def find(self, ref: str) -> builtins.list[Instance]: ...
    def list(self, *, definition: str | None = None, state: str | None = None,
             overdue_at: datetime | None = None, open_only: bool = False,
             child: str | None = None, family: str | None = None) -> list[Instance]: ...
    def claim_due_timers(self, now: datetime, owner: str, lease_until: datetime,
                         limit: int, clock_now: datetime | None = None,
                         ) -> builtins.list[TimerRecord]: ...
    def release_timers(self, ids: Sequence[int], owner: str) -> None: ...
    def timer_name(self, timer_id: int) -> str | None:
        """The name of a timer row, pending, fired or cancelled (None if there is no such
        row): an outbox row queued by a timer keys it by id (``workflow.daemon.readdress``)."""
        ...
    def register_definition(self, name: str, version: int, content_hash: str,
                            source_text: str | None = None) -> None:
        """Refuse (DefinitionError) a changed text under an already used name and version."""
        ...
    def kept_definitions(self) -> builtins.list[tuple[str, int, str]]: ...
    def index_counted_fields(self, fields: Sequence[str]) -> None:
        """Make counting open cases by these data fields (``caseload``) cheap; best effort."""
        ...
    @property
    def changes(self) -> ChangeStore | None:
        """The store's side of moving running cases to a new version and re-projecting
        deadlines over a changed calendar (``workflow.changes``); None where it has none."""
        ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class OutboxMessage:
    """One outbox row. From a claim, ``attempts`` already counts the attempt being made;
    ``ref`` is the case reference of the row's instance, if it has one."""

    id: int
    idempotency_key: str
    recipients: tuple[str, ...]
    subject: str
    body: str
    template: str
    urgent: bool
    status: OutboxStatus
    attempts: int
    created_at: datetime
    instance_id: str | None = None
    ref: str | None = None
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    sent_at: datetime | None = None
    channel: str = "email"  # or a copy's channel, e.g. "webhook"
    message_id: str | None = None  # a copy's Message-ID: its email's


class Outbox(Protocol):
    """The outbox after queueing (``storage.outbox.SqlOutbox``): what the dispatcher and the
    digests need, plus reading rows back. Every method is its own short transaction."""

    def claim(self, now: datetime, owner: str, lease_until: datetime, limit: int, *,
              urgent_only: bool, lease_now: datetime) -> builtins.list[OutboxMessage]:
        """Lease up to ``limit`` pending rows due by ``now`` whose lease (if any) expired by
        ``lease_now``, counting one attempt on each; skip rows another process holds."""
        ...

    def mark_sent(self, message_id: int, owner: str, at: datetime) -> None: ...
    def mark_sent_many(self, message_ids: Sequence[int], owner: str, at: datetime) -> None:
        """Mark a delivered batch sent in one transaction (for a channel that stores each
        Message-ID once, where a resend after a crash delivers nothing new)."""
        ...
    def schedule_retry(self, message_id: int, owner: str, at: datetime, reason: str) -> None: ...
    def mark_failed(self, message_id: int, owner: str, reason: str) -> None: ...
    def release(self, message_ids: Sequence[int], owner: str) -> None:
        """Give back leased rows not attempted (shutdown): their attempt is not counted."""
        ...

    def renew(self, message_ids: Sequence[int], owner: str,
              lease_until: datetime) -> builtins.set[int]:
        """Extend to ``lease_until`` the lease on those rows still pending and leased to
        ``owner``, and return their ids: a row missing from the answer was claimed by another
        process (or settled) after this lease ran out, and must not be sent by this one."""
        ...

    def mark_sent_with_copies(self, message_id: int, owner: str, at: datetime,
                              channels: Sequence[str], copy_message_id: str) -> None:
        """Mark sent and, in the same transaction, queue one copy row per channel (key
        ``CHANNEL-copy:ID``, so a copy is queued at most once)."""
        ...

    def defer(self, message_ids: Sequence[int], owner: str, until: datetime,
              reason: str) -> None:
        """Give back leased rows not attempted because their channel is down, due again at
        ``until``: their attempt is not counted."""
        ...

    def count_due(self, now: datetime) -> int:
        """Pending rows due by ``now`` (held back by office hours when closed)."""
        ...

    def enqueue(self, *, idempotency_key: str, recipients: Sequence[str], subject: str,
                body: str, template: str, urgent: bool, now: datetime,
                instance_id: str | None = None) -> bool:
        """Queue a message unless one with this key exists; True if queued now."""
        ...

    def list(self, status: OutboxStatus | str | None = None, limit: int | None = None,
             instance_id: str | None = None) -> builtins.list[OutboxMessage]:
        """Rows in id order, optionally of one status or one instance."""
        ...


def default_owner() -> str:
    """A claim owner unique to this process (host, pid, random suffix): timers and outbox rows
    claimed under it are leased to this worker only."""
    import os
    import random
    import socket

    return f"{socket.gethostname()[:40]}:{os.getpid()}:{random.randrange(16 ** 6):06x}"


__all__ = ["InstanceRecord", "DeadlineRecord", "TimerRecord", "Snapshot", "NewTimer",
           "NewOutbox", "DeadlineUpdate", "Change", "UnitOfWork", "Store", "OutboxMessage",
           "Outbox", "default_owner"]
