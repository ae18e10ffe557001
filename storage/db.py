"""Database URLs, engines and migrations: the only place that knows SQLite from PostgreSQL."""

from __future__ import annotations

import os
import select
import sqlite3
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection, QueuePool

from icsflow.workflow.errors import ConfigurationError, NoDatabase, SchemaOutOfDate

if TYPE_CHECKING:
    from alembic.config import Config

DEFAULT_URL = "sqlite:///icsflow.db"


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use psycopg 3 for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def create_db_engine(url: str, *, create: bool = True, read_only: bool = False,
                     **kwargs: object) -> Engine:
    """An Engine set up for us: SQLite in WAL with foreign keys, a busy timeout and
    ``BEGIN IMMEDIATE`` (one writer at a time, no snapshot upgrade failures).

    ``create=False``: a missing SQLite file is ``NoDatabase``, never created (nor its folders).
    ``read_only``: SQLite is opened read-only (``mode=ro``; a read-only file works), nothing is
    ever written."""
    url = normalise_url(url)
    # Bound values are case data: keep them out of exception texts (and so out of logs).
    kwargs.setdefault("hide_parameters", True)
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy raises ArgumentError
        raise ConfigurationError(f"invalid database URL {url!r}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        on_disk = bool(database) and database != ":memory:" and not database.startswith("file:")
        if on_disk and not (create and not read_only) and not Path(database).is_file():
            raise NoDatabase(f"no database at {database} (`icsflow db upgrade` or "
                             "`icsflow start` creates one)")
        if on_disk and create and not read_only:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            _create_private(Path(database))
        connect_args: dict[str, Any] = {"timeout": 30, "check_same_thread": False}
        if on_disk and read_only:
            url = _read_only_url(Path(database))
            connect_args["uri"] = True
        # A file database keeps its connections (a small pool) for the engine's life: opening
        # one costs four PRAGMAs, and closing the last one checkpoints the WAL, which made
        # connect-per-operation (NullPool) cost more than the transaction itself.
        pool: dict[str, Any] = {"poolclass": QueuePool, "pool_size": 5, "max_overflow": 10} \
            if database not in ("", ":memory:") else {}
        engine = create_engine(url, connect_args=connect_args, **{**pool, **kwargs})
        _sqlite_events(engine, read_only=read_only and on_disk)
        return engine
    if parsed.get_backend_name() == "postgresql":
        engine = create_engine(url, **kwargs)
        _postgresql_events(engine)
        return engine
    raise ConfigurationError(f"unsupported database {parsed.get_backend_name()!r}: use "
                             "sqlite:///FILE or postgresql://USER@HOST/DB")


def _create_private(path: Path) -> None:
    """Create a new SQLite file readable by its owner only (0600): it holds children's data
    and password hashes. SQLite gives its -wal and -shm files the database file's mode, so
    creating the file first, whatever the umask, covers them too. An existing file is left as
    it is (its owner chose its mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _read_only_url(path: Path) -> str:
    """``mode=ro``; a WAL database in a folder we cannot write (no -shm to create) is opened
    ``immutable``, which SQLite allows for a file nobody can change."""
    from urllib.parse import quote

    target = quote(str(path.resolve()))
    writable = os.access(path.parent, os.W_OK) or Path(f"{path}-shm").exists()
    mode = "mode=ro" if writable else "mode=ro&immutable=1"
    return f"sqlite:///file:{target}?{mode}&uri=true"


def _sqlite_events(engine: Engine, *, read_only: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        if not read_only:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        if not read_only:
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Straight on the driver's connection (sqlite3's, on this engine): through
        # exec_driver_sql this cost as much as a one-row write.
        raw = cast(sqlite3.Connection, conn.connection.dbapi_connection)
        raw.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")


class _Socketed(Protocol):
    """A driver connection on a socket (psycopg's), as the checkout test looks at it."""

    def fileno(self) -> int: ...


def _postgresql_events(engine: Engine) -> None:
    @event.listens_for(engine, "checkout")
    def _alive(dbapi_conn: _Socketed, _record: ConnectionPoolEntry,
               _proxy: PoolProxiedConnection) -> None:
        """A pooled connection whose server went away (a restart, a failover, a proxy or
        ``idle_session_timeout`` closing it) has something to read on its socket: the end of
        the stream or the server's last FATAL message; a healthy idle one has nothing. Looked
        at locally, with no round trip (``pool_pre_ping`` sent one before every transaction,
        a tenth of a ``fire``). ``DisconnectionError`` makes the pool drop the connection and
        hand out another, so a restarted database still costs no failed call."""
        if getattr(dbapi_conn, "closed", False) or getattr(dbapi_conn, "broken", False):
            raise DisconnectionError("the connection was closed")
        try:
            readable, _, _ = select.select([dbapi_conn.fileno()], [], [], 0)
        except (OSError, ValueError) as exc:
            raise DisconnectionError(f"the connection's socket is gone: {exc}") from exc
        if readable:
            raise DisconnectionError("the server closed the connection or sent an error")


HEAD_REVISION = "0008_oidc_sign_in"
"""The newest shipped migration. Every command asks whether the database is at it; reading
that from the migration scripts means importing Alembic (a fifth of a CLI command's start-up),
so it is written here, and tests/unit/test_head_revision.py checks it is Alembic's own head.
Alembic itself is imported only when a database has to be migrated."""


def _alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(files("icsflow.storage") / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision(engine: Engine) -> str | None:
    """The revision this icsflow's schema is at (``HEAD_REVISION``)."""
    return HEAD_REVISION


def scripts_head(engine: Engine) -> str | None:
    """The head of the shipped migration scripts, as Alembic reads them."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for a database Alembic never ran on)."""
    with engine.connect() as conn:
        rev = None
        if inspect(conn).has_table("alembic_version"):
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
            if len(rows) > 1:
                raise SchemaOutOfDate(f"the database has several schema revisions ("
                                      f"{', '.join(sorted(rows))}): it was not made by icsflow")
            rev = rows[0] if rows else None
        conn.rollback()
        return rev


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the migrations shipped in the package (``icsflow db upgrade``)."""
    from alembic import command

    command.upgrade(_alembic_config(engine), revision)


def is_empty(engine: Engine) -> bool:
    with engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
        conn.rollback()
    return not ({"instances", "timers", "alembic_version"} & names)


def ensure_schema(engine: Engine, *, migrate: bool | None = None, create: bool = True) -> None:
    """Create/upgrade an embedded SQLite (or an empty database) on first use; refuse to run on
    an out-of-date PostgreSQL schema, which an operator upgrades deliberately. ``create=False``:
    an empty database is ``NoDatabase`` (a read command never creates the tables)."""
    head = head_revision(engine)
    current = current_revision(engine)
    if current == head:
        return
    if not create and current is None and is_empty(engine):
        raise NoDatabase(f"no icsflow database at {engine.url.render_as_string()} (`icsflow "
                         "db upgrade` or `icsflow start` creates one)")
    auto = migrate if migrate is not None else (
        engine.dialect.name == "sqlite" or is_empty(engine))
    if auto:
        upgrade(engine)
        return
    raise SchemaOutOfDate(f"the database schema is at revision {current or 'none'}, this "
                          f"icsflow needs {head}: run `icsflow db upgrade`")


__all__ = ["DEFAULT_URL", "normalise_url", "create_db_engine", "upgrade", "ensure_schema",
           "current_revision", "head_revision", "scripts_head", "HEAD_REVISION"]
