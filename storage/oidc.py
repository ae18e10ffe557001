"""Sign-in through an identity provider: sign-ins under way, and which provider subject is
which icsflow user (migration 0008_oidc_sign_in).

Why on the server: between sending the browser to the provider and its coming back, icsflow
must remember the sign-in's ``state``, ``nonce`` and PKCE ``code_verifier``. A row here (keyed
by the SHA-256 of the state, bound to the browser by the SHA-256 of a cookie's random value)
works in every worker without a shared secret, is taken exactly once (a replayed callback
finds nothing), and expires. Nothing a user typed is kept.

Why a link table: a user name is what the provider calls someone today (``preferred_username``
can change, or be given to someone else later), while ``(issuer, sub)`` is the provider's
permanent name for them. The first sign-in links the subject to the icsflow user; later
sign-ins find the user by the link, and a new subject claiming a linked user's name is refused.
Creating or updating the user and linking happen in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, DateTime, MetaData, String, Table, delete, insert, select, update
from sqlalchemy import Engine as SqlEngine

from icsflow.storage.sessions import aware, digest_of, end_user_sessions, sessions, utc
from icsflow.storage.web_users import KEEP, Keep, users

metadata = MetaData()

pending = Table(
    "web_oidc_pending", metadata,
    Column("state_digest", String(64), primary_key=True),
    Column("browser_digest", String(64), nullable=False),
    Column("nonce", String(128), nullable=False),
    Column("code_verifier", String(128), nullable=False),
    Column("next_path", String(2000), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
)

identities = Table(
    "web_oidc_identities", metadata,
    Column("issuer", String(300), primary_key=True),
    Column("subject", String(255), primary_key=True),
    Column("user_name", String(100), nullable=False, unique=True),
    Column("linked_at", DateTime(timezone=True), nullable=False),
    Column("last_sign_in_at", DateTime(timezone=True), nullable=False),
)

PENDING_MINUTES = 10  # a sign-in must come back from the provider within this
NO_PASSWORD = "!oidc"  # the password hash of a user made by the provider: never matches


@dataclass(frozen=True)
class PendingSignIn:
    """A sign-in sent to the provider and not yet back."""

    browser_digest: str
    nonce: str
    code_verifier: str
    next_path: str
    created_at: datetime


@dataclass(frozen=True)
class Outcome:
    """What ``SignOnStore.sign_in`` did: the user's name, and in words what changed
    (``created``, ``role iro -> cpc``, ``linked``), for the audit."""

    user_name: str
    changes: tuple[str, ...]
    disabled: bool
    role: str


class Refused(Exception):
    """The identity cannot be this user (a name linked to another subject)."""


class SignOnStore:
    """Sign-ins under way and provider links, on one SQLAlchemy engine."""

    def __init__(self, sql: SqlEngine) -> None:
        self.sql = sql

    # -- sign-ins under way -----------------------------------------------------------------

    def begin(self, state: str, browser: str, nonce: str, code_verifier: str, next_path: str,
              now: datetime) -> None:
        """Remember a sign-in sent to the provider (and forget those long abandoned)."""
        with self.sql.begin() as conn:
            conn.execute(delete(pending).where(
                pending.c.created_at < utc(now - timedelta(minutes=PENDING_MINUTES))))
            conn.execute(insert(pending).values(
                state_digest=digest_of(state), browser_digest=digest_of(browser), nonce=nonce,
                code_verifier=code_verifier, next_path=next_path[:2000], created_at=utc(now)))

    def take(self, state: str, now: datetime) -> PendingSignIn | None:
        """The sign-in with this state, removed so it cannot be used twice; None when there
        is none, or it is older than ``PENDING_MINUTES``."""
        key = digest_of(state)
        with self.sql.begin() as conn:
            row = conn.execute(select(pending).where(pending.c.state_digest == key)).first()
            if row is None:
                return None
            taken = conn.execute(delete(pending).where(pending.c.state_digest == key))
            if not taken.rowcount:
                return None  # another request took it first
        created = aware(row.created_at) or now
        if now - created > timedelta(minutes=PENDING_MINUTES):
            return None
        return PendingSignIn(row.browser_digest, row.nonce, row.code_verifier, row.next_path,
                             created)

    # -- users and links --------------------------------------------------------------------

    def linked_user(self, issuer: str, subject: str) -> str | None:
        with self.sql.connect() as conn:
            name = conn.execute(select(identities.c.user_name).where(
                identities.c.issuer == issuer, identities.c.subject == subject)).scalar()
        return None if name is None else str(name)

    def sign_in(self, issuer: str, subject: str, name: str, role: str, now: datetime, *,
                email: str | None | Keep = KEEP, team: str | None | Keep = KEEP,
                service: str | None | Keep = KEEP) -> Outcome:
        """Create or update the user the provider vouched for and link the subject, in one
        transaction. The user is the one linked to ``(issuer, subject)``, else ``name``
        (linked now). A new role ends the user's other sessions, as ``icsflow user set``
        does; a disabled user is left as they are (``Outcome.disabled``). Raises ``Refused``
        when ``name`` is linked to another subject."""
        given = {k: v for k, v in (("email", email), ("team", team), ("service", service))
                 if v is not KEEP and v is not None}
        with self.sql.begin() as conn:
            linked = conn.execute(select(identities.c.user_name).where(
                identities.c.issuer == issuer, identities.c.subject == subject)).scalar()
            user_name = str(linked) if linked is not None else name
            if linked is None:
                other = conn.execute(select(identities.c.subject).where(
                    identities.c.user_name == user_name)).scalar()
                if other is not None:
                    raise Refused(f"the icsflow user {user_name!r} belongs to another account "
                                  "at the identity provider")
            row = conn.execute(select(users).where(users.c.name == user_name)).first()
            if row is not None and row.disabled:
                return Outcome(user_name, (), True, str(row.role))  # nothing changes
            changes: list[str] = []
            if row is None:
                conn.execute(insert(users).values(
                    name=user_name, role=role, password_hash=NO_PASSWORD, disabled=False,
                    failed_logins=0, locked_until=None, created_at=utc(now),
                    changed_at=utc(now), **given))
                changes.append(f"created with role {role}")
            else:
                values = {k: v for k, v in given.items() if getattr(row, k) != v}
                if row.role != role:
                    values["role"] = role
                    end_user_sessions(conn, user_name, now, "role changed")
                if values:
                    conn.execute(update(users).where(users.c.name == user_name)
                                 .values(changed_at=utc(now), **values))
                    changes += [f"{k} {getattr(row, k) or '(none)'} -> {v}"
                                for k, v in values.items()]
            if linked is None:
                conn.execute(insert(identities).values(
                    issuer=issuer, subject=subject, user_name=user_name, linked_at=utc(now),
                    last_sign_in_at=utc(now)))
                changes.append("linked to the identity provider's account")
            else:
                conn.execute(update(identities).where(
                    identities.c.issuer == issuer, identities.c.subject == subject)
                    .values(last_sign_in_at=utc(now)))
        return Outcome(user_name, tuple(changes), False, role)

    def session_via(self, raw_session: str) -> str | None:
        """How the session behind a cookie began (``password``, ``oidc``), or None."""
        with self.sql.connect() as conn:
            via = conn.execute(select(sessions.c.via).where(
                sessions.c.digest == digest_of(raw_session))).scalar()
        return None if via is None else str(via)


__all__ = ["SignOnStore", "PendingSignIn", "Outcome", "Refused", "metadata", "pending",
           "identities", "PENDING_MINUTES", "NO_PASSWORD", "KEEP"]
