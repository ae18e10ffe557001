"""Acceptance: `icsflow tick` delivers escalations once; retries; dead letters are listed."""

from __future__ import annotations

import json

import pytest
import yaml
from acceptance_support import SmtpServer, Workspace

pytestmark = pytest.mark.slow
LATE = "2012-01-20T10:00:00+00:00"  # a Friday in office hours, after the 16 January deadline


def test_a_passed_deadline_sends_the_escalation_once(workspace: Workspace,
                                                     smtp: SmtpServer) -> None:
    workspace.start_case("C-1")
    workspace.icsflow("tick", "--now", LATE)
    by_subject = {str(r.message["Subject"]): r for r in smtp.received}
    escalation = by_subject["Alert for C-1 escalated: no response in time"]
    assert sorted(escalation.rcpt) == ["iro@example.org", "ism@example.org"]
    assert str(escalation.message["From"]) == "icsflow@example.org"
    assert str(escalation.message["Message-ID"]).startswith("<outbox-")
    assert len(smtp.received) == 2  # the reminder and the escalation
    workspace.icsflow("tick", "--now", LATE)
    workspace.icsflow("tick", "--now", "2012-02-20T10:00:00+00:00")
    assert len(smtp.received) == 2


def test_smtp_down_then_up_delivers_after_retry(workspace: Workspace, smtp: SmtpServer) -> None:
    workspace.start_case("C-2")
    smtp.stop()
    workspace.icsflow("tick", "--now", LATE)
    pending = json.loads(workspace.icsflow("outbox", "--status", "pending", "--json").stdout)
    assert len(pending) == 2
    assert all("connect" in row["last_error"] for row in pending)
    # The first failure opened the email channel's breaker: the second row was put back
    # untried (its attempt not counted) instead of paying the same failure again.
    assert [row["attempts"] for row in pending] == [1, 0]
    assert "email endpoint unavailable" in pending[1]["last_error"]
    smtp.start()
    # The retry is due a backoff after the first attempt (base 1 s in this configuration).
    workspace.icsflow("tick", "--now", "2012-01-20T10:05:00+00:00")
    assert len(smtp.received) == 2
    sent = json.loads(workspace.icsflow("outbox", "--status", "sent", "--json").stdout)
    assert [row["attempts"] for row in sent] == [2, 1]


def _reminder_to_an_unlisted_role(workspace: Workspace) -> None:
    """The reminder goes to a directory role the configuration gives no address."""
    path = workspace.path / "defs" / "alert_example.yaml"
    text = path.read_text().replace("notify: [{to: [team_manager], template: response_reminder}]",
                                    "notify: [{to: [head_of_service], template: "
                                    "response_reminder}]")
    text = text.replace("  iro_service_manager: {directory: true}",
                        "  iro_service_manager: {directory: true}\n"
                        "  head_of_service: {directory: true}")
    path.write_text(text)
    config = workspace.path / "icsflow.yaml"
    values = yaml.safe_load(config.read_text())
    del values["directory"]["head_of_service"]
    config.write_text(yaml.safe_dump(values))


def test_a_missing_recipient_is_listed_as_failed_with_the_reason(
        workspace: Workspace, smtp: SmtpServer) -> None:
    _reminder_to_an_unlisted_role(workspace)
    workspace.start_case("C-3")
    workspace.icsflow("tick", "--now", LATE)
    failed = json.loads(workspace.icsflow("outbox", "--status", "failed", "--json").stdout)
    assert len(failed) == 1
    row = failed[0]
    assert row["ref"] == "C-3" and row["template"] == "response_reminder"
    assert "no address" in row["last_error"] or "no recipients" in row["last_error"]
    assert set(row) >= {"id", "instance_id", "ref", "template", "recipients", "subject",
                        "status", "attempts", "next_attempt_at", "last_error", "created_at",
                        "sent_at"}
    # The escalation still went, and the admin was told about the dead letter.
    subjects = [str(r.message["Subject"]) for r in smtp.received]
    assert "Alert for C-3 escalated: no response in time" in subjects


def test_outbox_retry_addresses_a_dead_letter_again_once_the_address_exists(
        workspace: Workspace, smtp: SmtpServer) -> None:
    _reminder_to_an_unlisted_role(workspace)
    workspace.start_case("C-4")
    workspace.icsflow("tick", "--now", LATE)
    failed = json.loads(workspace.icsflow("outbox", "--status", "failed", "--json").stdout)
    [row] = failed
    # Still no address: refused in one line, nothing changed.
    refused = workspace.icsflow("outbox", "retry", str(row["id"]), check=False)
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        f"error: message {row['id']} still has nobody to go to: role head_of_service has no "
        "address: no directory entry for head_of_service; fix the address (configuration "
        "directory or case data) and retry"]
    assert json.loads(workspace.icsflow("outbox", "--status", "pending", "--json").stdout) == []
    # The operator adds the directory entry; the retry goes to it.
    config = workspace.path / "icsflow.yaml"
    values = yaml.safe_load(config.read_text())
    values["directory"]["head_of_service"] = ["hos-new@example.org"]
    config.write_text(yaml.safe_dump(values))
    out = workspace.icsflow("outbox", "retry", str(row["id"])).stdout
    assert out == f"message {row['id']} queued again for 1 recipient\n"
    pending = json.loads(workspace.icsflow("outbox", "--status", "pending", "--json").stdout)
    assert [(p["id"], p["recipients"], p["attempts"]) for p in pending] == [
        (row["id"], ["hos-new@example.org"], 0)]
    workspace.icsflow("tick", "--now", LATE)
    reminders = [r for r in smtp.received if r.message["X-Icsflow-Template"] ==
                 "response_reminder"]
    assert [r.rcpt for r in reminders] == [["hos-new@example.org"]]
    assert workspace.icsflow("outbox", "retry", "9999", check=False).returncode == 1


def test_a_bad_config_value_stops_start_up_in_one_line(workspace: Workspace) -> None:
    (workspace.path / "icsflow.yaml").write_text("office_hours:\n  start: '25:00'\n")
    proc = workspace.icsflow("outbox", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: {workspace.path / 'icsflow.yaml'}: office_hours.start: '25:00' is not a "
        "time (HH:MM)"]
