"""What every request handler shares: the ``Web`` object (engine, users, sessions, audit,
policy, settings, templates), its settings, and the two refusals the handlers raise.

``create_app`` (``app.py``) builds one ``Web`` and the route modules (``pages``, ``api``,
``signon``) reach it through ``web_of(request)``; they import this module and never ``app.py``,
so no module imports one that imports it back.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from icsflow.storage.audit import AuditStore
from icsflow.storage.sessions import SessionStore, ThrottleStore
from icsflow.storage.web_users import UserRecord, UserStore
from icsflow.workflow.access import AccessPolicy
from icsflow.workflow.clock import Clock, SystemClock
from icsflow.workflow.commands import sql_engine
from icsflow.workflow.errors import (
    ConcurrencyConflict,
    InstanceNotFound,
    InvalidTransition,
    PermissionDenied,
    ValidationError,
    WorkflowError,
)
from icsflow.workflow.identity import OidcConfig
from icsflow.workflow.web.auth import (
    SESSION_COOKIE,
    SESSION_HOURS,
    User,
    csrf_ok,
    csrf_token,
    password_matches,
    token_digest,
)
from icsflow.workflow.web.gate import BODY_TIMEOUT, Networks
from icsflow.workflow.web.guard import Guard
from icsflow.workflow.web.labels import Labels
from icsflow.workflow.web.throttle import Throttle
from icsflow.workflow.web.today import TodayView, today_view

if TYPE_CHECKING:  # the route modules import this one; signon imports it too
    from icsflow.workflow.engine import Engine
    from icsflow.workflow.web.signon import SignOn

HERE = Path(__file__).resolve().parent

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass
class WebSettings:
    """How the server trusts its surroundings.

    ``trusted_proxies`` (addresses or networks; none by default, configuration key
    ``web.trusted_proxies``) are the peers whose ``X-Forwarded-For``/``-Proto`` are believed
    and, when ``proxy_header`` is set, whose header naming the signed-in user is (single
    sign-on). ``secure_cookies`` None means: Secure when the request came over HTTPS.
    ``secret`` keys only the CSRF tokens of single sign-on users (sessions need none).
    ``public_paths`` are extra paths that answer without a session. ``oidc`` (with
    ``base_url``, the address users reach icsflow at, and the client secret) turns on sign-in
    through the council's identity provider.
    """

    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    proxy_header: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    secure_cookies: bool | None = None
    allocation_definition: str = "initial_review"
    allocation_state: str = "awaiting_allocation"
    band: tuple[int, int] = (50, 70)
    today_cache_seconds: float = 2.0
    session_idle: timedelta = timedelta(minutes=30)
    session_absolute: timedelta = timedelta(hours=SESSION_HOURS)
    access: AccessPolicy = field(default_factory=AccessPolicy)
    break_glass_minutes: int = 60
    body_timeout: float = BODY_TIMEOUT
    public_paths: tuple[str, ...] = ()
    base_url: str | None = None
    oidc: OidcConfig | None = None
    oidc_client_secret: str = field(default="", repr=False)
    # argon2 verifications at once: each takes 64 MiB and a core for a moment
    password_workers: int = field(default_factory=lambda: min(4, os.cpu_count() or 2))
    wall_clock: Clock = field(default_factory=SystemClock)  # sessions, tokens, throttle, audit


def breakable_address(text: str | None) -> Markup:
    """An email address that may break before its ``@`` and after its dots, so a narrow
    table column wraps it at those places instead of letter by letter."""
    escaped = str(escape(text or ""))
    return Markup(escaped.replace("@", "<wbr>@").replace(".", ".<wbr>"))


class NeedLogin(Exception):
    """No (valid) session: pages go to /login, the API answers 401."""


class CsrfRefused(Exception):
    """A state-changing request without the form's (or header's) CSRF token."""


class Web:
    """What every request handler shares: engine, users, sessions, audit, policy, settings."""

    def __init__(self, engine: Engine, users: UserStore, settings: WebSettings) -> None:
        self.engine = engine
        self.users = users
        self.settings = settings
        self.sessions = SessionStore(users.sql)
        self.audit = AuditStore(users.sql)
        self.throttle = Throttle(ThrottleStore(users.sql))
        self.guard = Guard(self)
        self.trusted = Networks(settings.trusted_proxies)
        self.public_paths = tuple(settings.public_paths)
        self.signon: SignOn | None = None  # set when web.oidc is (create_app)
        self.security_headers = dict(SECURITY_HEADERS)
        self.body_timeout = settings.body_timeout
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals["quote"] = quote
        self.templates.env.filters["local"] = self.local_text
        self.templates.env.filters["addr"] = breakable_address
        self.labels = Labels(engine.definitions)
        self.templates.env.globals["labels"] = self.labels
        # argon2 runs here, never on the event loop nor in the request thread pool: a burst of
        # sign-ins waits its turn without taking the threads other requests need.
        self.password_pool = ThreadPoolExecutor(max_workers=max(1, settings.password_workers),
                                                thread_name_prefix="icsflow-argon2")
        self.password_check = password_matches
        self._today_cache: dict[date, tuple[float, TodayView]] = {}
        self._cache_lock = threading.Lock()

    @property
    def passwords_allowed(self) -> bool:
        """Password sign-in: always without an identity provider; with one, only when
        ``web.oidc.local_passwords`` is true."""
        return self.settings.oidc is None or self.settings.oidc.local_passwords

    def today(self) -> TodayView:
        """Every counting deadline due by the horizon, computed at most once per
        ``today_cache_seconds``: twenty managers opening the page at nine o'clock share one
        query (each then sees only their children, ``TodayView.only``). Events fired through
        this server clear it at once; changes made elsewhere (the daemon, the CLI) show within
        the interval."""
        now = self.now()
        key = self.engine.calendar.local_date(now)
        ttl = self.settings.today_cache_seconds
        with self._cache_lock:
            hit = self._today_cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < ttl:
                return hit[1]
        view = today_view(sql_engine(self.engine), now, self.engine.calendar)
        with self._cache_lock:
            if len(self._today_cache) > 16:
                self._today_cache.clear()
            self._today_cache[key] = (time.monotonic(), view)
        return view

    def changed(self) -> None:
        """Something was written through this server: cached views are stale."""
        with self._cache_lock:
            self._today_cache.clear()

    def local_text(self, moment: datetime | None) -> str:
        """A moment as the service reads it: wall time in the calendar's zone."""
        if moment is None:
            return ""
        return moment.astimezone(self.engine.calendar.tz).strftime("%Y-%m-%d %H:%M")

    def now(self) -> datetime:
        return self.engine.clock.now()

    # -- who is asking ------------------------------------------------------------------------

    def now_wall(self) -> datetime:
        """Sessions, tokens, the throttle and the audit go by the real clock
        (``settings.wall_clock``), not the engine's (which may be set to the past)."""
        return self.settings.wall_clock.now().astimezone(UTC)

    def user_from_request(self, request: Request) -> User | None:
        """The user the gate resolved (None on public paths)."""
        return getattr(request.state, "user", None)

    def resolve_user(self, request: Request) -> User | None:
        """Who sent this request (runs in a worker thread: it reads the database)."""
        header = self.settings.proxy_header
        peer = getattr(request.state, "peer", "")
        if header and peer in self.trusted:
            name = request.headers.get(header)
            if name:
                record = self.users.get(name.strip())
                if record is None or record.disabled:
                    return None
                return _user(record, "proxy", "proxy:" + record.name)
        now = self.now_wall()
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = self.users.token(token_digest(auth[7:].strip()), now)
            record = self.users.get(token.user_name) if token else None
            if token is None or record is None or record.disabled:
                return None
            return _user(record, "token", credential="token " + token.id)
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw or len(raw) > 100:
            return None
        session = self.sessions.current(raw, now, idle=self.settings.session_idle,
                                        absolute=self.settings.session_absolute)
        if session is None:
            return None
        record = self.users.get(session.user_name)
        if record is None or record.disabled or record.role != session.role:
            self.sessions.end(raw, now, "role changed" if record and not record.disabled
                              else "user disabled")
            return None
        return _user(record, "session", raw, "session " + session.short_id)

    def require(self, request: Request) -> User:
        user = self.user_from_request(request)
        if user is None:
            raise NeedLogin()
        return user

    def check_csrf(self, request: Request, user: User, given: str | None) -> None:
        if user.via == "token":
            return  # no cookie involved: a cross-site page cannot send the bearer token
        if not csrf_ok(user.session_id, given, self.settings.secret):
            raise CsrfRefused()

    def secure(self, request: Request) -> bool:
        if self.settings.secure_cookies is not None:
            return self.settings.secure_cookies
        return request.url.scheme == "https"

    def set_cookie(self, request: Request, response: Response, name: str, value: str,
                   max_age: int | None) -> None:
        response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax",
                            secure=self.secure(request), path="/")

    def begin_session(self, request: Request, response: Response, record: UserRecord,
                      via: str) -> str:
        """Sign ``record`` in: a new server-side session (never a caller's old id) and its
        cookie on ``response``. Password sign-in and an identity provider both end here."""
        raw = self.sessions.start(record.name, record.role, via, self.now_wall(),
                                  request.client.host if request.client else "",
                                  request.headers.get("user-agent", ""))
        seconds = int(self.settings.session_absolute.total_seconds())
        self.set_cookie(request, response, SESSION_COOKIE, raw, max_age=seconds)
        return raw

    def end_session(self, user: User, reason: str) -> None:
        if user.via == "session" and user.session_id:
            self.sessions.end(user.session_id, self.now_wall(), reason)

    # -- rendering ----------------------------------------------------------------------------

    def page(self, request: Request, template: str, user: User | None, status: int = 200,
             **context: object) -> Response:
        csrf = csrf_token(user.session_id, self.settings.secret) \
            if user and user.session_id else ""
        return self.templates.TemplateResponse(request, template, {
            "user": user, "csrf": csrf, "nav": context.pop("nav", ""), **context},
            status_code=status)


def _user(record: UserRecord, via: str, session_id: str = "", credential: str = "") -> User:
    return User(record.name, record.role, via, session_id, record.team, record.service,
                record.email, credential)


def status_for(error: WorkflowError) -> int:
    """The CLI's refusals as HTTP: 404 unknown case, 403 role, 409 state or conflict,
    422 bad data, 400 anything else the engine refused."""
    if isinstance(error, InstanceNotFound):
        return 404
    if isinstance(error, PermissionDenied):
        return 403
    if isinstance(error, (InvalidTransition, ConcurrencyConflict)):
        return 409
    if isinstance(error, ValidationError):
        return 422
    return 400


def web_of(request: Request) -> Web:
    w: Web = request.app.state.web
    return w



__all__ = ["Web", "WebSettings", "web_of", "NeedLogin", "CsrfRefused", "CSP",
           "SECURITY_HEADERS", "HERE", "status_for"]
