"""One transaction of the in-memory store: the ``UnitOfWork`` port, as ``storage.unit_of_work``
answers it, on a copy-on-write draft of the tables.

Each method does what the SQL statement of the same name does (the same conditions, the same
columns set, the same order of ids), so a test of an embedding service, or of the engine, sees
the same cases, timers and messages it would see on SQLite. The store holds the writers' lock
for the whole transaction, so two transactions never interleave; the optimistic version check
still refuses a write planned from a version that is no longer the case's.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Unpack

from icsflow.workflow.errors import ConcurrencyConflict, InstanceNotFound
from icsflow.workflow.instance import Instance, OutboxStatus
from icsflow.workflow.ports import Change, Snapshot, TimerRecord
from icsflow.workflow.testing._tables import (
    CaseRow,
    Database,
    DeadlineRow,
    Draft,
    DuplicateKey,
    HistoryRow,
    MessageRow,
    TimerChanges,
    TimerRow,
    by_due,
    read_object,
    snapshot,
    stored_at,
    stored_json,
    stored_time,
    timer_record,
    to_instance,
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class InMemoryUnitOfWork:
    """One transaction on the in-memory tables; ``commit`` and ``rollback`` go on in a new
    one, as the SQL unit of work does."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._draft: Draft = database.begin()

    # -- reads ----------------------------------------------------------------------------

    def load(self, instance_id: str) -> Snapshot:
        if instance_id not in self._draft.tables.instances:
            raise InstanceNotFound(instance_id)
        return snapshot(self._draft.tables, instance_id)

    def load_many(self, instance_ids: Sequence[str]) -> dict[str, Snapshot]:
        cases = self._draft.tables.instances
        return {i: snapshot(self._draft.tables, i) for i in dict.fromkeys(instance_ids)
                if i in cases}

    def count_open(self, definition: str, field_name: str, value: object, *,
                   exclude: str | None = None) -> int:
        """Open cases of ``definition`` whose data ``field_name`` equals ``value`` (Python's
        equality over the stored JSON, as the SQL store counts a text value)."""
        return sum(1 for r in self._draft.tables.instances.values()
                   if r.definition == definition and r.closed_at is None and r.id != exclude
                   and read_object(r.data).get(field_name) == value)

    def refs_in_use(self, ref: str, *, spells: bool = False) -> set[str]:
        """``ref`` if a case has it, and with ``spells`` also ``ref-2``, ``ref-3``... (any
        reference that starts ``ref-``), as a start asks before writing its reference."""
        return {r.ref for r in self._draft.tables.instances.values()
                if r.ref == ref or (spells and r.ref.startswith(f"{ref}-"))}

    def load_child(self, child: str) -> builtins.list[Snapshot]:
        """Every open case of ``child``, oldest start first (then by id)."""
        rows = sorted((r for r in self._draft.tables.instances.values()
                       if r.child == child and r.closed_at is None),
                      key=lambda r: (r.started_at, r.id))
        return [snapshot(self._draft.tables, r.id) for r in rows]

    def written(self, instance_id: str) -> Instance:
        """The case as this transaction wrote it (``Engine`` returns it from start and fire)."""
        return to_instance(self.load(instance_id))

    # -- the write of one change ------------------------------------------------------------

    def apply(self, change: Change, *, owner: str | None = None,
              lease_until: datetime | None = None) -> list[TimerRecord]:
        """Write ``change`` as the SQL store does, in its order: the case row (inserted, or
        updated if its version still matches), its cancelled timers, history, deadlines, new
        timers (those due by ``change.claim_new_timers_before`` leased to ``owner`` and
        returned) and outbox rows."""
        now = change.recorded_at or _utcnow()
        self._write_case(change, now)
        cancelled = self._cancel_timers(change)
        self._write_history(change, cancelled)
        self._write_deadlines(change, now)
        claimed = self._write_timers(change, now, owner, lease_until)
        self._queue_outbox(change, now)
        return claimed

    def _write_case(self, change: Change, now: datetime) -> None:
        d = self._draft
        if change.new_instance is not None:
            n = change.new_instance
            if n.id in d.tables.instances:
                raise DuplicateKey(f"a case with id {n.id!r} exists")
            d.put_case(CaseRow(
                id=n.id, definition=n.definition, definition_version=n.definition_version,
                ref=n.ref, state=n.state, data=stored_json(n.data), version=n.row_version,
                created_at=stored_at(n.created_at), updated_at=stored_at(now),
                started_at=stored_at(n.started_at), closed_at=stored_time(n.closed_at),
                child=n.child, family=n.family))
            return
        if not change.bump_version:
            return
        row = d.tables.instances.get(change.instance_id)
        if row is None or row.version != change.expected_version:
            raise ConcurrencyConflict(instance_id=change.instance_id)
        d.put_case(replace(
            row, state=change.state if change.state is not None else row.state,
            data=stored_json(change.data) if change.data is not None else row.data,
            closed_at=stored_time(change.closed_at) if change.closed_at is not None
            else row.closed_at, version=row.version + 1, updated_at=stored_at(now)))

    def _cancel_timers(self, change: Change) -> list[dict[str, str]]:
        """Cancel the change's timers still pending; what the history row records of them."""
        d = self._draft
        gone: list[TimerRow] = []
        for tid in dict.fromkeys(change.cancel_timers):
            t = d.tables.timers.get(tid)
            if t is not None and t.status == "pending":
                gone.append(t)
                d.put_timer(replace(t, status="cancelled", outcome="cancelled", claimed_by=None,
                                    claim_expires_at=None))
        return [{"name": t.name, "due_at": t.due_at.isoformat()} for t in by_due(gone)
                if t.kind == "timer"]

    def _write_history(self, change: Change, cancelled: list[dict[str, str]]) -> None:
        last = len(change.history) - 1
        for k, h in enumerate(change.history):
            self._draft.add_history(HistoryRow(
                id=self._draft.next_id("history"), instance_id=change.instance_id,
                event=h.event, from_state=h.from_state, to_state=h.to_state, actor_id=h.actor,
                role=h.role, happened_at=stored_at(h.at), recorded_at=stored_at(h.recorded_at),
                note=h.note, changes=stored_json(dict(h.changes)),
                cancelled_timers=stored_json(cancelled) if k == last and cancelled else None))

    def _write_deadlines(self, change: Change, now: datetime) -> None:
        d = self._draft
        for u in change.deadline_updates:
            row = d.tables.deadlines.get(u.id)
            if row is None or (u.only_if_status
                               and row.status not in {s.value for s in u.only_if_status}):
                continue
            d.put_deadline(replace(
                row, status=u.status.value if u.status is not None else row.status,
                met_at=stored_time(u.met_at) if u.met_at is not None else row.met_at,
                due_date=u.due if u.due is not None else row.due_date,
                due_at=stored_at(u.due_at) if u.due_at is not None else row.due_at))
        for n in change.new_deadlines:
            d.put_deadline(DeadlineRow(
                id=d.next_id("deadlines"), instance_id=change.instance_id, name=n.name,
                due_date=n.due, due_at=stored_at(n.due_at), exact=n.exact,
                status=n.status.value, met_at=stored_time(n.met_at), created_at=stored_at(now)))

    def _write_timers(self, change: Change, now: datetime, owner: str | None,
                      lease_until: datetime | None) -> list[TimerRecord]:
        """New timers; those already due within a tick are written first, leased to
        ``owner`` (the SQL store inserts them at once and the others together after)."""
        before = change.claim_new_timers_before
        leased = [owner is not None and before is not None and t.due_at <= before
                  for t in change.new_timers]
        claimed: list[TimerRecord] = []
        for lease in (True, False):
            for t, is_leased in zip(change.new_timers, leased, strict=True):
                if is_leased is not lease:
                    continue
                row = TimerRow(
                    id=self._draft.next_id("timers"), instance_id=change.instance_id,
                    name=t.name, kind=t.kind, deadline=t.deadline, state=t.state,
                    due_at=stored_at(t.due_at), first_due_at=stored_time(t.first_due_at),
                    action=t.action, status="pending", claimed_by=owner if lease else None,
                    claim_expires_at=stored_time(lease_until) if lease else None, attempts=0,
                    fired_at=None, repeat_count=t.occurrence, outcome=None, last_error=None,
                    created_at=stored_at(now))
                self._draft.put_timer(row)
                if lease:
                    claimed.append(timer_record(row))
        return claimed

    def _queue_outbox(self, change: Change, now: datetime) -> None:
        d = self._draft
        for m in change.outbox:
            if m.idempotency_key in d.tables.outbox_keys:
                raise DuplicateKey(f"an outbox message with key {m.idempotency_key!r} exists")
            d.put_message(MessageRow(
                id=d.next_id("outbox"), instance_id=m.instance_id or change.instance_id,
                recipients=stored_json(list(m.recipients)), subject=m.subject, body=m.body,
                template=m.template, urgent=m.urgent, status=m.status.value, attempts=0,
                next_attempt_at=stored_at(now) if m.status is OutboxStatus.PENDING else None,
                last_error=m.last_error, idempotency_key=m.idempotency_key,
                created_at=stored_at(now)))

    # -- timers -----------------------------------------------------------------------------

    def _update_timers(self, timer_ids: Sequence[int], match: Callable[[TimerRow], bool],
                       **values: Unpack[TimerChanges],
                       ) -> list[TimerRow]:
        """Set ``values`` on those of ``timer_ids`` that ``match``; the rows as updated."""
        done = []
        for tid in dict.fromkeys(timer_ids):
            t = self._draft.tables.timers.get(tid)
            if t is not None and match(t):
                new = replace(t, **values)
                self._draft.put_timer(new)
                done.append(new)
        return done

    def extend_claims(self, timer_ids: Sequence[int], owner: str,
                      lease_until: datetime) -> None:
        self._update_timers(timer_ids, lambda t: t.claimed_by == owner and t.status == "pending",
                            claim_expires_at=stored_at(lease_until))

    def take_over_timers(self, timer_ids: Sequence[int], owner: str, lease_until: datetime,
                         now: datetime) -> list[TimerRecord]:
        def free(t: TimerRow) -> bool:
            return t.status == "pending" and (t.claimed_by is None or (
                t.claim_expires_at is not None and t.claim_expires_at < now))

        taken = self._update_timers(timer_ids, free, claimed_by=owner,
                                    claim_expires_at=stored_at(lease_until))
        return [timer_record(t) for t in by_due(taken)]

    def release_timers(self, timer_ids: Sequence[int], owner: str) -> None:
        self._update_timers(timer_ids, lambda t: t.claimed_by == owner and t.status == "pending",
                            claimed_by=None, claim_expires_at=None)

    def take_timer(self, timer_id: int, owner: str, fired_at: datetime, outcome: str) -> bool:
        """Mark a timer this owner holds fired; False if it was cancelled or taken over."""
        t = self._draft.tables.timers.get(timer_id)
        if t is None or t.status != "pending" or t.claimed_by != owner:
            return False
        self._draft.put_timer(replace(t, status="fired", fired_at=stored_at(fired_at),
                                      outcome=outcome, attempts=t.attempts + 1, claimed_by=None,
                                      claim_expires_at=None))
        return True

    def set_outcome(self, timer_id: int, outcome: str, error: str | None = None) -> None:
        self._update_timers([timer_id], lambda t: True, outcome=outcome, last_error=error)

    def timer_failed(self, timer_id: int, owner: str, error: str, retry_at: datetime,
                     give_up: bool) -> None:
        """Count the failed attempt; the lease runs to ``retry_at`` (when another tick may
        try again), or the timer is given up (``failed``)."""
        t = self._draft.tables.timers.get(timer_id)
        if t is None or t.claimed_by != owner:
            return
        new = replace(t, attempts=t.attempts + 1, last_error=error[:2000],
                      claim_expires_at=stored_at(retry_at))
        if give_up:
            new = replace(new, status="failed", outcome="failed", claimed_by=None)
        self._draft.put_timer(new)

    # -- the transaction --------------------------------------------------------------------

    def set_definition_version(self, instance_id: str, version: int) -> None:
        """Move a case to another version of its definition (a migration)."""
        row = self._draft.tables.instances.get(instance_id)
        if row is not None:
            self._draft.put_case(replace(row, definition_version=version))

    def commit(self) -> None:
        self._db.commit(self._draft)
        self._draft = self._db.begin()

    def rollback(self) -> None:
        self._draft = self._db.begin()


__all__ = ["InMemoryUnitOfWork"]
