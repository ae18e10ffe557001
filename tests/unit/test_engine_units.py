"""The pure parts of the engine: breach instants, the context, recipients and rendering."""

from __future__ import annotations

from datetime import UTC, date, datetime

from icsflow.definitions.loader import load_text
from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.context import build_context, days_left
from icsflow.workflow.engine import breach_instant
from icsflow.workflow.instance import Actor, DeadlineInfo, DeadlineStatus, Instance, OutboxStatus
from icsflow.workflow.outbox_queue import queue, resolve_role

CAL = WorkingCalendar()
DEFN = load_text("""
name: q
version: 1
title: Q
description: recipients and templates
roles:
  iro: {address: iro_email}
  manager: {directory: true}
  nobody: {}
start_roles: [iro]
data:
  iro_email: {type: email}
initial: a
states: {a: {}, z: {final: true}}
transitions:
  - event: go
    from: a
    to: z
    roles: [iro]
    notify:
      - {to: [iro, manager], template: ok}
      - {to: [iro], template: broken}
deadlines:
  due: {live_in: a, after: 5 working days}
templates:
  ok:
    subject: "Case {{ ref }} due {{ format_date(deadlines.due) }}"
    body: "{{ days_left.due }} working days left"
  broken:
    subject: "{{ data.iro_email.nope() }}"
    body: "x"
""", "q.yaml")


def ctx(data: dict[str, object]) -> dict[str, object]:
    dl = DeadlineInfo("due", date(2012, 6, 27), breach_instant(date(2012, 6, 27), CAL),
                      DeadlineStatus.LIVE)
    return build_context(calendar=CAL, instance_id="i", ref="C-1", definition="q", title="Q",
                         state="z", previous_state="a", data=data, deadlines=[dl], history=[],
                         event="go", event_at=datetime(2012, 6, 25, 9, tzinfo=UTC),
                         now=datetime(2012, 6, 25, 9, tzinfo=UTC), actor_id="x", role="iro",
                         note=None)


def test_a_date_deadline_is_breached_at_the_next_local_midnight() -> None:
    assert breach_instant(date(2012, 6, 27), CAL) == datetime(2012, 6, 27, 23, tzinfo=UTC)
    assert breach_instant(date(2012, 12, 27), CAL) == datetime(2012, 12, 28, tzinfo=UTC)


def test_an_hour_deadline_is_breached_at_its_instant() -> None:
    exact = datetime(2012, 6, 27, 14, 30, tzinfo=UTC)
    assert breach_instant(exact, CAL) is exact


def test_days_left_counts_working_days_and_goes_negative_when_overdue() -> None:
    assert days_left(CAL, date(2012, 6, 25), date(2012, 6, 27)) == 2
    assert days_left(CAL, date(2012, 6, 29), date(2012, 6, 27)) == -2


def test_roles_resolve_from_case_data_or_the_directory() -> None:
    assert resolve_role(DEFN, "iro", {"iro_email": "i@x.org"}, {}) == (["i@x.org"], None)
    assert resolve_role(DEFN, "manager", {}, {"manager": ["m@x.org"]}) == (["m@x.org"], None)
    assert "iro_email is empty" in (resolve_role(DEFN, "iro", {}, {})[1] or "")
    assert "no directory entry" in (resolve_role(DEFN, "manager", {}, {})[1] or "")
    assert resolve_role(DEFN, "nobody", {}, {})[0] == []


def test_queue_renders_now_and_keys_each_occurrence() -> None:
    rows = queue(DEFN, DEFN.transitions[0].notify[:1], ctx({"iro_email": "i@x.org"}),
                 key="i:v2", instance_id="i", directory={"manager": ["m@x.org"]},
                 admin_address=None)
    [row] = rows
    assert row.recipients == ("i@x.org", "m@x.org")
    assert row.subject == "Case C-1 due Wednesday 27 June 2012"
    assert row.body == "2 working days left"
    assert row.idempotency_key == "i:v2:n0:ok" and row.status is OutboxStatus.PENDING


def test_template_error_and_missing_address_fail_the_row_and_tell_the_admin() -> None:
    rows = queue(DEFN, DEFN.transitions[0].notify, ctx({}), key="k", instance_id="i",
                 directory={}, admin_address="admin@x.org")
    failed = [r for r in rows if r.status is OutboxStatus.FAILED]
    admin = [r for r in rows if r.recipients == ("admin@x.org",)]
    assert len(failed) == 2 and len(admin) == 2
    assert "iro_email is empty" in (failed[0].last_error or "")
    assert "could not be rendered" in (failed[1].last_error or "")
    assert all(r.status is OutboxStatus.PENDING for r in admin)


def test_actor_is_a_frozen_value() -> None:
    a = Actor("iro-1", "iro")
    assert a == Actor("iro-1", "iro") and hash(a) == hash(Actor("iro-1", "iro"))


def test_instance_deadlines_show_only_active_ones() -> None:
    live = DeadlineInfo("a", date(2012, 1, 2), datetime(2012, 1, 3, tzinfo=UTC),
                        DeadlineStatus.LIVE)
    met = DeadlineInfo("b", date(2012, 1, 2), datetime(2012, 1, 3, tzinfo=UTC),
                       DeadlineStatus.MET, met_at=datetime(2012, 1, 2, tzinfo=UTC))
    late = DeadlineInfo("c", date(2012, 1, 2), datetime(2012, 1, 3, tzinfo=UTC),
                        DeadlineStatus.BREACHED)
    inst = Instance("i", "q", 1, "C", "a", {}, (live, met, late), (), ())
    assert inst.deadlines == {"a": date(2012, 1, 2), "c": date(2012, 1, 2)}
    assert inst.to_json()["deadlines"] == {"a": "2012-01-02", "c": "2012-01-02"}
