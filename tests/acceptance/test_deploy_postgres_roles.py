"""deploy/postgres/roles.sql on the real PostgreSQL, in docs/deploy.md's order: the script makes
the roles and a database, the owner role migrates, the application role runs cases (start,
fire, tick, list, report, outbox, a web user) and can change no table, a table a later
migration creates is granted by itself, and a pg_dump -Fc backup restores into a scratch
database that `report` and `list` read, and over the live one (--clean) with the application
role's grants intact. Each run makes and drops its own roles and databases."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import forked_cli
import pytest
import sqlalchemy
from acceptance_support import ROOT
from sqlalchemy.engine import URL, make_url

SCRIPT = ROOT / "deploy" / "postgres" / "roles.sql"

pytestmark = [
    pytest.mark.slow,  # real roles, migrations, pg_dump and restores on fresh databases
    pytest.mark.skipif(shutil.which("psql") is None or shutil.which("pg_dump") is None,
                       reason="the PostgreSQL client programs (psql, pg_dump) are not installed"),
]


@dataclass
class Deployment:
    admin: URL  # the superuser's URL (ICSFLOW_TEST_PG)
    owner: str
    app: str
    db: str

    def url(self, role: str, db: str | None = None) -> str:
        password = "owner-pw" if role == self.owner else "app-pw"
        return self.admin.set(username=role, password=password, database=db or self.db,
                              ).render_as_string(hide_password=False)

    def libpq(self, role: str, db: str | None = None) -> str:
        """The same URL as libpq (psql, pg_dump) reads it."""
        return self.url(role, db).replace("postgresql+psycopg://", "postgresql://")


def _psql_admin(admin: URL, *args: str) -> subprocess.CompletedProcess[str]:
    target = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    return subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", target, *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    base = os.environ.get("ICSFLOW_TEST_PG")
    if not base:
        pytest.skip("ICSFLOW_TEST_PG is not set")
    admin = make_url(base)
    tag = uuid.uuid4().hex[:8]
    found = Deployment(admin, f"icsflow_owner_{tag}", f"icsflow_app_{tag}", f"icsflow_{tag}")
    try:
        yield found
    finally:
        drops = [f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                 for name in (found.db, found.db + "_restore")]
        drops += [f"DROP ROLE IF EXISTS {found.app}", f"DROP ROLE IF EXISTS {found.owner}"]
        for statement in drops:
            _psql_admin(admin, "-c", statement)


def _roles_script(d: Deployment) -> subprocess.CompletedProcess[str]:
    return _psql_admin(d.admin, "-v", f"owner={d.owner}", "-v", f"app={d.app}",
                       "-v", f"dbname={d.db}", "-v", "owner_password=owner-pw",
                       "-v", "app_password=app-pw", "-f", str(SCRIPT))


def _icsflow(url: str, *args: str, tmp: Path, stdin: str | None = None,
             ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICSFLOW_")}
    env |= {"ICSFLOW_DB": url, "ICSFLOW_MAILDIR": str(tmp / "mail")}
    done = forked_cli.run(args, env=env, input=stdin, capture_output=True, text=True,
                          timeout=180, cwd=tmp)
    if ok:
        assert done.returncode == 0, f"icsflow {' '.join(args)}: {done.stderr}"
    return done


def _refused(url: str, statement: str) -> str:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(statement)
    except sqlalchemy.exc.ProgrammingError as exc:
        return str(exc.orig)
    finally:
        engine.dispose()
    raise AssertionError(f"the application role was allowed: {statement}")


def test_the_owner_migrates_and_the_application_role_runs_cases_but_changes_no_table(
        deployment: Deployment, tmp_path: Path) -> None:
    d = deployment
    made = _roles_script(d)
    assert made.returncode == 0, made.stderr
    assert _roles_script(d).returncode == 0  # a second run changes nothing and fails nothing

    # The application role may not migrate; the owner does.
    assert _icsflow(d.url(d.app), "db", "upgrade", tmp=tmp_path, ok=False).returncode == 1
    upgraded = _icsflow(d.url(d.owner), "db", "upgrade", tmp=tmp_path).stdout
    assert "database upgraded from empty to" in upgraded
    _icsflow(d.url(d.owner), "calendar", "reproject", "--dry-run", tmp=tmp_path)

    app = d.url(d.app)
    _icsflow(app, "start", "alert_dispute", "--ref", "C-1", "--child", "CH-1",
             "--actor", "iro-1", "--role", "iro", "--set", "team_manager_email=tm@example.org",
             "--set", "iro_email=iro@example.org", "--set", "concern=Plan drift",
             "--set", "service_manager_email=sm@example.org", "--at", "2011-12-19",
             tmp=tmp_path)
    _icsflow(app, "fire", "C-1", "respond", "--actor", "tm-1", "--role", "team_manager",
             "--at", "2011-12-21", tmp=tmp_path)
    ticked = _icsflow(app, "tick", "--now", "2012-01-06T12:00", tmp=tmp_path).stdout
    assert "outbox: sent 2" in ticked
    listed = json.loads(_icsflow(app, "list", "--json", tmp=tmp_path).stdout)
    assert [c["state"] for c in listed] == ["alert_responded"]
    assert "sent" in _icsflow(app, "outbox", tmp=tmp_path).stdout
    assert '"raised": 1' in _icsflow(app, "report", "--as-at", "2012-03-31",
                                     "--format", "json", tmp=tmp_path).stdout
    _icsflow(app, "user", "add", "admin1", "--role", "iro_service_manager",
             "--password-stdin", tmp=tmp_path, stdin="a-long-password\n")

    assert "permission denied for schema icsflow" in _refused(app, "CREATE TABLE x (a int)")
    assert "permission denied for schema public" in _refused(app,
                                                             "CREATE TABLE public.x (a int)")
    assert "must be owner" in _refused(app, "DROP TABLE instances")
    assert "must be owner" in _refused(app, "ALTER TABLE history ADD COLUMN x int")
    assert "permission denied" in _refused(app, "TRUNCATE history")
    assert "must be owner" in _refused(app, "CREATE INDEX x ON instances (ref)")

    # A table a later migration adds is the application's to use at once (default privileges).
    owner_engine = sqlalchemy.create_engine(d.url(d.owner))
    with owner_engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE later (id bigint GENERATED BY DEFAULT AS IDENTITY, "
                             "note text)")
    owner_engine.dispose()
    app_engine = sqlalchemy.create_engine(app)
    with app_engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO later (note) VALUES ('granted')")
        assert conn.exec_driver_sql("SELECT note FROM later").scalar_one() == "granted"
    app_engine.dispose()


def test_a_pg_dump_backup_restores_into_a_scratch_database_and_over_the_live_one(
        deployment: Deployment, tmp_path: Path) -> None:
    d = deployment
    assert _roles_script(d).returncode == 0
    _icsflow(d.url(d.owner), "db", "upgrade", tmp=tmp_path)
    app = d.url(d.app)
    _start(app, "C-9", tmp_path)

    dump = tmp_path / "icsflow.dump"
    backup = subprocess.run(["pg_dump", "-Fc", "-f", str(dump), d.libpq(d.owner)],
                            capture_output=True, text=True, timeout=120)
    assert backup.returncode == 0, backup.stderr

    # The restore test: a scratch database, owned by the owner, read by report and list.
    scratch = d.db + "_restore"
    made = _psql_admin(d.admin, "-c", f"CREATE DATABASE {scratch} OWNER {d.owner}",
                       "-c", f"ALTER DATABASE {scratch} SET search_path = icsflow")
    assert made.returncode == 0, made.stderr
    restored = _pg_restore(d.admin, scratch, dump)
    assert restored.returncode == 0, restored.stderr
    url = d.url(d.owner, scratch)
    assert "C-9" in _icsflow(url, "list", tmp=tmp_path).stdout
    assert '"raised": 1' in _icsflow(url, "report", "--as-at", "2012-03-31", "--format", "json",
                                     tmp=tmp_path).stdout

    # A real restore over the live database: the later case is gone, the application role
    # works as before (the dump carries its grants).
    _start(app, "C-10", tmp_path)
    over = _pg_restore(d.admin, d.db, dump, "--clean", "--if-exists")
    assert over.returncode == 0, over.stderr
    listed = _icsflow(app, "list", tmp=tmp_path).stdout
    assert "C-9" in listed and "C-10" not in listed
    _start(app, "C-11", tmp_path)


def _start(url: str, ref: str, tmp: Path) -> None:
    _icsflow(url, "start", "alert_dispute", "--ref", ref, "--actor", "iro-1", "--role", "iro",
             "--set", "team_manager_email=tm@example.org", "--set", "iro_email=iro@example.org",
             "--set", "concern=Plan drift", "--set", "service_manager_email=sm@example.org",
             "--at", "2011-12-19", tmp=tmp)


def _pg_restore(admin: URL, db: str, dump: Path, *options: str,
                ) -> subprocess.CompletedProcess[str]:
    """pg_restore as the superuser (docs/deploy.md: sudo -u postgres pg_restore ...)."""
    target = admin.set(drivername="postgresql", database=db).render_as_string(
        hide_password=False)
    return subprocess.run(["pg_restore", *options, "--exit-on-error", "-d", target, str(dump)],
                          capture_output=True, text=True, timeout=120)
