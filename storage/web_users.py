"""Web users, their API tokens and the access log of children's records (0006_web_users).

The web application (``workflow/web``) and ``icsflow user`` keep their own small tables here,
apart from the engine's: a user is a name, a role (one of the definitions' roles), an argon2
password hash, a disabled flag and the login lock-out counters. Nothing here sees a clear
password: callers hash before they store and verify against what they read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
    update,
)
from sqlalchemy import Engine as SqlEngine

metadata = MetaData()

users = Table(
    "web_users", metadata,
    Column("name", String(100), primary_key=True),
    Column("role", String(100), nullable=False),
    Column("password_hash", String(300), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)

tokens = Table(
    "web_tokens", metadata,
    Column("digest", String(64), primary_key=True),
    Column("user_name", String(100), ForeignKey("web_users.name"), nullable=False),
    Column("label", String(200), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

access_log = Table(
    "web_access_log", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("user_name", String(100), nullable=False),
    Column("role", String(100), nullable=False),
    Column("child", String(200), nullable=True),
    Column("instance_id", String(36), nullable=True),
    Column("what", String(200), nullable=False),
)


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite keeps no offset: what was written as UTC comes back naive."""
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime cannot be stored")
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class UserRecord:
    name: str
    role: str
    password_hash: str
    disabled: bool
    failed_logins: int
    locked_until: datetime | None


@dataclass(frozen=True)
class AccessRecord:
    at: datetime
    user_name: str
    role: str
    child: str | None
    instance_id: str | None
    what: str


class UserStore:
    """The users, tokens and access-log tables on one SQLAlchemy engine."""

    def __init__(self, sql: SqlEngine) -> None:
        self.sql = sql

    # -- users ------------------------------------------------------------------------------

    def get(self, name: str) -> UserRecord | None:
        with self.sql.connect() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        if row is None:
            return None
        return UserRecord(row.name, row.role, row.password_hash, bool(row.disabled),
                          int(row.failed_logins), _aware(row.locked_until))

    def names(self) -> list[str]:
        with self.sql.connect() as conn:
            return [r[0] for r in conn.execute(select(users.c.name).order_by(users.c.name))]

    def add(self, name: str, role: str, password_hash: str, now: datetime) -> None:
        with self.sql.begin() as conn:
            conn.execute(insert(users).values(
                name=name, role=role, password_hash=password_hash, disabled=False,
                failed_logins=0, locked_until=None, created_at=_utc(now), changed_at=_utc(now)))

    def set_password(self, name: str, password_hash: str, now: datetime) -> bool:
        with self.sql.begin() as conn:
            done = conn.execute(update(users).where(users.c.name == name).values(
                password_hash=password_hash, failed_logins=0, locked_until=None,
                changed_at=_utc(now)))
        return bool(done.rowcount)

    def set_disabled(self, name: str, disabled: bool, now: datetime) -> bool:
        with self.sql.begin() as conn:
            done = conn.execute(update(users).where(users.c.name == name).values(
                disabled=disabled, changed_at=_utc(now)))
            if disabled:
                conn.execute(update(tokens).where(tokens.c.user_name == name,
                                                  tokens.c.revoked_at.is_(None))
                             .values(revoked_at=_utc(now)))
        return bool(done.rowcount)

    def login_failed(self, name: str, now: datetime, limit: int, lock_until: datetime) -> int:
        """Count one wrong password; at ``limit`` the account locks until ``lock_until``."""
        with self.sql.begin() as conn:
            conn.execute(update(users).where(users.c.name == name)
                         .values(failed_logins=users.c.failed_logins + 1))
            count = int(conn.execute(select(users.c.failed_logins)
                                     .where(users.c.name == name)).scalar_one())
            if count >= limit:
                conn.execute(update(users).where(users.c.name == name).values(
                    failed_logins=0, locked_until=_utc(lock_until)))
        return count

    def login_succeeded(self, name: str) -> None:
        with self.sql.begin() as conn:
            conn.execute(update(users).where(users.c.name == name)
                         .values(failed_logins=0, locked_until=None))

    # -- API tokens -------------------------------------------------------------------------

    def add_token(self, digest: str, user_name: str, label: str, now: datetime) -> None:
        with self.sql.begin() as conn:
            conn.execute(insert(tokens).values(digest=digest, user_name=user_name, label=label,
                                               created_at=_utc(now), revoked_at=None))

    def token_user(self, digest: str) -> str | None:
        with self.sql.connect() as conn:
            row = conn.execute(select(tokens.c.user_name).where(
                tokens.c.digest == digest, tokens.c.revoked_at.is_(None))).first()
        return None if row is None else str(row[0])

    # -- access log -------------------------------------------------------------------------

    def record_access(self, at: datetime, user_name: str, role: str, child: str | None,
                      instance_id: str | None, what: str) -> None:
        with self.sql.begin() as conn:
            conn.execute(insert(access_log).values(
                at=_utc(at), user_name=user_name, role=role, child=child,
                instance_id=instance_id, what=what[:200]))

    def accesses(self, child: str | None = None, limit: int = 200) -> Sequence[AccessRecord]:
        query = select(access_log).order_by(access_log.c.id.desc()).limit(limit)
        if child is not None:
            query = query.where(access_log.c.child == child)
        with self.sql.connect() as conn:
            rows = conn.execute(query).all()
        return [AccessRecord(_aware(r.at) or r.at, r.user_name, r.role, r.child, r.instance_id,
                             r.what) for r in rows]

    def count_accesses(self) -> int:
        with self.sql.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(access_log)).scalar_one())


__all__ = ["UserStore", "UserRecord", "AccessRecord", "metadata", "users", "tokens",
           "access_log"]
