"""Who is asking: passwords (argon2), signed session cookies, CSRF tokens, API tokens, lock-out.

Why a signed cookie rather than a server-side session table: the session holds only the user's
name, when it was issued and a random id; every request re-reads the user (so ``icsflow user
disable`` takes effect at once) and the signature (HMAC-SHA256 with the server's secret) stops
forgery. The CSRF token is an HMAC of the session id, so it needs no storage either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from icsflow.storage.web_users import UserRecord, UserStore

SESSION_COOKIE = "icsflow_session"
SESSION_HOURS = 8
LOCKOUT_AFTER = 5  # wrong passwords in a row
LOCKOUT_MINUTES = 15
MIN_PASSWORD = 10

_hasher = PasswordHasher()
# A real hash to verify against when the user does not exist: the same work either way, so the
# time a login takes does not say whether a name is known.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class User:
    """The signed-in person or service: the engine's role checks use ``role``."""

    name: str
    role: str
    via: str = "session"  # session, token or proxy
    session_id: str = ""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "icsf_" + secrets.token_urlsafe(32)


class LoginRefused(Exception):
    """Wrong name or password, a disabled user, or a locked account (message for the page)."""


def check_login(store: UserStore, name: str, password: str, now: datetime) -> User:
    """The user if the password is right; otherwise ``LoginRefused`` (counted towards the
    lock-out). A locked account is refused even with the right password until the lock ends."""
    record = store.get(name)
    if record is not None and record.locked_until is not None and record.locked_until > now:
        password_matches(None, password)  # same cost as any other attempt
        raise LoginRefused("Too many wrong passwords: this account is locked for a while. "
                           "Try again later or ask an administrator.")
    ok = password_matches(record.password_hash if record else None, password)
    if record is None or not ok:
        if record is not None:
            count = store.login_failed(record.name, now, LOCKOUT_AFTER,
                                       now + timedelta(minutes=LOCKOUT_MINUTES))
            if count >= LOCKOUT_AFTER:
                raise LoginRefused("Too many wrong passwords: this account is locked for "
                                   f"{LOCKOUT_MINUTES} minutes.")
        raise LoginRefused("Wrong user name or password.")
    if record.disabled:
        raise LoginRefused("This user is disabled.")
    store.login_succeeded(record.name)
    return User(record.name, record.role)


def active_user(record: UserRecord | None) -> bool:
    return record is not None and not record.disabled


class Signer:
    """Signs and reads session cookies and derives CSRF tokens from one secret."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def _mac(self, payload: bytes) -> str:
        return base64.urlsafe_b64encode(
            hmac.new(self.secret, payload, hashlib.sha256).digest()).decode().rstrip("=")

    def session_cookie(self, user: str, now: datetime) -> str:
        body = json.dumps({"u": user, "t": int(now.timestamp()),
                           "s": secrets.token_urlsafe(16)}, separators=(",", ":")).encode()
        payload = base64.urlsafe_b64encode(body).decode().rstrip("=")
        return f"{payload}.{self._mac(payload.encode())}"

    def read_session(self, cookie: str | None, now: datetime) -> dict[str, Any] | None:
        """The session's fields if the cookie is ours and not expired, else None."""
        if not cookie or "." not in cookie:
            return None
        payload, mac = cookie.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac(payload.encode())):
            return None
        try:
            body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(body, dict) or not isinstance(body.get("u"), str):
            return None
        issued = int(body.get("t", 0))
        if now.timestamp() - issued > SESSION_HOURS * 3600 or issued > now.timestamp() + 60:
            return None
        return body

    def csrf_token(self, session_id: str) -> str:
        return self._mac(b"csrf:" + session_id.encode())

    def csrf_ok(self, session_id: str, given: str | None) -> bool:
        return bool(given) and bool(session_id) and hmac.compare_digest(
            self.csrf_token(session_id), given or "")


__all__ = ["User", "Signer", "LoginRefused", "check_login", "hash_password",
           "password_matches", "token_digest", "new_token", "active_user", "SESSION_COOKIE",
           "LOCKOUT_AFTER", "LOCKOUT_MINUTES", "MIN_PASSWORD"]
