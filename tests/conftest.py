"""Suite-wide fixtures, and what keeps the suite quick (issue 24, STYLE lesson 8).

The suite runs on pytest-xdist (``-n auto`` in pyproject.toml). Three things are built once per
worker instead of once per test, each from the real code:

- a **migrated empty database**: the first fresh SQLite database and the first fresh
  PostgreSQL schema a worker needs are migrated by Alembic as usual; every later one gets a
  copy (the SQLite file page for page; for PostgreSQL, the statements Alembic sent, sent
  again), not a second run of the same migrations. Only a database with no table at all,
  upgraded to head, is copied; an upgrade from an older revision runs Alembic, and a test
  that is about the migration run itself says ``@pytest.mark.real_migrations``.
- **loaded definitions**: ``load_text`` of the same bytes under the same file name returns the
  same frozen ``Definition`` (remembered_definitions.py); a text never seen, or one that
  fails, is loaded for real every time.
- **`icsflow` commands** run as processes forked from a warm server per worker
  (forked_cli.py): each a separate process, without half a second of start-up.
- tests marked ``slow`` are started first, so that the long ones do not end the run alone,
  and ``-n auto`` means two workers per core (much of the suite waits rather than computes).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
from forked_cli import stop_server
from remembered_definitions import REMEMBERED as _REMEMBERED


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Each test starts with no icsflow log handler and structlog's defaults: a CLI test that
    configured logging on its own (since closed) stderr must not leak into the next test."""
    yield
    from icsflow.workflow.logging import reset_logging

    reset_logging()
    structlog.reset_defaults()


def pytest_configure(config: pytest.Config) -> None:
    _REMEMBERED.install()
    _cheapest_password_hashes()
    config.addinivalue_line(
        "markers", "real_migrations: run Alembic for every fresh SQLite database of this test "
        "(no copy of the worker's migrated template)")


def _cheapest_password_hashes() -> None:
    """argon2 is slow on purpose (a tenth of a second and four lanes a hash or a check), and
    the suite signs in hundreds of times: the workers hash with argon2-cffi's own profile for
    tests (``argon2.profiles.CHEAPEST``). The code is the same; a hash verifies with the
    parameters written in it; a password unknown or wrong fails as before."""
    from argon2 import PasswordHasher, profiles

    import icsflow.workflow.web.auth as auth

    auth._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)  # noqa: SLF001
    auth._DUMMY_HASH = auth._hasher.hash("no such user")  # noqa: SLF001


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` starts two workers per core: a good part of the suite waits (on CLI
    subprocesses, daemons, PostgreSQL, Chromium) rather than computes, and a second worker per
    core computes meanwhile. ``ICSFLOW_TEST_WORKERS`` overrides it."""
    import os

    chosen = os.environ.get("ICSFLOW_TEST_WORKERS")
    return int(chosen) if chosen else 2 * (os.cpu_count() or 1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests first (a stable sort: the order within each kind is kept). xdist hands tests
    out in this order, so the long ones start at once and the short ones fill in around them."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


# -- migrated templates, copied --------------------------------------------------------------

class _MigratedTemplates:
    """Per worker: the first empty SQLite database and the first empty PostgreSQL schema are
    migrated by the real ``upgrade``; later empty ones get a copy of the result. SQLite: the
    migrated file, copied page for page (the backup API). PostgreSQL: the statements Alembic
    sent to the first schema, sent again, in one transaction, to the new one (its connections'
    search_path names it, as it named the first)."""

    def __init__(self, folder: Path, real_upgrade: Callable[..., None]) -> None:
        self.sqlite_file = folder / "migrated-template.db"
        self.real_upgrade = real_upgrade
        self.real_for_this_test = False  # set by the real_migrations marker
        self._lock = threading.Lock()
        self._sqlite_made = False
        self._pg_statements: list[tuple[str, Any]] | None = None

    def upgrade(self, engine: Any, revision: str = "head") -> None:
        dialect = engine.dialect.name
        if (self.real_for_this_test or revision != "head"
                or dialect not in ("sqlite", "postgresql")
                or (dialect == "sqlite" and engine.url.database in (None, "", ":memory:"))
                or not _has_no_table(engine)):
            self.real_upgrade(engine, revision)
        elif dialect == "sqlite":
            self._sqlite_copy(engine)
        else:
            self._pg_replay(engine)

    def _sqlite_copy(self, engine: Any) -> None:
        with self._lock:
            if not self._sqlite_made:
                from icsflow.storage.db import create_db_engine

                made = create_db_engine(f"sqlite:///{self.sqlite_file}")
                try:
                    self.real_upgrade(made)
                finally:
                    made.dispose()
                self._sqlite_made = True
        source = sqlite3.connect(self.sqlite_file)
        try:
            with engine.connect() as conn:
                source.backup(conn.connection.driver_connection)
        finally:
            source.close()

    def _pg_replay(self, engine: Any) -> None:
        from sqlalchemy import event

        with self._lock:
            if self._pg_statements is None:
                sent: list[tuple[str, Any]] = []

                def record(_conn: Any, _cursor: Any, statement: str, parameters: Any,
                           _context: Any, _many: bool) -> None:
                    sent.append((statement, parameters))

                event.listen(engine, "before_cursor_execute", record)
                try:
                    self.real_upgrade(engine)
                finally:
                    event.remove(engine, "before_cursor_execute", record)
                self._pg_statements = sent
                return
        with engine.begin() as conn:
            for statement, parameters in self._pg_statements:
                conn.exec_driver_sql(statement, parameters)


def _has_no_table(engine: Any) -> bool:
    from sqlalchemy import inspect

    with engine.connect() as conn:
        names = inspect(conn).get_table_names()
        conn.rollback()
    return not names


@pytest.fixture(scope="session", autouse=True)
def _migrated_templates(tmp_path_factory: pytest.TempPathFactory,
                        ) -> Iterator[_MigratedTemplates]:
    import icsflow.storage.db as db

    templates = _MigratedTemplates(tmp_path_factory.mktemp("template"), db.upgrade)
    db.upgrade = templates.upgrade  # type: ignore[assignment]
    try:
        yield templates
    finally:
        db.upgrade = templates.real_upgrade  # type: ignore[assignment]


@pytest.fixture(autouse=True)
def _real_migrations_when_marked(request: pytest.FixtureRequest,
                                 _migrated_templates: _MigratedTemplates) -> Iterator[None]:
    marked = request.node.get_closest_marker("real_migrations") is not None
    _migrated_templates.real_for_this_test = marked
    yield
    _migrated_templates.real_for_this_test = False


def pytest_unconfigure(config: pytest.Config) -> None:
    _REMEMBERED.uninstall()
    stop_server()


# -- the demo year, replayed once per run ------------------------------------------------------

@dataclass(frozen=True)
class DemoRun:
    """What ``icsflow demo`` printed, and a copy of the folder it ran in, for one test."""

    stdout: str
    folder: Path

    @property
    def db(self) -> str:
        return f"sqlite:///{self.folder / 'icsflow-demo' / 'icsflow.db'}"


@contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """One xdist worker at a time (the others wait, then find the work done)."""
    import fcntl

    with lock_file.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class DemoYear:
    """The folder ``icsflow demo`` ran in (never written to again) and what it printed."""

    stdout: str
    folder: Path

    def copy_to(self, target: Path) -> DemoRun:
        """A copy of the folder at ``target``, for a test that reads or changes it."""
        shutil.copytree(self.folder, target, dirs_exist_ok=True)
        return DemoRun(self.stdout, target)


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str,
               build: Callable[[Path], object]) -> Path:
    """A folder ``build`` fills once for the whole run, whichever xdist worker asks first (the
    others wait on a lock, then find it done), under the workers' common base temp dir: for
    what is expensive, the same every time, and only read afterwards (copy it to change it).
    A build that failed part-way is started again by the next asker."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's folder, above each worker's own
    folder, done = shared / name, shared / f"{name}.done"
    with _exclusive(shared / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def build_once(tmp_path_factory: pytest.TempPathFactory
               ) -> Callable[[str, Callable[[Path], object]], Path]:
    """``built_once`` for a test module: ``build_once(name, build) -> folder``."""
    return lambda name, build: built_once(tmp_path_factory, name, build)


@pytest.fixture(scope="session")
def demo_year(tmp_path_factory: pytest.TempPathFactory) -> DemoYear:
    """``icsflow demo`` run once for the whole run, in a fresh folder with no ICSFLOW_
    variables (the README's first command). The replay is the same every time, and took
    8-11 s for each module that reads its output or its database."""

    def replay(folder: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ICSFLOW_")}
        done = subprocess.run(
            [sys.executable, "-c", "from icsflow.workflow.cli import main; main()", "demo"],
            cwd=folder, env=env, capture_output=True, text=True, timeout=180, check=False)
        assert done.returncode == 0, done.stderr
        (folder.parent / f"{folder.name}.stdout").write_text(done.stdout, encoding="utf-8")

    folder = built_once(tmp_path_factory, "demo-year", replay)
    printed = folder.parent / f"{folder.name}.stdout"
    return DemoYear(printed.read_text(encoding="utf-8"), folder)


@pytest.fixture
def demo_run(demo_year: DemoYear, tmp_path: Path) -> DemoRun:
    """The demo's output and a copy of its folder in this test's tmp_path (free to change)."""
    return demo_year.copy_to(tmp_path)
