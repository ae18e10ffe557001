"""The in-memory store: ``workflow.ports.Store`` with no database, for tests and embedders.

``Engine(InMemoryStore(), definitions, clock=FakeClock(...))`` starts, fires, ticks and reads
as on SQLite: the same cases and histories, the same timers claimed under leases in due order,
the same outbox rows for a dispatcher (``store.outbox``), the same refusals. It answers every
read the SQL store answers with the same filters and the same order (``storage.repository``,
``storage.outbox``); a test that passes on it tests the engine, not a simplification of it
(the engine contract suite runs on it as on SQLite and PostgreSQL). What it does not have is
what only a database has: durability past the process, several processes sharing it, SQL.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

from icsflow.workflow.errors import ConcurrencyConflict, DefinitionError, InstanceNotFound
from icsflow.workflow.instance import Instance
from icsflow.workflow.ports import Change, Snapshot, TimerRecord
from icsflow.workflow.testing._outbox import InMemoryOutbox
from icsflow.workflow.testing._tables import (
    BaselineRow,
    CaseRow,
    Database,
    DefinitionRow,
    Tables,
    TimerRow,
    by_due,
    read_json,
    read_object,
    snapshot,
    stored_at,
    stored_json,
    timer_record,
    to_instance,
)
from icsflow.workflow.testing._unit_of_work import InMemoryUnitOfWork

_JSON_COLUMNS = {"data", "changes", "cancelled_timers", "recipients", "settings"}


def _utcnow() -> datetime:
    return datetime.now(UTC)


class InMemoryStore:
    """The engine's store in this process's memory; thread-safe (one writer at a time, as
    SQLite). ``close`` keeps the data: an engine opened again on the same store sees it, as
    one opened again on the same database file does."""

    def __init__(self) -> None:
        self._db = Database()
        self.outbox = InMemoryOutbox(self._db)
        self.changes = InMemoryChangeStore(self)  # migrate and re-project

    @contextmanager
    def unit_of_work(self) -> Iterator[InMemoryUnitOfWork]:
        """One transaction: committed when the block ends, dropped whole on an error."""
        with self._db.lock:
            uow = InMemoryUnitOfWork(self._db)
            try:
                yield uow
            except BaseException:
                uow.rollback()
                raise
            uow.commit()

    # -- reads (the last committed state) ------------------------------------------------

    def _cases(self, rows: Sequence[CaseRow], tables: Tables) -> builtins.list[Instance]:
        return [to_instance(snapshot(tables, r.id)) for r in rows]

    def get(self, instance_id: str) -> Instance:
        tables = self._db.tables
        if instance_id not in tables.instances:
            raise InstanceNotFound(instance_id)
        return to_instance(snapshot(tables, instance_id))

    def find(self, ref: str) -> builtins.list[Instance]:
        """Cases with this reference, oldest first (ties in the order they were written)."""
        tables = self._db.tables
        rows = sorted((r for r in tables.instances.values() if r.ref == ref),
                      key=lambda r: r.created_at)
        return self._cases(rows, tables)

    def list(self, *, definition: str | None = None, state: str | None = None,
             overdue_at: datetime | None = None, open_only: bool = False,
             child: str | None = None, family: str | None = None) -> builtins.list[Instance]:
        """Cases, filtered as the SQL store filters them, by creation time then id;
        ``overdue_at``: with a live or breached deadline not met, due by then."""
        tables = self._db.tables

        def wanted(r: CaseRow) -> bool:
            return ((child is None or r.child == child)
                    and (family is None or r.family == family)
                    and (definition is None or r.definition == definition)
                    and (state is None or r.state == state)
                    and (not open_only or r.closed_at is None)
                    and (overdue_at is None or self._overdue(tables, r.id, overdue_at)))

        rows = sorted(filter(wanted, tables.instances.values()),
                      key=lambda r: (r.created_at, r.id))
        return self._cases(rows, tables)

    @staticmethod
    def _overdue(tables: Tables, case_id: str, at: datetime) -> bool:
        ids = tables.case_rows[case_id].deadlines if case_id in tables.case_rows else ()
        return any(d.met_at is None and d.status in ("live", "breached") and d.due_at <= at
                   for d in (tables.deadlines[i] for i in ids))

    # -- timers -------------------------------------------------------------------------

    def claim_due_timers(self, now: datetime, owner: str, lease_until: datetime,
                         limit: int, clock_now: datetime | None = None,
                         ) -> builtins.list[TimerRecord]:
        """Lease up to ``limit`` due pending timers to ``owner``, in due order: free ones
        (nobody holds them, or the lease ran out by ``clock_now``) whose case has no earlier
        pending timer under a live lease (within a case, timers fire in due order)."""
        clock_now = clock_now or _utcnow()
        with self._db.atomic() as draft:
            pending = [t for t in draft.tables.timers.values() if t.status == "pending"]
            held: dict[str, list[TimerRow]] = {}
            for t in pending:
                if t.claimed_by is not None and t.claim_expires_at is not None \
                        and t.claim_expires_at >= clock_now:
                    held.setdefault(t.instance_id, []).append(t)

            def claimable(t: TimerRow) -> bool:
                free = t.claimed_by is None or (t.claim_expires_at is not None
                                                and t.claim_expires_at < clock_now)
                return t.due_at <= now and free and not any(
                    (e.due_at, e.id) < (t.due_at, t.id) for e in held.get(t.instance_id, ()))

            chosen = by_due([t for t in pending if claimable(t)])[:limit]
            lease = stored_at(lease_until)
            claimed = [replace(t, claimed_by=owner, claim_expires_at=lease) for t in chosen]
            for t in claimed:
                draft.put_timer(t)
        return [timer_record(t) for t in claimed]

    def release_timers(self, ids: Sequence[int], owner: str) -> None:
        if not ids:
            return
        with self._db.lock:
            uow = InMemoryUnitOfWork(self._db)
            uow.release_timers(ids, owner)
            uow.commit()

    def timer_name(self, timer_id: int) -> str | None:
        row = self._db.tables.timers.get(timer_id)
        return None if row is None else str(row.name)

    def index_counted_fields(self, fields: Sequence[str]) -> None:
        """Nothing to index: counting open cases reads them all, which in memory is cheap."""

    # -- definitions ----------------------------------------------------------------------

    def kept_definitions(self) -> builtins.list[tuple[str, int, str]]:
        """Every registered (name, version, text) whose text was kept."""
        return [(r.name, r.version, r.source_text) for r in self._db.tables.definitions.values()
                if r.source_text is not None]

    def register_definition(self, name: str, version: int, content_hash: str,
                            source_text: str | None = None) -> None:
        """Record a definition version when first used; refuse (``DefinitionError``) a
        changed text under a version already used, and keep a text first seen now."""
        with self._db.atomic() as draft:
            row = draft.tables.definitions.get((name, version))
            if row is None:
                draft.put_definition(DefinitionRow(name, version, content_hash, _utcnow(),
                                                   source_text))
                return
            if row.content_hash != content_hash and content_hash:
                raise DefinitionError([
                    f"definition {name!r} version {version} has changed since it was first "
                    f"used (stored content hash {row.content_hash[:12]}, file "
                    f"{content_hash[:12]}): cases keep the version they started on, so bump "
                    f"`version:` to {version + 1} (or higher) to publish a change"])
            if source_text is not None and row.source_text is None:
                draft.put_definition(replace(row, source_text=source_text))

    def close(self) -> None:
        """Nothing to release; the data stays for the next engine on this store."""

    def rows(self, table: str) -> builtins.list[dict[str, Any]]:
        """Every committed row of ``table`` (``instances``, ``history``, ``deadlines``,
        ``timers``, ``outbox``, ``definitions``), column -> value as the SQL table has them
        (JSON columns decoded), in key order: for a test that proves what was written, or
        that a refusal wrote nothing."""
        found: dict[Any, Any] = getattr(self._db.tables, table)
        return [{k: read_json(v) if k in _JSON_COLUMNS and isinstance(v, str) else v
                 for k, v in asdict(found[key]).items()} for key in sorted(found)]


class InMemoryChangeStore:
    """``workflow.changes.store.ChangeStore`` on the in-memory store: moving running cases
    (``Engine.migrate``, ``Engine.reproject``), one transaction per case."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    def open_snapshots(self, definition: str | None = None) -> Sequence[Snapshot]:
        """Open cases (of ``definition``), by case reference then id."""
        tables = self._store._db.tables
        rows = sorted((r for r in tables.instances.values() if r.closed_at is None
                       and (definition is None or r.definition == definition)),
                      key=lambda r: (r.ref, r.id))
        return [snapshot(tables, r.id) for r in rows]

    def apply(self, change: Change, *, definition_version: int | None = None) -> None:
        with self._store.unit_of_work() as uow:
            uow.apply(change)
            if definition_version is not None:
                uow.set_definition_version(change.instance_id, definition_version)

    def apply_each(self, changes: Sequence[Change], *,
                   definition_version: int | None = None) -> list[bool]:
        """Each change in its own transaction: False where the case moved meanwhile."""
        done: list[bool] = []
        for change in changes:
            try:
                self.apply(change, definition_version=definition_version)
            except ConcurrencyConflict:
                done.append(False)
                continue
            done.append(True)
        return done

    def calendar_baseline(self) -> tuple[str, dict[str, Any], datetime] | None:
        rows = self._store._db.tables.baselines
        if not rows:
            return None
        last = rows[max(rows)]
        return last.fingerprint, read_object(last.settings), last.recorded_at

    def save_calendar_baseline(self, fingerprint: str, settings: Mapping[str, Any],
                               at: datetime) -> None:
        with self._store._db.atomic() as draft:
            draft.add_baseline(BaselineRow(draft.next_id("baselines"), fingerprint,
                                           stored_json(dict(settings)), stored_at(at)))


__all__ = ["InMemoryStore", "InMemoryChangeStore"]
