"""`outbox retry` addresses a dead letter from today's directory and case data."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from icsflow.workflow import Actor, Engine
from icsflow.workflow.config import Config
from icsflow.workflow.daemon.readdress import Unresolvable, current_recipients
from icsflow.workflow.instance import OutboxStatus
from icsflow.workflow.ports import OutboxMessage

ROOT = Path(__file__).resolve().parents[2]
ALERT = ROOT / "definitions" / "examples" / "alert_auto_escalation.yaml"  # escalates by itself
NOW = datetime(2012, 1, 10, tzinfo=UTC)


def row(key: str, recipients: tuple[str, ...] = (), instance_id: str | None = None,
        template: str = "t") -> OutboxMessage:
    return OutboxMessage(id=1, idempotency_key=key, recipients=recipients, subject="s",
                         body="b", template=template, urgent=False, status=OutboxStatus.FAILED,
                         attempts=1, created_at=NOW, instance_id=instance_id)


def test_an_admin_notice_and_a_digest_go_to_todays_configuration() -> None:
    config = Config(admin_address="admin@example.org",
                    directory={"head_of_service": ("hos@example.org",)})
    assert current_recipients(row("x:v2:n0:t:admin"), config, None) == ("admin@example.org",)
    assert current_recipients(row("digest:head_of_service:2012-01-10"), config, None) == (
        "hos@example.org",)
    with pytest.raises(Unresolvable, match="no directory entry for iro_service_manager"):
        current_recipients(row("allocation:2012-W02"), Config(), None)


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    with Engine.open(db=f"sqlite:///{tmp_path / 'r.db'}", definitions=ALERT) as e:
        yield e


def test_a_timer_notify_is_addressed_from_the_case_and_the_new_directory(  # type: ignore[no-untyped-def]
        engine) -> None:
    data = {"team_manager_email": "tm@example.org", "iro_email": "iro@example.org",
            "concern": "c", "category": "plan_progress"}
    case = engine.start("alert_auto_escalation", "R-1", data, Actor("iro-1", "iro"),
                        at=date(2011, 12, 19))
    engine.tick(datetime(2012, 1, 6, 12, tzinfo=UTC))  # escalates: no_response, stage 1
    rows = [m for m in engine.outbox.list(instance_id=case.id) if m.template == "no_response"]
    [sent] = [m for m in rows if m.status is OutboxStatus.PENDING]
    [unreached] = [m for m in rows if m.idempotency_key.endswith(":unreached")]
    assert unreached.status is OutboxStatus.FAILED and unreached.recipients == ()
    assert "ism@example.org" not in sent.recipients  # no directory then
    config = Config(directory={"iro_service_manager": ("ism@example.org",)})
    again = current_recipients(sent, config, engine)
    assert set(again) == set(sent.recipients) | {"ism@example.org"}
    # The roles the sent copy missed: only the ones it did not reach.
    assert current_recipients(unreached, config, engine, rows) == ("ism@example.org",)
