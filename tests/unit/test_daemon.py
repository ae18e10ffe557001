"""Daemon pieces: offset clock, week starts, the SQL outbox port, digests once, log scrubbing."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import structlog

from icsflow.storage.outbox import SqlOutbox
from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.clock import FakeClock
from icsflow.workflow.config import Config, DigestConfig, calendar_from
from icsflow.workflow.daemon import (
    OffsetClock,
    db_engine,
    is_first_working_day_of_week,
    office_hours_from,
    queue_digests,
)
from icsflow.workflow.logging import configure_logging, get_logger

NOW = datetime(2012, 6, 6, 9, 0, tzinfo=UTC)  # Wednesday after the Jubilee holidays


def test_an_offset_clock_runs_on_from_the_given_moment() -> None:
    base = FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
    clock = OffsetClock(NOW, base)
    assert clock.now() == NOW
    base.advance(timedelta(seconds=5))
    assert clock.now() == NOW + timedelta(seconds=5)


def test_the_first_working_day_of_a_week_after_a_bank_holiday_monday() -> None:
    cal = WorkingCalendar()
    assert is_first_working_day_of_week(cal, date(2012, 6, 6))  # Mon and Tue were holidays
    assert not is_first_working_day_of_week(cal, date(2012, 6, 7))
    assert is_first_working_day_of_week(cal, date(2012, 6, 11))


@pytest.fixture
def sql(tmp_path: Path):  # type: ignore[no-untyped-def]
    from icsflow.storage.db import ensure_schema

    engine = db_engine(Config(database_url=f"sqlite:///{tmp_path / 't.db'}"))
    ensure_schema(engine)
    yield engine
    engine.dispose()


def test_enqueue_is_idempotent_per_key(sql) -> None:  # type: ignore[no-untyped-def]
    outbox = SqlOutbox(sql)
    args = dict(recipients=["a@example.org"], subject="s", body="b", template="t",
                urgent=False, now=NOW)
    assert outbox.enqueue(idempotency_key="k", **args)  # type: ignore[arg-type]
    assert not outbox.enqueue(idempotency_key="k", **args)  # type: ignore[arg-type]
    assert len(outbox.list()) == 1


def test_claims_take_only_urgent_rows_when_asked_and_count_attempts(sql) -> None:  # type: ignore[no-untyped-def]
    outbox = SqlOutbox(sql)
    for key, urgent in (("a", False), ("b", True)):
        outbox.enqueue(idempotency_key=key, recipients=["a@example.org"], subject="s",
                       body="b", template="t", urgent=urgent, now=NOW)
    lease = NOW + timedelta(minutes=5)
    claimed = outbox.claim(NOW, "me", lease, 10, urgent_only=True, lease_now=NOW)
    assert [(c.idempotency_key, c.attempts) for c in claimed] == [("b", 1)]
    assert outbox.claim(NOW, "other", lease, 10, urgent_only=False, lease_now=NOW)[0].attempts == 1
    # A lease held by another owner is skipped until it runs out.
    assert outbox.claim(NOW, "x", lease, 10, urgent_only=False, lease_now=NOW) == []
    later = lease + timedelta(seconds=1)
    assert len(outbox.claim(NOW, "x", later, 10, urgent_only=False, lease_now=later)) == 2
    outbox.release([1, 2], "x")
    assert {m.attempts for m in outbox.list()} == {1}


def test_settling_needs_the_claim_and_rows_read_back_with_their_case_ref(sql) -> None:  # type: ignore[no-untyped-def]
    from icsflow.workflow import Actor, Engine
    from icsflow.workflow.instance import OutboxStatus

    engine = Engine.open(db=str(sql.url))
    inst = engine.start("initial_review", "R-7", {"looked_after_on": "2012-05-28",
                                                  "team_manager_email": "tm@example.org"},
                        Actor("sw", "social_worker"), at=datetime(2012, 5, 28, 9, tzinfo=UTC))
    engine.close()
    outbox = SqlOutbox(sql)
    outbox.enqueue(idempotency_key="x", recipients=["a@example.org"], subject="s", body="b",
                   template="t", urgent=True, now=NOW)
    outbox.enqueue(idempotency_key="y", recipients=["a@example.org"], subject="s", body="b",
                   template="t", urgent=False, now=NOW, instance_id=inst.id)
    lease = NOW + timedelta(days=3650)
    claimed = outbox.claim(lease, "me", lease, 100, urgent_only=False, lease_now=NOW)
    by_key = {m.idempotency_key: m for m in claimed}
    assert by_key["x"].ref is None and by_key["x"].attempts == 1
    case_rows = [m for m in claimed if m.instance_id == inst.id]
    assert [m.ref for m in case_rows] == ["R-7"]
    # Only the owner of the claim settles a row.
    outbox.mark_sent(by_key["x"].id, "someone-else", NOW)
    assert outbox.get(by_key["x"].id).status is OutboxStatus.PENDING  # type: ignore[union-attr]
    outbox.mark_sent(by_key["x"].id, "me", NOW)
    sent = outbox.get(by_key["x"].id)
    assert sent is not None and sent.status is OutboxStatus.SENT and sent.sent_at == NOW
    assert outbox.get(10_000) is None
    assert [m.idempotency_key for m in outbox.list("sent")] == ["x"]
    assert {m.ref for m in outbox.list(instance_id=inst.id)} == {"R-7"}
    assert outbox.counts() == {"sent": 1, "pending": 1}


def test_digests_are_queued_once_per_role_per_day(sql) -> None:  # type: ignore[no-untyped-def]
    config = Config(directory={"iro_service_manager": ("ism@example.org",),
                               "head_of_service": ("hos@example.org",)},
                    digest=DigestConfig(allocation_enabled=True))
    cal = calendar_from(config)
    hours = office_hours_from(config, cal)
    # Nothing waits for allocation: two digests and no empty allocation list.
    assert queue_digests(sql, config, cal, hours, NOW) == 2
    assert queue_digests(sql, config, cal, hours, NOW + timedelta(hours=1)) == 0
    night = datetime(2012, 6, 7, 22, 0, tzinfo=UTC)
    assert queue_digests(sql, config, cal, hours, night) == 0
    keys = sorted(m.template for m in SqlOutbox(sql).list())
    assert keys == ["daily_digest", "daily_digest"]


def test_the_weekly_allocation_list_names_the_reviews_waiting(sql) -> None:  # type: ignore[no-untyped-def]
    from icsflow.workflow import Actor, Engine

    engine = Engine.open(db=str(sql.url))
    inst = engine.start("initial_review", "R-9", {"looked_after_on": "2012-05-28",
                                                  "team_manager_email": "tm@example.org"},
                        Actor("sw", "social_worker"), at=datetime(2012, 5, 28, 9, tzinfo=UTC))
    engine.fire(inst.id, "request_review", Actor("sw", "social_worker"),
                at=datetime(2012, 5, 30, 9, tzinfo=UTC))
    engine.close()
    config = Config(directory={"iro_service_manager": ("ism@example.org",)},
                    digest=DigestConfig(enabled=False, allocation_enabled=True))
    cal = calendar_from(config)
    hours = office_hours_from(config, cal)
    # The Jubilee week: Monday and Tuesday are bank holidays, so Wednesday starts the week.
    assert queue_digests(sql, config, cal, hours, NOW) == 1
    assert queue_digests(sql, config, cal, hours, NOW + timedelta(days=1)) == 0
    monday = datetime(2012, 6, 11, 9, 0, tzinfo=UTC)
    assert queue_digests(sql, config, cal, hours, monday) == 1
    assert queue_digests(sql, config, cal, hours, monday + timedelta(hours=2)) == 0
    rows = SqlOutbox(sql).list()
    assert [m.template for m in rows] == ["allocation_list", "allocation_list"]
    assert rows[0].recipients == ("ism@example.org",)
    assert rows[0].subject == "icsflow: 1 review waiting for IRO allocation"


def test_log_lines_are_json_without_addresses_or_subjects() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream, json=True)
    get_logger("icsflow.dispatch").info("email_sent", outbox_id=3, recipients=["a@example.org"],
                         subject="Child X", reason="refused a@example.org",
                         message_id="<outbox-3.ab@icsflow>")
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["event"] == "email_sent" and line["outbox_id"] == 3
    assert "recipients" not in line and "subject" not in line
    assert line["reason"] == "refused [address]"
    assert line["message_id"] == "<outbox-3.ab@icsflow>"
    assert line["timestamp"].endswith("Z")
    structlog.reset_defaults()


def test_the_allocation_email_carries_review_due_dates_and_caseloads(sql) -> None:  # type: ignore[no-untyped-def]
    from icsflow.workflow import Actor, Engine

    engine = Engine.open(db=str(sql.url))
    inst = engine.start("initial_review", "R-9", {"looked_after_on": "2012-05-28",
                                                  "team_manager_email": "tm@example.org"},
                        Actor("sw", "social_worker"), at=datetime(2012, 5, 28, 9, tzinfo=UTC))
    engine.fire(inst.id, "request_review", Actor("sw", "social_worker"),
                at=datetime(2012, 5, 30, 9, tzinfo=UTC))
    due = engine.get(inst.id).deadlines["review_due"]
    config = Config(directory={"iro_service_manager": ("ism@example.org",)},
                    digest=DigestConfig(enabled=False, allocation_enabled=True,
                                        allocation_weekday="thursday"))
    cal = calendar_from(config)
    hours = office_hours_from(config, cal)
    assert queue_digests(sql, config, cal, hours, NOW,
                         open_cases=lambda: engine.list_cases(open_only=True)) == 1
    engine.close()
    [row] = SqlOutbox(sql).list()
    assert "allocation meeting on Thursday" in row.body
    assert "R-9" in row.body and f"review due {due.isoformat()}" in row.body
    assert "IRO caseloads (band 50-70)" in row.body


def test_the_daily_digest_reads_labels_and_links_each_case_and_the_today_page(sql) -> None:  # type: ignore[no-untyped-def]
    """Issue 28, item 5: the digest names each case by reference in the process's words and
    links to its page and to the page it summarises (Today) when web.base_url is set."""
    from icsflow.workflow import Actor, Engine
    from icsflow.workflow.config import WebConfig

    engine = Engine.open(db=str(sql.url))
    inst = engine.start("initial_review", "R-9", {"looked_after_on": "2012-05-01",
                                                  "team_manager_email": "tm@example.org"},
                        Actor("sw", "social_worker"), at=datetime(2012, 5, 1, 9, tzinfo=UTC))
    engine.close()
    config = Config(directory={"iro_service_manager": ("ism@example.org",)},
                    digest=DigestConfig(roles=("iro_service_manager",),
                                        allocation_enabled=False),
                    web=WebConfig(base_url="https://icsflow.council.example"))
    cal = calendar_from(config)
    assert queue_digests(sql, config, cal, office_hours_from(config, cal), NOW) == 1
    [digest] = SqlOutbox(sql).list()
    assert digest.subject.startswith("icsflow daily digest for Wednesday 6 June 2012: ")
    assert '- Case R-9, Looked-after review (initial review and the review cycle), at ' \
           '"Review to request": Request due, was due' in digest.body
    assert f"  https://icsflow.council.example/cases/{inst.id}" in digest.body
    assert "Today's page: https://icsflow.council.example/" in digest.body
    assert "request_due" not in digest.body and "initial_review" not in digest.body
