"""icsflow simulate: the what-if preview runs the real engine over real dates."""

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from icsflow.workflow.cli import cli
from icsflow.workflow.errors import ValidationError
from icsflow.workflow.simulate import parse_events, simulate

TEN_DAY = """\
name: ten_day
version: 1
title: Ten working days
roles:
  owner: {address: owner_email}
  manager: {directory: true}
start_roles: [owner]
data:
  owner_email: {type: email, required: true}
initial: open
states:
  open: {}
  escalated: {}
  done: {final: true}
transitions:
  - {event: finish, from: [open, escalated], to: done, roles: [owner]}
  - {event: overdue, from: open, to: escalated}
deadlines:
  reply_due: {live_in: open, anchor: entry, after: 10 working days}
timers:
  - name: reply_reminder
    deadline: reply_due
    before: 3 working days
    notify: [{to: [owner], template: reminder}]
  - name: reply_breached
    deadline: reply_due
    at: breach
    fire: overdue
    notify: [{to: [manager], template: overdue}]
templates:
  reminder:
    subject: "Reply to {{ ref }} due {{ format_date(deadlines.reply_due) }}"
    body: "Soon."
  overdue: {subject: "{{ ref }} overdue", body: "Late."}
"""


@pytest.fixture()
def defs(tmp_path: Path) -> Path:
    (tmp_path / "ten_day.yaml").write_text(TEN_DAY)
    return tmp_path


def lines_of(preview_text: str) -> list[str]:
    return [" ".join(line.split()) for line in preview_text.splitlines()]


def test_nobody_acting_lists_reminder_deadline_and_escalation_in_date_order(defs: Path) -> None:
    preview = simulate(str(defs), "ten_day", date(2011, 12, 19))
    lines = lines_of(preview.text())
    assert "2011-12-30 notification reminder (owner@example.invalid)" in lines
    assert "2012-01-05 deadline reply_due due (breached)" in lines
    assert "2012-01-06 escalation overdue: open -> escalated (automatic)" in lines
    assert "2012-01-06 notification overdue (manager@example.invalid)" in lines
    dates = [h.on for h in preview.happenings]
    assert dates == sorted(dates)
    assert preview.final_state == "escalated"
    assert preview.placeholders == ("owner_email",)


def test_scripted_event_before_the_deadline_meets_it(defs: Path) -> None:
    preview = simulate(str(defs), "ten_day", date(2011, 12, 19),
                       {"owner_email": "o@example.org"}, parse_events("finish@2012-01-04"))
    lines = lines_of(preview.text())
    assert "2012-01-04 event finish: open -> done (by owner)" in lines
    assert "2012-01-05 deadline reply_due due (met)" in lines
    assert not any("escalation" in line for line in lines)
    assert preview.final_state == "done"


def test_parse_events_reads_roles_and_data() -> None:
    [ev] = parse_events("schedule:iro@2012-06-20+review_date=2012-06-25")
    assert (ev.event, ev.role, ev.on, dict(ev.data)) == (
        "schedule", "iro", date(2012, 6, 20), {"review_date": "2012-06-25"})


@pytest.mark.parametrize("bad", ["respond", "respond@2012-13-01", "x@2012-01-01+novalue"])
def test_parse_events_refuses_malformed_items(bad: str) -> None:
    with pytest.raises(ValidationError, match="--events item"):
        parse_events(bad)


def test_cli_simulate_prints_the_preview(defs: Path) -> None:
    result = CliRunner().invoke(cli, ["--definitions", str(defs), "simulate", "ten_day",
                                      "--start", "2011-12-19", "--json"])
    assert result.exit_code == 0, result.output
    assert '"2011-12-30"' in result.output and '"2012-01-05"' in result.output


def test_cli_simulate_unknown_definition_exits_1(defs: Path) -> None:
    result = CliRunner().invoke(cli, ["--definitions", str(defs), "simulate", "nope",
                                      "--start", "2011-12-19"])
    assert result.exit_code == 1
    assert "nope" in result.output


def test_simulate_takes_a_file_and_prints_each_emails_subject(defs: Path) -> None:
    path = defs / "ten_day.yaml"
    result = CliRunner().invoke(cli, ["simulate", str(path), "--start", "2011-12-19"])
    assert result.exit_code == 0, result.output
    lines = lines_of(result.stdout)
    at = lines.index("2011-12-30 notification reminder (owner@example.invalid)")
    assert lines[at + 1] == "subject: Reply to PREVIEW-1 due Thursday 5 January 2012"
    assert "| Soon." not in result.stdout  # bodies only with --emails
    result = CliRunner().invoke(cli, ["simulate", str(path), "--start", "2011-12-19",
                                      "--emails"])
    assert "| Soon." in lines_of(result.stdout)
    result = CliRunner().invoke(cli, ["simulate", str(path), "--start", "2011-12-19", "--json"])
    notes = [h for h in json.loads(result.stdout)["happenings"]
             if h["kind"] == "notification"]
    assert notes[0]["subject"].startswith("Reply to PREVIEW-1") and notes[0]["body"] == "Soon."


def test_simulate_a_broken_file_prints_its_problems(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(TEN_DAY.replace("final: true", "final: yes"))
    result = CliRunner().invoke(cli, ["simulate", str(path), "--start", "2011-12-19"])
    assert result.exit_code == 1 and f"{path}:" in result.stderr and "final" in result.stderr
