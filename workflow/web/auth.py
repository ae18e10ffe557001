"""Who is asking: passwords (argon2), session and device cookies, CSRF tokens, API tokens.

Sessions live on the server (``storage/sessions.py``): the cookie carries only a random id
(256 bits), the database its SHA-256, so a session can be ended (sign-out, a new password,
disabling, a new role, ``icsflow user sessions NAME --revoke``) and an old cookie then answers
401 at once. The CSRF token of a form is an HMAC keyed by that random id, so it needs no
server secret and works alike in every worker; only a single sign-on user (no cookie of
ours) gets one keyed by the server's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from icsflow.workflow.access import Principal

SESSION_COOKIE = "icsflow_session"
DEVICE_COOKIE = "icsflow_device"  # a browser that signed in before (see web/throttle.py)
PRE_COOKIE = "icsflow_pre"  # the anonymous CSRF id of the sign-in form
SESSION_HOURS = 8  # the default absolute lifetime (web.session_absolute_hours)
MIN_PASSWORD = 10
TOKEN_DAYS = 90  # an API token's default lifetime (icsflow user token --expires)

_hasher = PasswordHasher()
# A real hash to verify against when the user does not exist: the same work either way, so the
# time a sign-in takes does not say whether a name is known.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class User:
    """The signed-in person or service. ``via`` is how: ``session`` (a cookie of ours; its
    raw id is ``session_id``), ``token`` or ``proxy``; ``credential`` names the session or
    token for the audit (a digest prefix, never the secret)."""

    name: str
    role: str
    via: str = "session"
    session_id: str = ""
    team: str | None = None
    service: str | None = None
    email: str | None = None
    credential: str = ""

    @property
    def principal(self) -> Principal:
        return Principal(self.name, self.role, self.team, self.service, self.email)


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """argon2 verification; an unknown user (None) costs the same and never matches."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "icsf_" + secrets.token_urlsafe(32)


def _mac(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def csrf_token(session_id: str, secret: bytes = b"") -> str:
    """The form token of a session: an HMAC keyed by its random id (a page on another site
    cannot read the cookie, so it cannot make the token). A proxy user's "session" is their
    name, which anyone knows, so theirs is keyed by the server's secret as well."""
    if session_id.startswith("proxy:"):
        return _mac(secret + b"\0" + session_id.encode("utf-8"), b"csrf")
    return _mac(session_id.encode("utf-8"), b"csrf")


def csrf_ok(session_id: str, given: str | None, secret: bytes = b"") -> bool:
    return bool(given) and bool(session_id) and hmac.compare_digest(
        csrf_token(session_id, secret), given or "")


def login_csrf(pre_id: str) -> str:
    """The sign-in form's token, keyed by the anonymous pre-session cookie."""
    return _mac(pre_id.encode("utf-8"), b"login")


def login_csrf_ok(pre_id: str, given: str | None) -> bool:
    return bool(pre_id) and bool(given) and hmac.compare_digest(login_csrf(pre_id), given or "")


__all__ = ["User", "hash_password", "password_matches", "token_digest", "new_token",
           "csrf_token", "csrf_ok", "login_csrf", "login_csrf_ok", "SESSION_COOKIE",
           "DEVICE_COOKIE", "PRE_COOKIE", "SESSION_HOURS", "MIN_PASSWORD", "TOKEN_DAYS"]
