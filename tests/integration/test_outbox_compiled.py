"""The outbox's claim, case references and bulk settle run as compiled statements on the
driver's cursor (SQLite, and PostgreSQL with ICSFLOW_TEST_PG) and through SQLAlchemy for any
other driver: both ways lease, count, refer and settle the same rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from engine_support import IRO, START_DATA, T0, alert_definition
from sqlalchemy import Engine

from icsflow.storage import outbox as outbox_module
from icsflow.storage.outbox import SqlOutbox
from icsflow.workflow import Engine as Workflow
from icsflow.workflow.instance import OutboxStatus

NOW = datetime(2012, 1, 6, 10, 0, tzinfo=UTC)
LEASE = NOW + timedelta(minutes=5)


@pytest.fixture(params=["driver cursor", "sqlalchemy"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "sqlalchemy":  # a driver the compiled statements do not know
        monkeypatch.setattr(outbox_module, "driver_cursor", lambda conn: None)
    return str(request.param)


def _queue(outbox: SqlOutbox, count: int, *, urgent_every: int = 0,
           instance_id: str | None = None) -> None:
    for n in range(count):
        outbox.enqueue(idempotency_key=f"k{n}", recipients=[f"tm-{n}@example.org"],
                       subject=f"Alert {n}", body="Respond.", template="reminder",
                       urgent=bool(urgent_every) and n % urgent_every == 0,
                       now=NOW + timedelta(seconds=n), instance_id=instance_id)


def test_a_claim_leases_due_rows_in_order_counts_the_attempt_and_names_the_case(
        sql: Engine, path: str) -> None:
    with Workflow.open(db=str(sql.url), definitions=alert_definition()) as case:
        inst = case.start("alert", "R-7", START_DATA, IRO, at=T0)
    outbox = SqlOutbox(sql)
    _queue(outbox, 3, urgent_every=2, instance_id=inst.id)
    later = NOW + timedelta(days=1)
    urgent = outbox.claim(later, "me", LEASE, 10, urgent_only=True, lease_now=NOW)
    assert [(m.idempotency_key, m.attempts, m.ref) for m in urgent] == [
        ("k0", 1, "R-7"), ("k2", 1, "R-7")]
    rest = outbox.claim(later, "other", LEASE, 10, urgent_only=False, lease_now=NOW)
    assert [m.idempotency_key for m in rest] == ["k1"]  # k0 and k2 are leased to "me"
    assert outbox.claim(later, "x", LEASE, 10, urgent_only=False, lease_now=NOW) == []
    gone = LEASE + timedelta(seconds=1)
    again = outbox.claim(later, "x", gone + timedelta(minutes=5), 2, urgent_only=False,
                         lease_now=gone)
    assert [(m.idempotency_key, m.attempts) for m in again] == [("k0", 2), ("k1", 2)]
    # k2 is not due at NOW (queued two seconds later); k0 and k1 are leased to "x".
    assert outbox.claim(NOW, "y", gone + timedelta(minutes=5), 10, urgent_only=False,
                        lease_now=gone) == []


def test_a_bulk_settle_marks_only_rows_still_pending_and_leased_to_the_owner(
        sql: Engine, path: str) -> None:
    outbox = SqlOutbox(sql)
    _queue(outbox, 620)  # more than one IN list of 500
    later = NOW + timedelta(hours=1)
    mine = outbox.claim(later, "me", LEASE, 600, urgent_only=False, lease_now=NOW)
    theirs = outbox.claim(later, "other", LEASE, 600, urgent_only=False, lease_now=NOW)
    assert (len(mine), len(theirs)) == (600, 20)
    outbox.mark_failed(mine[0].id, "me", "a bad address")
    sent_at = NOW + timedelta(minutes=1)
    outbox.mark_sent_many([m.id for m in mine + theirs], "me", sent_at)
    rows = {m.id: m for m in outbox.list()}
    assert rows[mine[0].id].status is OutboxStatus.FAILED  # settled already: left as it was
    assert {rows[m.id].status for m in mine[1:]} == {OutboxStatus.SENT}
    assert {rows[m.id].sent_at for m in mine[1:]} == {sent_at}
    assert {rows[m.id].status for m in theirs} == {OutboxStatus.PENDING}  # not my lease
    assert outbox.counts() == {"sent": 599, "failed": 1, "pending": 20}
    outbox.mark_sent_many([m.id for m in theirs], "other", sent_at)
    assert outbox.counts() == {"sent": 619, "failed": 1}


def test_one_row_is_marked_sent_only_by_the_owner_of_its_lease(sql: Engine, path: str) -> None:
    outbox = SqlOutbox(sql)
    _queue(outbox, 2)
    first, second = outbox.claim(NOW + timedelta(hours=1), "me", LEASE, 2, urgent_only=False,
                                 lease_now=NOW)
    sent_at = NOW + timedelta(minutes=1)
    outbox.mark_sent(first.id, "someone-else", sent_at)
    outbox.mark_sent(second.id, "me", sent_at)
    rows = {m.id: m for m in outbox.list()}
    assert rows[first.id].status is OutboxStatus.PENDING
    assert (rows[second.id].status, rows[second.id].sent_at) == (OutboxStatus.SENT, sent_at)
