"""Signals between one child's cases, applied in the transaction of the change that sent them.

A transition (or a start) may tell the child's other cases something ("looked after", "plan
ended"); the processes that hear it start a case or fire an event as the system. Planning says
what each reaction does (``Planner.react``); this module reads the child's open cases, applies
each reaction's change in the caller's unit of work and follows the signals those send in
turn, so a child's processes never disagree after a commit.
"""

from __future__ import annotations

from datetime import datetime

from icsflow.workflow.errors import DefinitionError
from icsflow.workflow.planning import Planner
from icsflow.workflow.ports import Change, Snapshot, TimerRecord, UnitOfWork

MAX_DEPTH = 8  # reactions that send signals in turn; validation refuses loops, this is a guard


def propagate(uow: UnitOfWork, planner: Planner, change: Change, at: datetime, now: datetime,
              *, cache: dict[str, Snapshot] | None = None, owner: str | None = None,
              lease_until: datetime | None = None, depth: int = 0) -> list[TimerRecord]:
    """Apply, in ``uow``, what the child's other cases do on hearing the signals ``change``
    sends; returns the timers the writes pre-claimed (for a tick). Each reaction's history row
    names its cause. ``cache``: a tick's read-ahead snapshots, dropped for cases changed here."""
    origin = change.origin
    if not change.signals or origin is None or origin.child is None:
        return []
    if depth >= MAX_DEPTH:
        raise DefinitionError([f"signals from {origin.definition} case {origin.id} set off "
                               f"more than {MAX_DEPTH} reactions in a row; a signal loop?"])
    claimed: list[TimerRecord] = []
    for signal in change.signals:
        for defn, reaction in planner.hearing(signal):
            snaps = uow.load_child(origin.child)
            for sub in planner.react(defn, reaction, signal, origin, snaps, at=at, now=now,
                                     lookups=uow):
                sub.claim_new_timers_before = change.claim_new_timers_before
                claimed.extend(uow.apply(sub, owner=owner, lease_until=lease_until))
                if cache is not None:
                    cache.pop(sub.instance_id, None)
                claimed.extend(propagate(uow, planner, sub, at, now, cache=cache, owner=owner,
                                         lease_until=lease_until, depth=depth + 1))
    return claimed


__all__ = ["MAX_DEPTH", "propagate"]
