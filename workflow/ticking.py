"""Ticking: claim the timers due by ``now``, fire them in due order in batches, renew leases.

Timers are rows. A tick claims a batch of due ones under a lease (so several workers share the
work and a dead worker's claims come back when the lease runs out), reads their cases at once,
and fires them in due order, each recorded at its own due time: timers a firing creates that
are already due join the same tick, so automatic escalations cascade with the dates they would
have had live. A batch is one transaction, optimistically; if any firing in it fails, the batch
is rolled back and redone one firing per transaction, where a failure is recorded on its timer
(retried with the ``Policy``'s backoff, then given up) and the others go on.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import fields, replace
from datetime import datetime, timedelta

from icsflow.workflow import limits
from icsflow.workflow.clock import Clock
from icsflow.workflow.errors import ConcurrencyConflict, WorkflowError
from icsflow.workflow.gc_pause import collection_paused
from icsflow.workflow.instance import TickResult
from icsflow.workflow.logging import get_logger
from icsflow.workflow.planning import Planner
from icsflow.workflow.policy import Policy
from icsflow.workflow.ports import Snapshot, Store, TimerRecord, UnitOfWork, default_owner
from icsflow.workflow.propagation import propagate

log = get_logger("icsflow.engine")

_Heap = list[tuple[datetime, int, TimerRecord]]


class Ticker:
    """Fires one store's due timers with one planner; ``pause_gc``: pause the cycle collector
    while a batch is worked through (the daemon asks for it; an embedding program never gets
    its collector turned off behind its back)."""

    def __init__(self, store: Store, planner: Planner, clock: Clock, *,
                 policy: Policy | None = None, pause_gc: bool = False) -> None:
        self.store = store
        self.planner = planner
        self.clock = clock
        self.policy = policy or Policy()
        self.pause_gc = pause_gc

    @property
    def lease(self) -> timedelta:
        return self.policy.timer_lease

    def tick(self, now: datetime | None = None, *, batch_size: int = 500,
             commit_every: int = 500, owner: str | None = None,
             should_stop: Callable[[], bool] | None = None) -> TickResult:
        """Fire every timer due by ``now`` exactly once, in due order, each recorded at its own
        due time; timers a firing creates that are already due fire in the same tick.

        Within one case timers fire in due order whoever claims them: a timer whose case has an
        earlier pending timer leased to another worker waits (it is not claimed, or is given
        back), and an earlier one whose lease ran out is taken over and fired first.

        ``should_stop`` (a stopping daemon's flag) is asked before each claim: once it says
        yes, nothing more is claimed, what this tick holds is fired, and the tick ends, so a
        long catch-up stops within one batch instead of after the last due timer; the rest
        stays pending for the next tick, whoever runs it."""
        now = now or self.clock.now()
        limits.check_date(now, "now")
        owner = owner or default_owner()
        result = TickResult()
        heap: _Heap = []
        stalled = 0
        while True:
            stopping = should_stop is not None and should_stop()
            claimed = [] if stopping else self.store.claim_due_timers(
                now, owner, self.clock.now() + self.lease, batch_size, clock_now=self.clock.now())
            for t in claimed:
                heapq.heappush(heap, (t.due_at, t.id, t))
            if not heap:
                break
            before = _progress(result)
            horizon = claimed[-1].due_at if len(claimed) >= batch_size else now
            paused = collection_paused() if self.pause_gc else nullcontext()
            with paused, self.store.unit_of_work() as uow:
                # Read the batch's cases up front (four queries, not four per firing). A cached
                # snapshot is used once; a stale one fails the version check and is re-read.
                cache = uow.load_many([t.instance_id for t in claimed]) if len(claimed) > 1 \
                    else {}
                renewed = self.clock.now()
                while heap and heap[0][0] <= horizon:
                    if commit_every > 1:
                        self._fire_batch(uow, heap, horizon, commit_every, now, owner, result,
                                         cache)
                    else:
                        self._fire_one_by_one(uow, heap, horizon, 1, now, owner, result, cache)
                    if heap and self.clock.now() - renewed >= self.lease / 3:
                        renewed = self._renew(uow, heap, owner)
            # Claims stop when nothing is left to claim (a firing may free a later timer of
            # its case); a round where every claimed timer had to wait ends the tick.
            stalled = stalled + 1 if _progress(result) == before else 0
            if stalled >= 2:
                break
        if result.fired or result.failed or result.breached:
            log.info("timers_fired", **result.as_dict())
        return result

    def _renew(self, uow: UnitOfWork, heap: _Heap, owner: str) -> datetime:
        """Renew the lease of the timers this tick still holds, so none is taken over while a
        long tick works on (a dead worker's leases are not renewed and run out)."""
        renewed = self.clock.now()
        uow.extend_claims([t.id for _, _, t in heap], owner, renewed + self.lease)
        uow.commit()
        return renewed

    def _fire_batch(self, uow: UnitOfWork, heap: _Heap, horizon: datetime, size: int,
                    now: datetime, owner: str, result: TickResult,
                    cache: dict[str, Snapshot]) -> None:
        """Fire up to ``size`` due timers from ``heap`` in one transaction, optimistically: no
        savepoint per firing. If any firing (or the commit) fails, roll the whole transaction
        back, put the heap, the counts and the cached snapshots back as they were before it, and
        redo the same firings one per transaction, where a failure is recorded per timer."""
        saved_heap = list(heap)  # a copy of a heap is still a heap
        saved_result = replace(result, extra=dict(result.extra))
        fired: list[str] = []  # instance ids whose cached snapshot this batch used
        try:
            _deferring(uow, True)
            k = 0
            while k < size and heap and heap[0][0] <= horizon:
                _, _, timer = heapq.heappop(heap)
                fired.append(timer.instance_id)
                for new in self._fire_once(uow, timer, now, owner, result, cache):
                    heapq.heappush(heap, (new.due_at, new.id, new))
                k += 1
            uow.commit()
            return
        except Exception as exc:  # noqa: BLE001 - redo the batch one firing per transaction
            uow.rollback()
            log.info("timer_batch_redo", firings=len(fired), error=type(exc).__name__)
        finally:
            _deferring(uow, False)
        # Nothing of the attempt survives: timers it created (cascades) are gone from the
        # database, so they leave the heap too; the counts go back; snapshots it used (popped)
        # or that it may have read around are read again. The claims were committed by
        # claim_due_timers in their own transaction, so the rollback kept them: renew the
        # lease so that no other worker takes them while the batch is redone.
        heap[:] = saved_heap
        _restore(result, saved_result)
        for iid in fired:
            cache.pop(iid, None)
        batch = heapq.nsmallest(size, heap)
        uow.extend_claims([t.id for _, _, t in heap], owner, self.clock.now() + self.lease)
        cache.update(uow.load_many(list(dict.fromkeys(t.instance_id for _, _, t in batch))))
        uow.commit()
        self._fire_one_by_one(uow, heap, horizon, size, now, owner, result, cache)

    def _fire_one_by_one(self, uow: UnitOfWork, heap: _Heap, horizon: datetime, size: int,
                         now: datetime, owner: str, result: TickResult,
                         cache: dict[str, Snapshot]) -> None:
        """Fire up to ``size`` due timers from ``heap``, committing each firing."""
        k = 0
        while k < size and heap and heap[0][0] <= horizon:
            _, _, timer = heapq.heappop(heap)
            for new in self._fire_timer(uow, timer, now, owner, result, cache):
                heapq.heappush(heap, (new.due_at, new.id, new))
            uow.commit()
            k += 1

    def _fire_once(self, uow: UnitOfWork, t: TimerRecord, now: datetime, owner: str,
                   result: TickResult, cache: dict[str, Snapshot] | None = None,
                   ) -> list[TimerRecord]:
        """One firing's reads and writes, in the caller's transaction; raises on any failure
        (the caller rolls back). Returns the timers to push on the tick's heap: the new timers
        already due by ``now`` (pre-claimed), or an earlier timer of the case taken over from a
        dead worker with ``t`` itself (fired after it)."""
        cached = cache.pop(t.instance_id, None) if cache is not None else None
        real_now = self.clock.now()
        snap = cached if cached is not None else uow.load(t.instance_id)
        earlier = [x for x in snap.timers if x.id != t.id and (x.due_at, x.id) < (t.due_at, t.id)]
        if earlier:
            return self._before(uow, t, earlier, owner, real_now, result)
        if not uow.take_timer(t.id, owner, real_now, "fired"):
            return []
        snap = Snapshot(snap.instance, snap.history, snap.deadlines,
                        tuple(x for x in snap.timers if x.id != t.id))
        change, outcome = self.planner.timer(snap, t, real_now, lookups=uow)
        change.claim_new_timers_before = now
        change.recorded_at = real_now
        new = uow.apply(change, owner=owner, lease_until=real_now + self.lease)
        if change.signals:
            new.extend(propagate(uow, self.planner, change, t.due_at, real_now, cache=cache,
                                 owner=owner, lease_until=real_now + self.lease))
        if outcome != "fired":
            uow.set_outcome(t.id, outcome)
        if outcome == "breached":
            result.breached += 1
        elif outcome == "skipped":
            result.skipped += 1
        else:
            result.fired += 1
        result.queued += len(change.outbox)
        return new

    def _before(self, uow: UnitOfWork, t: TimerRecord, earlier: Sequence[TimerRecord],
                owner: str, real_now: datetime, result: TickResult) -> list[TimerRecord]:
        """``t``'s case has pending timers due before it: take over those whose lease ran out
        (a dead worker's) to fire them first; if any is still leased, ``t`` waits, given back."""
        free = [x.id for x in earlier
                if x.claimed_by is None or x.claim_expires_at is None
                or x.claim_expires_at < real_now]
        taken = uow.take_over_timers(free, owner, real_now + self.lease, real_now) \
            if free else []
        if len(taken) == len(earlier):
            result.extra["taken_over"] = result.extra.get("taken_over", 0) + len(taken)
            return [*taken, t]
        uow.release_timers([t.id], owner)
        result.extra["waited"] = result.extra.get("waited", 0) + 1
        log.info("timer_waits", timer_id=t.id, instance_id=t.instance_id, timer=t.name,
                 earlier=len(earlier) - len(taken))
        return taken

    def _fire_timer(self, uow: UnitOfWork, t: TimerRecord, now: datetime, owner: str,
                    result: TickResult, cache: dict[str, Snapshot] | None = None,
                    ) -> list[TimerRecord]:
        """One firing in its own transaction (the caller commits after it): retried on a
        conflict, and on an error recorded on the timer (backoff, then ``failed``)."""
        error = ""
        for _attempt in range(3):
            try:
                with _undo_on_error(uow):
                    return self._fire_once(uow, t, now, owner, result, cache)
            except ConcurrencyConflict as exc:
                error = str(exc)
                continue
            except WorkflowError as exc:
                error = str(exc)
                break
            except Exception as exc:  # noqa: BLE001 - one bad firing must not stop the others
                if _is_db_contention(exc):
                    error = str(exc).splitlines()[0]
                    continue
                error = f"{type(exc).__name__}: {exc}"
                break
        else:
            result.conflicts += 1
            uow.timer_failed(t.id, owner, error,
                             self.clock.now() + self.policy.conflicts.delay(1), give_up=False)
            return []
        attempts = t.attempts + 1
        give_up = self.policy.timers.gives_up(attempts)
        uow.timer_failed(t.id, owner, error,
                         self.clock.now() + self.policy.timers.delay(attempts), give_up)
        result.failed += 1
        log.warning("timer_failed", timer_id=t.id, instance_id=t.instance_id, timer=t.name,
                    error=error, gave_up=give_up)
        return []


def _progress(result: TickResult) -> tuple[int, ...]:
    """What a tick has done so far: a round that changes none of it made no progress."""
    return (result.fired, result.breached, result.skipped, result.failed, result.conflicts,
            result.extra.get("taken_over", 0))


def _restore(result: TickResult, saved: TickResult) -> None:
    for f in fields(result):
        setattr(result, f.name, getattr(saved, f.name))


def _deferring(uow: UnitOfWork, on: bool) -> None:
    """A store that can hold a batch's writes until the batch ends (one ``executemany`` per
    statement, checks at the end, still in the transaction) is told when it may; the batch is
    redone one firing at a time, not deferring, if any check fails."""
    if hasattr(uow, "deferring"):
        setattr(uow, "deferring", on)  # noqa: B010 - an optional capability, not in the port


@contextmanager
def _undo_on_error(uow: UnitOfWork) -> Iterator[None]:
    """Without a savepoint (one firing per transaction): roll the transaction back on error."""
    try:
        yield
    except BaseException:
        uow.rollback()
        raise


def _is_db_contention(exc: BaseException) -> bool:
    """Deadlock or serialization failure (PostgreSQL SQLSTATE 40P01 / 40001): retry."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None),
                                                       "sqlstate", None)
    return code in ("40001", "40P01")


__all__ = ["Ticker"]
