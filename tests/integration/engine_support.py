"""Shared fixtures of the engine contract suite: one store per backend, a test definition.

The backends are SQLite, PostgreSQL (with ICSFLOW_TEST_PG) and the in-memory store of
``icsflow.workflow.testing``: the contract holds on each. A test that needs SQL by nature
(raw SQL, a database URL, PostgreSQL's locking) says so with ``backend.needs_sql(reason)``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from icsflow.definitions.loader import load_text
from icsflow.definitions.model import Definition
from icsflow.storage.repository import SqlUnitOfWork
from icsflow.workflow import Actor, Engine, FakeClock
from icsflow.workflow.catalogue import load_definitions
from icsflow.workflow.testing import InMemoryStore, InMemoryUnitOfWork

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


def sql_backends() -> list[object]:
    """The databases: SQLite always, PostgreSQL when ICSFLOW_TEST_PG names one."""
    params: list[object] = ["sqlite"]
    params.append(pytest.param("postgresql", marks=[
        pytest.mark.postgres,
        pytest.mark.skipif(not PG_URL, reason="ICSFLOW_TEST_PG not set")]))
    return params


def backends() -> list[object]:
    """Every store the engine contract runs on: the databases and the in-memory store."""
    return [*sql_backends(), "memory"]


class Backend:
    """A fresh store per test: a temp SQLite file, a new PostgreSQL schema, or an in-memory
    store (kept across ``open`` calls, as a database file is)."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.schema: str | None = None
        self.store: InMemoryStore | None = None
        self._url: str | None = None
        if kind == "memory":
            self.store = InMemoryStore()
        elif kind == "sqlite":
            self._url = f"sqlite:///{tmp_path / 'icsflow.db'}"
        else:
            assert PG_URL
            self.schema = f"t_{uuid.uuid4().hex[:12]}"
            admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            admin.dispose()
            sep = "&" if "?" in PG_URL else "?"
            self._url = f"{PG_URL}{sep}options=-csearch_path%3D{self.schema}"

    @property
    def url(self) -> str:
        """The database's URL; the in-memory store has none (see ``needs_sql``)."""
        if self._url is None:
            raise RuntimeError("the in-memory store has no database URL: a test that needs "
                               "one calls backend.needs_sql(reason) first")
        return self._url

    def needs_sql(self, reason: str) -> None:
        """Skip this test on the in-memory store, saying why it needs a database."""
        if self.kind == "memory":
            pytest.skip(f"needs SQL: {reason}")

    @property
    def unit_of_work_class(self) -> type[Any]:
        """The class of this backend's units of work (a test may make its ``apply`` fail)."""
        return InMemoryUnitOfWork if self.kind == "memory" else SqlUnitOfWork

    def drop(self) -> None:
        if self.schema:
            assert PG_URL
            admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
            admin.dispose()

    def open(self, clock: FakeClock, definitions: object = None, **kwargs: Any) -> Engine:
        defs = definitions if definitions is not None else alert_definition()
        kwargs.setdefault("directory", {"iro_service_manager": ["sm@example.org"]})
        if self.store is not None:
            return Engine(self.store, load_definitions(defs),  # type: ignore[arg-type]
                          clock=clock, **kwargs)
        return Engine.open(self.url, definitions=defs,  # type: ignore[arg-type]
                           clock=clock, migrate=True, **kwargs)


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


def table_rows(e: Engine, table: str) -> list[dict[str, Any]]:
    """Every row of one of the engine's tables, column -> value, by key: what a test reads to
    prove what was written (or that a refusal wrote nothing), on any backend."""
    if isinstance(e.store, InMemoryStore):
        return e.store.rows(table)
    order = "name, version" if table == "definitions" else "id"
    with e.store.engine.connect() as conn:  # type: ignore[attr-defined]
        return [dict(r._mapping) for r in conn.execute(text(
            f"SELECT * FROM {table} ORDER BY {order}"))]


def tick_summary(e: Engine) -> dict[str, object]:
    """Every row a tick writes, per case reference, in a form two backends can compare."""
    rows = {t: table_rows(e, t) for t in ("instances", "history", "deadlines", "timers",
                                          "outbox")}

    def of(table: str, iid: str) -> list[dict[str, Any]]:
        return [r for r in rows[table] if r["instance_id"] == iid]

    out: dict[str, object] = {}
    for case in rows["instances"]:
        iid = case["id"]
        outbox = of("outbox", iid)
        assert len({r["idempotency_key"] for r in outbox}) == len(outbox)  # queued once each
        out[case["ref"]] = {
            "row": (case["state"], case["version"]),
            "history": [(r["event"], _utc(r["happened_at"])) for r in of("history", iid)],
            "deadlines": sorted((r["name"], r["status"], _utc(r["met_at"]))
                                for r in of("deadlines", iid)),
            "timers": sorted((r["name"], _utc(r["due_at"]), r["status"], r["attempts"],
                              r["last_error"] is not None, _utc(r["claim_expires_at"]))
                             for r in of("timers", iid)),
            "outbox": sorted((r["template"], r["subject"]) for r in outbox),
        }
    return out
