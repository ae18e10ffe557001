"""Server-side web sessions, remembered devices, break-glass grants and sign-in throttling
(migration 0007_sessions_audit).

Why on the server: a signed cookie cannot be taken back. Here the cookie carries only a random
id; the table keeps its SHA-256 digest (a stolen copy of the database yields no usable cookie),
who it belongs to, when it began and was last seen, from where, and when and why it ended.
Signing out, a password change, disabling the user and a role change end the user's sessions
in the same transaction as the change, so an old cookie answers 401 at once.

Throttling counts failed sign-ins by opaque keys the web layer derives (a hash of account and
address, of the address, of the account): the typed name is never stored in clear.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy import Engine as SqlEngine
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

metadata = MetaData()

sessions = Table(
    "web_sessions", metadata,
    Column("digest", String(64), primary_key=True),
    Column("user_name", String(100), nullable=False, index=True),
    Column("role", String(100), nullable=False),
    Column("via", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("ip", String(64), nullable=False, default=""),
    Column("user_agent", String(300), nullable=False, default=""),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("end_reason", String(100), nullable=True),
)

devices = Table(
    "web_devices", metadata,
    Column("digest", String(64), primary_key=True),
    Column("user_name", String(100), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=False),
)

grants = Table(
    "web_break_glass", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("session_digest", String(64), nullable=False, index=True),
    Column("user_name", String(100), nullable=False),
    Column("child", String(200), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

throttle = Table(
    "web_login_throttle", metadata,
    Column("key", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", DateTime(timezone=True), nullable=False, index=True),
    Column("next_allowed_at", DateTime(timezone=True), nullable=False),
)

SEEN_EVERY = timedelta(seconds=60)  # last_seen is written at most this often
DEVICE_DAYS = 180


def printable(text: str) -> str:
    """What a client sent (its browser's name), without the control characters that would
    rewrite the terminal of an administrator listing sessions."""
    return "".join(ch for ch in text if ch.isprintable())


def digest_of(raw: str) -> str:
    """What the database keeps of a cookie or token: its SHA-256 (the raw value is 256 random
    bits, so a fast digest is enough and no salt is needed)."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def aware(moment: datetime | None) -> datetime | None:
    """SQLite keeps no offset: what was written as UTC comes back naive."""
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime cannot be stored")
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class SessionRecord:
    digest: str
    user_name: str
    role: str
    via: str
    created_at: datetime
    last_seen_at: datetime
    ip: str
    user_agent: str
    ended_at: datetime | None
    end_reason: str | None

    @property
    def short_id(self) -> str:
        """What ``icsflow user sessions`` shows (a prefix of the digest, never the cookie)."""
        return self.digest[:12]


def _session(r: Row[Any]) -> SessionRecord:
    return SessionRecord(r.digest, r.user_name, r.role, r.via,
                         aware(r.created_at) or r.created_at,
                         aware(r.last_seen_at) or r.last_seen_at,
                         r.ip, r.user_agent, aware(r.ended_at), r.end_reason)


def end_user_sessions(conn: Connection, user_name: str, now: datetime, reason: str) -> int:
    """End every live session of ``user_name`` inside the caller's transaction."""
    done = conn.execute(update(sessions).where(
        sessions.c.user_name == user_name, sessions.c.ended_at.is_(None)).values(
        ended_at=utc(now), end_reason=reason[:100]))
    return int(done.rowcount or 0)


def forget_user_devices(conn: Connection, user_name: str) -> None:
    conn.execute(delete(devices).where(devices.c.user_name == user_name))


class SessionStore:
    """Sessions, remembered devices and break-glass grants on one SQLAlchemy engine."""

    def __init__(self, sql: SqlEngine) -> None:
        self.sql = sql

    def start(self, user_name: str, role: str, via: str, now: datetime, ip: str = "",
              user_agent: str = "") -> str:
        """A new session; returns the raw id for the cookie (only its digest is stored)."""
        raw = secrets.token_urlsafe(32)
        with self.sql.begin() as conn:
            conn.execute(insert(sessions).values(
                digest=digest_of(raw), user_name=user_name, role=role, via=via[:100],
                created_at=utc(now), last_seen_at=utc(now), ip=printable(ip)[:64],
                user_agent=printable(user_agent)[:300], ended_at=None, end_reason=None))
        return raw

    def current(self, raw: str, now: datetime, *, idle: timedelta,
                absolute: timedelta) -> SessionRecord | None:
        """The live session behind a cookie, its last-seen moment moved on; an idle or too
        old one is ended (and None returned)."""
        key = digest_of(raw)
        with self.sql.connect() as conn:
            row = conn.execute(select(sessions).where(sessions.c.digest == key)).first()
            conn.rollback()
        if row is None:
            return None
        record = _session(row)
        if record.ended_at is not None:
            return None
        reason = ("idle" if now - record.last_seen_at > idle else
                  "expired" if now - record.created_at > absolute else None)
        if reason is not None:
            self.end(raw, now, reason)
            return None
        if now - record.last_seen_at >= SEEN_EVERY:
            with self.sql.begin() as conn:
                conn.execute(update(sessions).where(sessions.c.digest == key,
                                                    sessions.c.ended_at.is_(None))
                             .values(last_seen_at=utc(now)))
        return record

    def end(self, raw: str, now: datetime, reason: str) -> bool:
        return self.end_digest(digest_of(raw), now, reason)

    def end_digest(self, digest: str, now: datetime, reason: str) -> bool:
        with self.sql.begin() as conn:
            done = conn.execute(update(sessions).where(
                sessions.c.digest == digest, sessions.c.ended_at.is_(None)).values(
                ended_at=utc(now), end_reason=reason[:100]))
        return bool(done.rowcount)

    def end_for_user(self, user_name: str, now: datetime, reason: str) -> int:
        with self.sql.begin() as conn:
            return end_user_sessions(conn, user_name, now, reason)

    def for_user(self, user_name: str, limit: int = 200) -> list[SessionRecord]:
        """The user's sessions, newest first (ended ones too: they are the record)."""
        with self.sql.connect() as conn:
            rows = conn.execute(select(sessions).where(sessions.c.user_name == user_name)
                                .order_by(sessions.c.created_at.desc()).limit(limit)).all()
        return [_session(r) for r in rows]

    # -- remembered devices (a browser that signed in before skips the account throttle) ----

    def remember_device(self, user_name: str, now: datetime) -> str:
        raw = secrets.token_urlsafe(32)
        with self.sql.begin() as conn:
            conn.execute(insert(devices).values(digest=digest_of(raw), user_name=user_name,
                                                created_at=utc(now), last_used_at=utc(now)))
        return raw

    def device_user(self, raw: str, now: datetime) -> str | None:
        """The user a device cookie remembers, if it is ours and not older than 180 days."""
        with self.sql.connect() as conn:
            row = conn.execute(select(devices).where(devices.c.digest == digest_of(raw))).first()
        if row is None:
            return None
        if now - (aware(row.created_at) or now) > timedelta(days=DEVICE_DAYS):
            return None
        return str(row.user_name)

    # -- break-glass grants (the web page's "open with a reason", for a while) --------------

    def grant(self, session_digest: str, user_name: str, child: str, reason: str,
              now: datetime, until: datetime) -> None:
        with self.sql.begin() as conn:
            conn.execute(insert(grants).values(
                session_digest=session_digest, user_name=user_name, child=child[:200],
                reason=reason[:500], granted_at=utc(now), expires_at=utc(until)))

    def granted(self, session_digest: str, child: str, now: datetime) -> str | None:
        """The reason of a live break-glass grant of this session on this child, if any."""
        with self.sql.connect() as conn:
            row = conn.execute(select(grants.c.reason, grants.c.expires_at).where(
                grants.c.session_digest == session_digest, grants.c.child == child)
                .order_by(grants.c.id.desc()).limit(1)).first()
        if row is None or (aware(row.expires_at) or now) <= now:
            return None
        return str(row.reason)


@dataclass(frozen=True)
class ThrottleState:
    failures: int
    next_allowed_at: datetime


class ThrottleStore:
    """Failed sign-ins per opaque key: how many, and when the next attempt is accepted."""

    def __init__(self, sql: SqlEngine) -> None:
        self.sql = sql

    def states(self, keys: Sequence[str], since: datetime) -> dict[str, ThrottleState]:
        """The keys' counts; a key whose last failure is before ``since`` counts as clean."""
        if not keys:
            return {}
        with self.sql.connect() as conn:
            rows = conn.execute(select(throttle).where(
                throttle.c.key.in_(list(keys)),
                throttle.c.last_failure_at >= utc(since))).all()
        return {r.key: ThrottleState(int(r.failures), aware(r.next_allowed_at) or since)
                for r in rows}

    def failed(self, delays: Mapping[str, Callable[[int], float]], now: datetime,
               since: datetime) -> dict[str, ThrottleState]:
        """Count one failure on each key; ``delays[key](n)`` is the wait after the n-th.
        A count older than ``since`` starts again from one."""
        out: dict[str, ThrottleState] = {}
        for attempt in range(3):
            try:
                with self.sql.begin() as conn:
                    rows = {r.key: r for r in conn.execute(select(throttle).where(
                        throttle.c.key.in_(list(delays))).with_for_update()).all()}
                    for key, delay in delays.items():
                        row = rows.get(key)
                        fresh = row is None or (aware(row.last_failure_at) or now) < since
                        count = 1 if fresh else int(row.failures) + 1  # type: ignore[union-attr]
                        until = now + timedelta(seconds=delay(count))
                        values = {"failures": count, "last_failure_at": utc(now),
                                  "next_allowed_at": utc(until)}
                        if row is None:
                            conn.execute(insert(throttle).values(key=key, **values))
                        else:
                            conn.execute(update(throttle).where(throttle.c.key == key)
                                         .values(**values))
                        out[key] = ThrottleState(count, until)
                return out
            except IntegrityError:  # two workers inserted the same new key: count again
                if attempt == 2:
                    raise
        return out

    def clear(self, keys: Sequence[str]) -> None:
        if keys:
            with self.sql.begin() as conn:
                conn.execute(delete(throttle).where(throttle.c.key.in_(list(keys))))

    def purge(self, before: datetime) -> int:
        """Forget counts whose last failure is older than ``before``."""
        with self.sql.begin() as conn:
            done = conn.execute(delete(throttle).where(
                and_(throttle.c.last_failure_at < utc(before))))
        return int(done.rowcount or 0)


__all__ = ["SessionStore", "SessionRecord", "ThrottleStore", "ThrottleState", "digest_of",
           "end_user_sessions", "forget_user_devices", "printable", "metadata", "sessions",
           "devices", "grants", "throttle", "aware", "utc", "SEEN_EVERY", "DEVICE_DAYS"]
