"""The case as a transaction wrote it, built from the snapshot it read and the change it
applied, so ``start`` and ``fire`` return it without reading it back.

Values are as the database gives them back (UTC times, JSON data copied through a JSON round
trip) so the returned case equals a later ``get`` (``tests/integration/test_returned_case.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Row

from icsflow.storage.records import timer_info
from icsflow.workflow.instance import HistoryEntry, Instance, JsonValue
from icsflow.workflow.ports import Change, DeadlineRecord, InstanceRecord, Snapshot, TimerRecord


def utc(value: datetime | None) -> datetime | None:
    """An aware time in UTC, as the database gives it back."""
    return value.astimezone(UTC) if value is not None else None


_JSON_SCALARS = (str, int, bool, type(None))


def as_stored(value: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    """A JSON object column's value (case data, a history entry's changes) as the database
    gives it back. A flat object of text keys and
    text, integer, boolean or null values (most case data, every empty one) comes back equal:
    copied without the round trip through JSON text."""
    if type(value) is dict and all(type(k) is str and type(v) in _JSON_SCALARS
                                   for k, v in value.items()):
        return dict(value)
    stored: dict[str, JsonValue] = json.loads(json.dumps(value))
    return stored


_R = TypeVar("_R")


def with_changes(record: _R, **changes: object) -> _R:
    """``dataclasses.replace`` for the frozen records built here, whose fields are all init
    fields (``tests/unit/test_as_stored.py`` checks it): ``replace`` walks the fields one by one
    and cost a third of building a returned case."""
    return type(record)(**{**record.__dict__, **changes})


def written_case(snap: Snapshot | None, change: Change,
                 cancelled_rows: Sequence[Row[Any]]) -> Instance:
    """``to_instance`` of what ``change`` wrote over ``snap`` (None: a new case), built
    straight into the returned case: no intermediate case or timer records."""
    base: InstanceRecord
    if change.new_instance is not None:
        base = n = change.new_instance
        state, row_version, data = n.state, n.row_version, as_stored(n.data)
        created_at = utc(n.created_at) or n.created_at
        started_at = utc(n.started_at) or n.started_at
        closed_at = utc(n.closed_at)
        history: list[HistoryEntry] = []
        deadlines: list[DeadlineRecord] = []
        kept: list[TimerRecord] = []
    else:
        assert snap is not None
        base = old = snap.instance
        state = change.state if change.state is not None else old.state
        data = as_stored(change.data) if change.data is not None else dict(old.data)
        closed_at = utc(change.closed_at) if change.closed_at is not None else old.closed_at
        row_version = old.row_version + 1 if change.bump_version else old.row_version
        created_at, started_at = old.created_at, old.started_at
        history, deadlines = list(snap.history), list(snap.deadlines)
        gone = {r.id for r in cancelled_rows}
        kept = [t for t in snap.timers if t.id not in gone]
    cancelled = tuple((r.name, r.due_at) for r in sorted(cancelled_rows,
                                                         key=lambda r: (r.due_at, r.id))
                      if r.kind == "timer")
    last = len(change.history) - 1
    for k, h in enumerate(change.history):
        history.append(with_changes(h, at=utc(h.at) or h.at,
                                    recorded_at=utc(h.recorded_at) or h.recorded_at,
                                    changes=as_stored(dict(h.changes)),
                                    cancelled_timers=cancelled if k == last else ()))
    for u in change.deadline_updates:
        for k, d in enumerate(deadlines):
            if d.id != u.id or (u.only_if_status and d.info.status not in u.only_if_status):
                continue
            info = d.info
            deadlines[k] = DeadlineRecord(d.id, with_changes(
                info, status=u.status if u.status is not None else info.status,
                met_at=utc(u.met_at) if u.met_at is not None else info.met_at,
                due=u.due if u.due is not None else info.due,
                due_at=u.due_at.astimezone(UTC) if u.due_at is not None else info.due_at))
    infos = [d.info for d in deadlines]
    infos.extend(with_changes(d, due_at=utc(d.due_at) or d.due_at, met_at=utc(d.met_at))
                 for d in change.new_deadlines)
    # The case's timers in due order; new ones have no id yet: they sort after the stored ones
    # due at the same instant, as their ids will.
    timers = [(t.due_at, t.id, timer_info(t, t.due_at)) for t in kept if t.kind == "timer"]
    last_id = max((t.id for t in kept), default=0)
    for k, planned in enumerate(change.new_timers, 1):
        if planned.kind == "timer":
            due = utc(planned.due_at) or planned.due_at
            timers.append((due, last_id + k, timer_info(planned, due)))
    timers.sort(key=lambda x: (x[0], x[1]))
    return Instance(
        id=base.id, definition=base.definition, version=base.definition_version, ref=base.ref,
        state=state, data=data, deadline_list=tuple(infos),
        timers=tuple(info for _, _, info in timers), history=tuple(history),
        row_version=row_version, created_at=created_at, closed_at=closed_at, child=base.child,
        family=base.family, started_at=started_at)


__all__ = ["utc", "as_stored", "with_changes", "written_case"]
