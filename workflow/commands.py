"""The application's commands over a configuration: what the CLI, the daemon and the web page
all call, so that each is written once (alembic's ``command.py`` is the model).

Why a layer of its own: opening the engine from the configuration (and whether a command may
create a database), finding a case by id or reference, and a tick that also sends the outbox
were written two or three times over, in the CLI, the daemon and the web page, each a little
differently. Here each is one typed function; the front ends only parse their input, call it
and print. The features (``transfer``, ``reports``, ``changes``) are commands too: the front
ends call ``import_file`` and ``build_report`` directly, since the core may not import an
application (``test_layering``); ``migrate`` and ``reproject`` are commands here. This module
is a composition root: it may wire concrete storage, as ``Engine.open`` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from icsflow.workflow.errors import AmbiguousReference, InstanceNotFound, WorkflowError
from icsflow.workflow.policy import Policy

if TYPE_CHECKING:  # the engine is imported when a command runs: ``icsflow --help`` stays quick
    from datetime import datetime

    from sqlalchemy import Engine as SqlEngine

    from icsflow.workflow.calendar import WorkingCalendar
    from icsflow.workflow.changes.migration import MigrationPlan
    from icsflow.workflow.changes.reproject import ReprojectPlan
    from icsflow.workflow.clock import Clock
    from icsflow.workflow.config import Config
    from icsflow.workflow.engine import Engine
    from icsflow.workflow.instance import Actor, Instance, TickResult


class Mode(StrEnum):
    """What a command may do to the database: a command says it, nobody guesses it."""

    CREATE = "create"  # create (and migrate) a missing database: start, import, demo, run
    WRITE = "write"  # act on an existing database; a missing one is NoDatabase
    READ = "read"  # only read (a read-only SQLite file works); nothing is ever written


def policy_from(config: Config) -> Policy:
    """Every retry and lease of the process, from the configuration's ``intervals``."""
    return Policy.from_intervals(asdict(config.intervals))


def system_clock(config: Config) -> Clock:
    """The real time, ``clock_offset_seconds`` ahead (none unless configured: drills and
    tests run a command or the daemon ahead of the wall clock without waiting)."""
    from datetime import timedelta

    from icsflow.workflow.clock import SystemClock

    return SystemClock(timedelta(seconds=config.clock_offset_seconds))


def engine_settings(config: Config) -> dict[str, str]:
    """The council's settings that definitions read (``settings.allocation_weekday``), and the
    web page's address, from which emails link to a case (``case_url``; none when unset)."""
    found = {"allocation_weekday": config.digest.allocation_weekday}
    if config.web.base_url:
        found["web_base_url"] = config.web.base_url
    return found


def open_engine(config: Config, *, mode: Mode, clock: Clock | None = None,
                calendar: WorkingCalendar | None = None, pause_gc: bool = False) -> Engine:
    """The workflow engine wired from configuration (database, definitions, calendar, roles,
    retries and leases), opened as ``mode`` allows."""
    from icsflow.workflow.config import calendar_from
    from icsflow.workflow.engine import Engine

    return Engine.open(db=config.database_url, definitions=config.definitions_dir,
                       clock=clock or system_clock(config),
                       calendar=calendar or calendar_from(config),
                       directory=dict(config.directory), admin_address=config.admin_address,
                       sender=config.smtp.mail_from, settings=engine_settings(config),
                       create=mode is Mode.CREATE, read_only=mode is Mode.READ,
                       policy=policy_from(config), pause_gc=pause_gc)


def migrate(config: Config, name: str, to_version: int, *, where: Sequence[str] = (),
            mapping: Mapping[str, str] | None = None, dry_run: bool = False,
            actor: Actor | None = None, now: datetime | None = None,
            calendar: WorkingCalendar | None = None) -> MigrationPlan:
    """``icsflow migrate``: move the open cases of ``name`` to ``to_version`` on the database
    opened for writing (every case is planned before any is moved; ``workflow.changes``)."""
    from icsflow.workflow.instance import SYSTEM_ACTOR

    engine = open_engine(config, mode=Mode.WRITE, calendar=calendar)
    try:
        return engine.migrate(name, to_version, where=where, mapping=mapping, dry_run=dry_run,
                              actor=actor or SYSTEM_ACTOR, now=now)
    finally:
        engine.close()


def reproject(config: Config, *, dry_run: bool = False, now: datetime | None = None,
              calendar: WorkingCalendar | None = None) -> ReprojectPlan:
    """``icsflow calendar reproject``: move the open working-day deadlines a calendar change
    touches, on the database opened for writing (met and breached ones never move)."""
    engine = open_engine(config, mode=Mode.WRITE, calendar=calendar)
    try:
        return engine.reproject(dry_run=dry_run, now=now)
    finally:
        engine.close()


def find_case(engine: Engine, key: str) -> Instance:
    """The case with id ``key``, else the one case with reference ``key``: ``InstanceNotFound``
    when there is none, ``AmbiguousReference`` (listing them) when several share it, so that
    nobody acts on the wrong child's case."""
    try:
        return engine.get(key)
    except InstanceNotFound:
        pass
    matches = engine.find(key)
    if not matches:
        raise InstanceNotFound(key, reference=True)
    if len(matches) > 1:
        raise AmbiguousReference(key, [(m.id, m.definition, m.version, m.state,
                                        m.history[0].at if m.history else None, m.closed)
                                       for m in matches])
    return matches[0]


class Dispatching(Protocol):
    """What a tick needs to send the outbox (``daemon.dispatch.Dispatcher``)."""

    def dispatch_once(self, now: datetime) -> object: ...


@dataclass(frozen=True)
class TickOutcome:
    """What one tick did: the timers fired, and what sending the outbox did (if it sent)."""

    timers: TickResult
    sent: object | None = None


def tick(engine: Engine, now: datetime | None = None, *,
         dispatcher: Dispatching | None = None, batch_size: int = 500) -> TickOutcome:
    """Fire every timer due by ``now``, then send the outbox (office hours judged at the
    tick's own moment) when a dispatcher is given: ``icsflow tick`` and the daemon's sweep."""
    when = now or engine.clock.now()
    timers = engine.tick(when, batch_size=batch_size)
    sent = dispatcher.dispatch_once(when) if dispatcher is not None else None
    return TickOutcome(timers, sent)


def upgrade(url: str) -> tuple[str | None, str | None]:
    """Create or migrate the database at ``url``; (revision before, revision after)."""
    from icsflow.storage.db import create_db_engine, current_revision, head_revision
    from icsflow.storage.db import upgrade as run_upgrade

    sql = create_db_engine(url)
    try:
        before = current_revision(sql)
        run_upgrade(sql)
        return before, head_revision(sql)
    finally:
        sql.dispose()


def sql_engine(engine: Engine) -> SqlEngine:
    """The SQLAlchemy engine under ``engine``'s store, for the features that read the tables
    in bulk with set-based queries (reports, the Today view, digests, import ledgers): the one
    place a front end reaches past the store port, named, refused for other stores."""
    from icsflow.storage.repository import SqlStore

    store = engine.store
    if not isinstance(store, SqlStore):
        raise WorkflowError("this needs an SQL database (SQLite or PostgreSQL)")
    return store.engine


def described(url: str) -> str:
    """A database URL for a message: the password replaced by ``***``."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - unparseable: say nothing that could be a secret
        return url.split("://", 1)[0] + "://..."


__all__ = ["Dispatching", "Mode", "TickOutcome", "described", "engine_settings", "find_case",
           "open_engine", "policy_from", "sql_engine", "system_clock", "tick", "upgrade"]
