"""Shared fixtures of the engine contract suite: one store per backend, a test definition."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from icsflow.definitions.loader import load_text
from icsflow.definitions.model import Definition
from icsflow.workflow import Actor, Engine, FakeClock

PG_URL = os.environ.get("ICSFLOW_TEST_PG")

ALERT_YAML = """
name: alert
version: 1
title: Alert
description: An IRO Alert for the contract tests.
roles:
  iro: {address: iro_email}
  team_manager: {address: team_manager_email}
  iro_service_manager: {directory: true}
start_roles: [iro]
data:
  concern: {type: text, required: true}
  iro_email: {type: email, required: true}
  team_manager_email: {type: email}
  response: {type: text}
  outcome: {type: enum, values: [satisfactory, unsatisfactory]}
  meeting_date: {type: date}
  visits: {type: int}
  urgent: {type: bool}
  responded_late: {type: bool}
  broken: {type: int}
initial: alert
states:
  alert: {}
  responded: {}
  stage1: {}
  stage2: {}
  resolved: {final: true}
transitions:
  - event: respond
    from: alert
    to: responded
    roles: [team_manager]
    set: {response: required}
    record:
      responded_late: "event_date > deadlines.response_due"
    notify:
      - {to: [iro], template: responded}
  - event: accept
    from: responded
    to: resolved
    roles: [iro]
    set: {outcome: required}
    when: ['data.outcome == "satisfactory"']
  - event: escalate
    from: [alert, responded]
    to: stage1
    roles: [iro]
  - event: no_response
    from: alert
    to: stage1
    notify:
      - {to: [iro, iro_service_manager], template: escalated}
  - event: stage1_overdue
    from: stage1
    to: stage2
  - event: boom
    from: alert
    to: responded
    roles: [iro]
    record:
      broken: "1 // 0"
  - event: comment
    from: "*"
    roles: [iro, team_manager]
    set: {visits: optional}
  - event: close
    from: [stage1, stage2]
    to: resolved
    roles: [iro]
deadlines:
  response_due:
    live_in: alert
    anchor: entry
    after: 10 working days
  stage1_due:
    live_in: stage1
    anchor: entry
    after: 5 working days
timers:
  - name: response_reminder
    deadline: response_due
    before: 2 working days
    notify:
      - {to: [team_manager], template: reminder}
  - name: escalate_on_breach
    deadline: response_due
    at: breach
    fire: no_response
  - name: stage1_escalation
    deadline: stage1_due
    at: breach
    fire: stage1_overdue
  - name: stage2_nag
    state: stage2
    after: 1 day
    repeat: {every: 1 week, max: 3}
    notify:
      - {to: [iro_service_manager], template: escalated}
templates:
  reminder:
    subject: "Alert {{ ref }}: response due {{ format_date(deadlines.response_due) }}"
    body: "{{ days_left.response_due }} working days left for {{ ref }}."
  responded:
    subject: "Alert {{ ref }}: responded"
    body: "{{ data.response }}"
  escalated:
    subject: "Alert {{ ref }} escalated"
    body: "State {{ state }}."
    urgent: true
"""

START_DATA = {"concern": "no plan", "iro_email": "iro@example.org",
              "team_manager_email": "tm@example.org"}
IRO = Actor("iro-1", "iro")
TM = Actor("tm-1", "team_manager")
T0 = datetime(2012, 6, 1, 9, 0, tzinfo=UTC)  # Friday; 4 and 5 June 2012 were bank holidays


def alert_definition(text_: str = ALERT_YAML) -> Definition:
    return load_text(text_, "alert.yaml")


def backends() -> list[object]:
    params: list[object] = ["sqlite"]
    params.append(pytest.param("postgresql", marks=[
        pytest.mark.postgres,
        pytest.mark.skipif(not PG_URL, reason="ICSFLOW_TEST_PG not set")]))
    return params


class Backend:
    """A fresh database per test: a temp SQLite file, or a new PostgreSQL schema."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.schema: str | None = None
        if kind == "sqlite":
            self.url = f"sqlite:///{tmp_path / 'icsflow.db'}"
        else:
            assert PG_URL
            self.schema = f"t_{uuid.uuid4().hex[:12]}"
            admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            admin.dispose()
            sep = "&" if "?" in PG_URL else "?"
            self.url = f"{PG_URL}{sep}options=-csearch_path%3D{self.schema}"

    def drop(self) -> None:
        if self.schema:
            assert PG_URL
            admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
            admin.dispose()

    def open(self, clock: FakeClock, definitions: object = None, **kwargs: object) -> Engine:
        defs = definitions if definitions is not None else alert_definition()
        return Engine.open(self.url, definitions=defs, clock=clock, migrate=True,
                           directory={"iro_service_manager": ["sm@example.org"]},
                           **kwargs)  # type: ignore[arg-type]


@pytest.fixture(params=backends())
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = Backend(request.param, tmp_path)
    yield b
    b.drop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def engine(backend: Backend, clock: FakeClock) -> Iterator[Engine]:
    e = backend.open(clock)
    yield e
    e.close()


# A definition where escalating fails for a case whose ``visits`` is 0 (1 // 0), and only
# for it: used to put one failing firing in the middle of a batch of good ones.
FAILS_FOR_ZERO_VISITS_YAML = ALERT_YAML.replace("""  - event: no_response
    from: alert
    to: stage1""", """  - event: no_response
    from: alert
    to: stage1
    record:
      broken: "1 // data.visits\"""")


def _utc(v: object) -> object:
    """A timestamp read by raw SQL (SQLite gives text) as an aware UTC datetime."""
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    if isinstance(v, datetime):
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
    return v


def tick_summary(e: Engine) -> dict[str, object]:
    """Every row a tick writes, per case reference, in a form two databases can compare."""
    sql = e.store.engine  # type: ignore[attr-defined]
    out: dict[str, object] = {}
    with sql.connect() as conn:
        refs = dict(conn.execute(text("SELECT id, ref FROM instances")).all())
        for iid, ref in refs.items():
            p = {"i": iid}
            out[ref] = {
                "row": tuple(conn.execute(text(
                    "SELECT state, version FROM instances WHERE id = :i"), p).one()),
                "history": [(r[0], _utc(r[1])) for r in conn.execute(text(
                    "SELECT event, happened_at FROM history WHERE instance_id = :i ORDER BY id"),
                    p)],
                "deadlines": sorted((r[0], r[1], _utc(r[2])) for r in conn.execute(text(
                    "SELECT name, status, met_at FROM deadlines WHERE instance_id = :i"), p)),
                "timers": sorted((r[0], _utc(r[1]), r[2], r[3], r[4] is not None, _utc(r[5]))
                                 for r in
                                 conn.execute(text(
                    "SELECT name, due_at, status, attempts, last_error, claim_expires_at "
                    "FROM timers WHERE instance_id = :i"), p)),
            }
            outbox = conn.execute(text(
                "SELECT idempotency_key, template, subject FROM outbox WHERE instance_id = :i"),
                p).all()
            assert len({r[0] for r in outbox}) == len(outbox)  # each message queued once
            out[ref]["outbox"] = sorted((r[1], r[2]) for r in outbox)  # type: ignore[index]
    return out
