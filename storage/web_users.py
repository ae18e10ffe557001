"""Web users and their API tokens (0006_web_users, 0007_sessions_audit).

The web application (``workflow/web``) and ``icsflow user`` keep their own small tables here,
apart from the engine's: a user is a name, a role (one of the definitions' roles), the
relationship attributes access is decided by (team, service, email address), an argon2
password hash and a disabled flag. Nothing here sees a clear password: callers hash before
they store and verify against what they read. A change that must end the user's sessions (a
new password, disabling, a new role) ends them in the same transaction.

``web_access_log`` and the lock-out columns (``failed_logins``, ``locked_until``) are left from
0006 and no longer written: the audit trail (``storage/audit.py``) and the sign-in throttle
(``storage/sessions.py``) replace them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

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
    insert,
    select,
    update,
)
from sqlalchemy import Engine as SqlEngine
from sqlalchemy.engine import Row

from icsflow.storage.sessions import end_user_sessions, forget_user_devices

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
    Column("team", String(200), nullable=True),
    Column("service", String(200), nullable=True),
    Column("email", String(320), nullable=True),
)

tokens = Table(
    "web_tokens", metadata,
    Column("digest", String(64), primary_key=True),
    Column("user_name", String(100), ForeignKey("web_users.name"), nullable=False),
    Column("label", String(200), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
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
    team: str | None = None
    service: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class TokenRecord:
    """An API token as listed: ``id`` is a prefix of its digest (never the token)."""

    digest: str
    user_name: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def id(self) -> str:
        return self.digest[:12]

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class Keep(Enum):
    """The type of ``KEEP``, "leave this attribute as it is" (``UserStore.change``,
    ``OidcStore.sign_in``): a type of its own, so the parameters that take it say so."""

    KEEP = "keep"


KEEP = Keep.KEEP
SEEN_EVERY = timedelta(seconds=60)


def _user(row: Row[Any]) -> UserRecord:
    return UserRecord(row.name, row.role, row.password_hash, bool(row.disabled),
                      int(row.failed_logins), _aware(row.locked_until), row.team, row.service,
                      row.email)


def _token(row: Row[Any]) -> TokenRecord:
    return TokenRecord(row.digest, row.user_name, row.label, _aware(row.created_at) or
                       row.created_at, _aware(row.expires_at), _aware(row.revoked_at),
                       _aware(row.last_used_at))


class UserStore:
    """The users and tokens tables on one SQLAlchemy engine."""

    def __init__(self, sql: SqlEngine) -> None:
        self.sql = sql

    # -- users ------------------------------------------------------------------------------

    def get(self, name: str) -> UserRecord | None:
        with self.sql.connect() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        return None if row is None else _user(row)

    def names(self) -> list[str]:
        with self.sql.connect() as conn:
            return [r[0] for r in conn.execute(select(users.c.name).order_by(users.c.name))]

    def add(self, name: str, role: str, password_hash: str, now: datetime, *,
            team: str | None = None, service: str | None = None,
            email: str | None = None) -> None:
        with self.sql.begin() as conn:
            conn.execute(insert(users).values(
                name=name, role=role, password_hash=password_hash, disabled=False,
                failed_logins=0, locked_until=None, created_at=_utc(now), changed_at=_utc(now),
                team=team, service=service, email=email))

    def set_password(self, name: str, password_hash: str, now: datetime) -> bool:
        """A new password ends every session and forgets every remembered device."""
        with self.sql.begin() as conn:
            done = conn.execute(update(users).where(users.c.name == name).values(
                password_hash=password_hash, failed_logins=0, locked_until=None,
                changed_at=_utc(now)))
            if done.rowcount:
                end_user_sessions(conn, name, now, "password changed")
                forget_user_devices(conn, name)
        return bool(done.rowcount)

    def set_disabled(self, name: str, disabled: bool, now: datetime) -> bool:
        """Disabling ends every session and revokes every token (enabling brings neither
        back)."""
        with self.sql.begin() as conn:
            done = conn.execute(update(users).where(users.c.name == name).values(
                disabled=disabled, changed_at=_utc(now)))
            if disabled and done.rowcount:
                conn.execute(update(tokens).where(tokens.c.user_name == name,
                                                  tokens.c.revoked_at.is_(None))
                             .values(revoked_at=_utc(now)))
                end_user_sessions(conn, name, now, "user disabled")
        return bool(done.rowcount)

    def change(self, name: str, now: datetime, *, role: str | Keep = KEEP,
               team: str | None | Keep = KEEP, service: str | None | Keep = KEEP,
               email: str | None | Keep = KEEP) -> bool:
        """Set the given attributes (None clears one); a new role ends the user's sessions."""
        values = {k: v for k, v in (("role", role), ("team", team), ("service", service),
                                    ("email", email)) if v is not KEEP}
        with self.sql.begin() as conn:
            before = conn.execute(select(users.c.role).where(users.c.name == name)).first()
            if before is None:
                return False
            conn.execute(update(users).where(users.c.name == name).values(
                changed_at=_utc(now), **values))
            if "role" in values and values["role"] != before.role:
                end_user_sessions(conn, name, now, "role changed")
        return True

    # -- API tokens -------------------------------------------------------------------------

    def add_token(self, digest: str, user_name: str, label: str, now: datetime,
                  expires_at: datetime | None = None) -> None:
        with self.sql.begin() as conn:
            conn.execute(insert(tokens).values(
                digest=digest, user_name=user_name, label=label, created_at=_utc(now),
                revoked_at=None, expires_at=_utc(expires_at) if expires_at else None,
                last_used_at=None))

    def token(self, digest: str, now: datetime) -> TokenRecord | None:
        """The live token with this digest (not revoked, not expired), its last use noted."""
        with self.sql.connect() as conn:
            row = conn.execute(select(tokens).where(tokens.c.digest == digest)).first()
        if row is None:
            return None
        record = _token(row)
        if not record.live(now):
            return None
        if record.last_used_at is None or now - record.last_used_at >= SEEN_EVERY:
            with self.sql.begin() as conn:
                conn.execute(update(tokens).where(tokens.c.digest == digest)
                             .values(last_used_at=_utc(now)))
        return record

    def token_user(self, digest: str, now: datetime | None = None) -> str | None:
        record = self.token(digest, now or datetime.now(UTC))
        return None if record is None else record.user_name

    def tokens_of(self, user_name: str) -> list[TokenRecord]:
        with self.sql.connect() as conn:
            rows = conn.execute(select(tokens).where(tokens.c.user_name == user_name)
                                .order_by(tokens.c.created_at)).all()
        return [_token(r) for r in rows]

    def revoke_token(self, user_name: str, token_id: str, now: datetime) -> list[TokenRecord]:
        """Revoke the user's live token whose id (digest prefix, 6+ characters) is
        ``token_id``; returns the tokens that matched (one, or none, or several: then none is
        revoked and the caller asks for a longer id)."""
        found = [t for t in self.tokens_of(user_name)
                 if len(token_id) >= 6 and t.digest.startswith(token_id.lower())]
        if len(found) == 1 and found[0].revoked_at is None:
            with self.sql.begin() as conn:
                conn.execute(update(tokens).where(tokens.c.digest == found[0].digest)
                             .values(revoked_at=_utc(now)))
        return found


__all__ = ["UserStore", "UserRecord", "TokenRecord", "KEEP", "Keep", "metadata", "users", "tokens",
           "access_log"]
