"""The in-memory store's rows and tables, and a transaction's copy-on-write view of them.

The rows mirror the SQL tables (``storage.tables``) column for column, so the in-memory store
can answer exactly as the SQL one does: ids from one sequence per table (a rolled-back
transaction gives its ids back, as SQLite does), times kept aware in UTC, JSON values kept as
JSON text (each read gets its own fresh copy, as from a database), statuses as their stored
strings. Committed tables are never changed in place: a transaction copies a table the first
time it writes to it, and its commit swaps the copies in, so a reader always sees one whole
committed state and a rollback is dropping the copies.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import TypedDict

from icsflow.workflow.errors import ConcurrencyConflict
from icsflow.workflow.instance import (
    DeadlineInfo,
    DeadlineStatus,
    HistoryEntry,
    Instance,
    JsonValue,
    TimerInfo,
    TimerStatus,
)
from icsflow.workflow.ports import DeadlineRecord, InstanceRecord, Snapshot, TimerRecord


class DuplicateKey(Exception):  # noqa: N818 - named after what the SQL store's constraint says
    """A row whose key is already taken (a case id, an outbox idempotency key): where the SQL
    store's unique constraint raises ``IntegrityError``, the in-memory store raises this."""


def stored_at(value: datetime) -> datetime:
    """A time as the SQL store keeps it: aware, in UTC; a naive one is refused, as there."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"naive datetime {value.isoformat()} cannot be stored")
    return value.astimezone(UTC)


def stored_time(value: datetime | None) -> datetime | None:
    """``stored_at`` for a column that may be empty."""
    return None if value is None else stored_at(value)


def stored_json(value: object) -> str:
    """A JSON column's value, kept as its text: what cannot be JSON fails here, as there."""
    return json.dumps(value)


def read_json(text: str | None) -> JsonValue:
    value: JsonValue = None if text is None else json.loads(text)
    return value


def read_object(text: str | None) -> dict[str, JsonValue]:
    """A JSON object column (case data, a change's values, settings); none or null is ``{}``."""
    return as_object(read_json(text) or {})


def read_list(text: str | None) -> list[JsonValue]:
    """A JSON list column (recipients, cancelled timers); none or null is ``[]``."""
    value = read_json(text) or []
    if not isinstance(value, list):
        raise ValueError(f"in-memory store: {text!r} is not a JSON list")
    return value


def as_object(value: JsonValue) -> dict[str, JsonValue]:
    if not isinstance(value, dict):
        raise ValueError(f"in-memory store: {value!r} is not a JSON object")
    return value


def as_text(value: JsonValue) -> str:
    if not isinstance(value, str):
        raise ValueError(f"in-memory store: {value!r} is not a JSON string")
    return value


@dataclass(frozen=True)
class CaseRow:
    id: str
    definition: str
    definition_version: int
    ref: str
    state: str
    data: str  # JSON text
    version: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime
    closed_at: datetime | None
    child: str | None
    family: str | None


@dataclass(frozen=True)
class HistoryRow:
    id: int
    instance_id: str
    event: str
    from_state: str | None
    to_state: str
    actor_id: str
    role: str
    happened_at: datetime
    recorded_at: datetime
    note: str | None
    changes: str  # JSON text
    cancelled_timers: str | None  # JSON text: [{"name", "due_at"}] or None


@dataclass(frozen=True)
class DeadlineRow:
    id: int
    instance_id: str
    name: str
    due_date: date
    due_at: datetime
    exact: bool
    status: str
    met_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class TimerRow:
    id: int
    instance_id: str
    name: str
    kind: str
    deadline: str | None
    state: str | None
    due_at: datetime
    first_due_at: datetime | None
    action: str
    status: str
    claimed_by: str | None
    claim_expires_at: datetime | None
    attempts: int
    fired_at: datetime | None
    repeat_count: int
    outcome: str | None
    last_error: str | None
    created_at: datetime


@dataclass(frozen=True)
class MessageRow:
    id: int
    instance_id: str | None
    recipients: str  # JSON text
    subject: str
    body: str
    template: str
    urgent: bool
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    idempotency_key: str
    created_at: datetime
    sent_at: datetime | None = None
    claimed_by: str | None = None
    claim_expires_at: datetime | None = None
    channel: str = "email"
    message_id: str | None = None


class MessageChanges(TypedDict, total=False):
    """What settling, leasing or retrying an outbox row changes (``MessageRow``'s fields)."""

    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    sent_at: datetime | None
    claimed_by: str | None
    claim_expires_at: datetime | None
    recipients: str


class TimerChanges(TypedDict, total=False):
    """What leasing or settling a timer row changes (``TimerRow``'s fields)."""

    claimed_by: str | None
    claim_expires_at: datetime | None
    outcome: str | None
    last_error: str | None


@dataclass(frozen=True)
class DefinitionRow:
    name: str
    version: int
    content_hash: str
    registered_at: datetime
    source_text: str | None


@dataclass(frozen=True)
class BaselineRow:
    id: int
    fingerprint: str
    settings: str  # JSON text
    recorded_at: datetime


@dataclass(frozen=True)
class CaseRows:
    """The ids of one case's rows in each child table, in id order (the SQL indexes)."""

    history: tuple[int, ...] = ()
    deadlines: tuple[int, ...] = ()
    timers: tuple[int, ...] = ()


@dataclass
class Tables:
    """Every table, by primary key, in insertion order."""

    instances: dict[str, CaseRow] = field(default_factory=dict)
    history: dict[int, HistoryRow] = field(default_factory=dict)
    deadlines: dict[int, DeadlineRow] = field(default_factory=dict)
    timers: dict[int, TimerRow] = field(default_factory=dict)
    outbox: dict[int, MessageRow] = field(default_factory=dict)
    outbox_keys: dict[str, int] = field(default_factory=dict)
    definitions: dict[tuple[str, int], DefinitionRow] = field(default_factory=dict)
    baselines: dict[int, BaselineRow] = field(default_factory=dict)
    case_rows: dict[str, CaseRows] = field(default_factory=dict)
    last_ids: dict[str, int] = field(default_factory=dict)


class Draft:
    """One transaction's tables: the committed ones until it writes, then its own copies.
    Every write goes through a method here, which copies the table first."""

    def __init__(self, base: Tables) -> None:
        self.base = base
        self.tables = replace(base)  # the same dicts, until one is written
        self._copied: set[str] = set()

    @property
    def changed(self) -> bool:
        return bool(self._copied)

    def _own(self, *names: str) -> Tables:
        for name in names:
            if name not in self._copied:
                setattr(self.tables, name, dict(getattr(self.tables, name)))
                self._copied.add(name)
        return self.tables

    def next_id(self, table: str) -> int:
        t = self._own("last_ids")
        t.last_ids[table] = t.last_ids.get(table, 0) + 1
        return t.last_ids[table]

    def _link(self, case_id: str, **ids: int) -> None:
        t = self._own("case_rows")
        rows = t.case_rows.get(case_id, CaseRows())
        t.case_rows[case_id] = replace(rows, **{k: (*getattr(rows, k), v) for k, v in ids.items()})

    def put_case(self, row: CaseRow) -> None:
        self._own("instances").instances[row.id] = row

    def add_history(self, row: HistoryRow) -> None:
        self._own("history").history[row.id] = row
        self._link(row.instance_id, history=row.id)

    def put_deadline(self, row: DeadlineRow) -> None:
        new = row.id not in self.tables.deadlines
        self._own("deadlines").deadlines[row.id] = row
        if new:
            self._link(row.instance_id, deadlines=row.id)

    def put_timer(self, row: TimerRow) -> None:
        new = row.id not in self.tables.timers
        self._own("timers").timers[row.id] = row
        if new:
            self._link(row.instance_id, timers=row.id)

    def put_message(self, row: MessageRow) -> None:
        t = self._own("outbox", "outbox_keys")
        t.outbox[row.id] = row
        t.outbox_keys[row.idempotency_key] = row.id

    def put_definition(self, row: DefinitionRow) -> None:
        self._own("definitions").definitions[(row.name, row.version)] = row

    def add_baseline(self, row: BaselineRow) -> None:
        self._own("baselines").baselines[row.id] = row


class Database:
    """The committed tables and the one lock every writer holds while it writes: one writer
    at a time, as SQLite has, while readers read the last committed tables without waiting
    (committed tables are never changed in place)."""

    def __init__(self) -> None:
        self.tables = Tables()
        self.lock = threading.RLock()

    def begin(self) -> Draft:
        return Draft(self.tables)

    def commit(self, draft: Draft) -> None:
        """Make ``draft`` the committed tables (a draft that wrote nothing changes nothing).
        Writers hold the lock, so the tables can only have moved under a draft when one
        thread wrote through another transaction while its own was open: refused whole."""
        if not draft.changed:
            return
        if self.tables is not draft.base:
            raise ConcurrencyConflict(
                "the in-memory store was written by another transaction while this one was "
                "open (two units of work at once in one thread?); nothing of this one was kept")
        self.tables = draft.tables

    @contextmanager
    def atomic(self) -> Iterator[Draft]:
        """One short transaction: committed if the block ends without an error."""
        with self.lock:
            draft = self.begin()
            yield draft
            self.commit(draft)


# -- rows -> the port's records and the case a reader sees -------------------------------------

def instance_record(r: CaseRow) -> InstanceRecord:
    return InstanceRecord(id=r.id, definition=r.definition, definition_version=r.definition_version,
                          ref=r.ref, state=r.state, data=read_object(r.data), row_version=r.version,
                          created_at=r.created_at, started_at=r.started_at, closed_at=r.closed_at,
                          child=r.child, family=r.family)


def history_entry(r: HistoryRow) -> HistoryEntry:
    return HistoryEntry(event=r.event, from_state=r.from_state, to_state=r.to_state,
                        actor=r.actor_id, role=r.role, at=r.happened_at,
                        recorded_at=r.recorded_at, note=r.note, changes=read_object(r.changes),
                        cancelled_timers=tuple(
                            (as_text(c["name"]), datetime.fromisoformat(as_text(c["due_at"])))
                            for c in map(as_object, read_list(r.cancelled_timers))))


def deadline_record(r: DeadlineRow) -> DeadlineRecord:
    return DeadlineRecord(r.id, DeadlineInfo(name=r.name, due=r.due_date, due_at=r.due_at,
                                             status=DeadlineStatus(r.status), exact=r.exact,
                                             met_at=r.met_at))


def timer_record(r: TimerRow) -> TimerRecord:
    return TimerRecord(id=r.id, instance_id=r.instance_id, name=r.name, kind=r.kind,
                       due_at=r.due_at, action=r.action, status=TimerStatus(r.status),
                       deadline=r.deadline, state=r.state, first_due_at=r.first_due_at,
                       occurrence=r.repeat_count, attempts=r.attempts,
                       claimed_by=r.claimed_by, claim_expires_at=r.claim_expires_at)


def by_due(timers: list[TimerRow]) -> list[TimerRow]:
    """Timers in the order the SQL store reads them: due time, then id."""
    return sorted(timers, key=lambda t: (t.due_at, t.id))


def snapshot(tables: Tables, case_id: str) -> Snapshot:
    """One case as a transition is planned from it (the case must exist)."""
    rows = tables.case_rows.get(case_id, CaseRows())
    pending = [t for t in (tables.timers[i] for i in rows.timers) if t.status == "pending"]
    return Snapshot(instance_record(tables.instances[case_id]),
                    tuple(history_entry(tables.history[i]) for i in rows.history),
                    tuple(deadline_record(tables.deadlines[i]) for i in rows.deadlines),
                    tuple(timer_record(t) for t in by_due(pending)))


def to_instance(snap: Snapshot) -> Instance:
    """The case as a reader sees it: its definition's timers only (not the internal breach
    markers), in due order."""
    rec = snap.instance
    return Instance(
        id=rec.id, definition=rec.definition, version=rec.definition_version, ref=rec.ref,
        state=rec.state, data=dict(rec.data), deadline_list=tuple(d.info for d in snap.deadlines),
        timers=tuple(TimerInfo(t.name, t.due_at, t.action, t.status, t.deadline, t.state,
                               t.occurrence) for t in snap.timers if t.kind == "timer"),
        history=snap.history, row_version=rec.row_version, created_at=rec.created_at,
        closed_at=rec.closed_at, child=rec.child, family=rec.family, started_at=rec.started_at)


__all__ = ["DuplicateKey", "stored_at", "stored_time", "stored_json", "read_json",
           "read_object", "read_list", "as_object", "as_text", "MessageChanges", "TimerChanges",
           "CaseRow",
           "HistoryRow", "DeadlineRow", "TimerRow", "MessageRow", "DefinitionRow", "BaselineRow",
           "CaseRows", "Tables", "Draft", "Database", "instance_record", "history_entry",
           "deadline_record", "timer_record", "by_due", "snapshot", "to_instance"]
