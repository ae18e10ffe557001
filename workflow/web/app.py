"""The ASGI application: pages, the JSON API, sign-in, and the security every response gets.

``create_app(engine, users)`` wires one open ``Engine`` (the CLI's engine, same database and
definitions) and the users' store into a FastAPI application. Pages are rendered on the server
with Jinja2 and work without JavaScript; ``/api`` is the JSON API with its OpenAPI document at
``/api/openapi.json``. Nothing but ``/login``, ``/healthz`` and the static files answers without
a session: the ``Gate`` (``gate.py``) authenticates every other request before FastAPI reads
its parameters or body (pages redirect to ``/login``, the API answers 401).

Sign-in through the council's identity provider (``web.oidc``, ``signon.py``) ends the same
way a password does: it calls ``Web.begin_session`` with the user, which makes the server-side
session and sets the cookie; its two paths answer without a session. With it on and
``local_passwords`` off, password sign-in is refused.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from icsflow.storage.audit import AuditStore
from icsflow.storage.sessions import SessionStore, ThrottleStore
from icsflow.storage.web_users import UserRecord, UserStore
from icsflow.workflow.access import AccessPolicy
from icsflow.workflow.clock import Clock, SystemClock
from icsflow.workflow.errors import (
    ConcurrencyConflict,
    InstanceNotFound,
    InvalidTransition,
    PermissionDenied,
    ValidationError,
    WorkflowError,
)
from icsflow.workflow.identity import CALLBACK_PATH, START_PATH, OidcConfig
from icsflow.workflow.web.auth import (
    PRE_COOKIE,
    SESSION_COOKIE,
    SESSION_HOURS,
    User,
    csrf_ok,
    csrf_token,
    password_matches,
    token_digest,
)
from icsflow.workflow.web.gate import BODY_TIMEOUT, BodyRefused, Gate, Networks
from icsflow.workflow.web.guard import AccessRefused, Guard
from icsflow.workflow.web.throttle import Throttle
from icsflow.workflow.web.today import TodayView, today_view

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


class NeedLogin(Exception):
    """No (valid) session: pages go to /login, the API answers 401."""


class CsrfRefused(Exception):
    """A state-changing request without the form's (or header's) CSRF token."""


class Web:
    """What every request handler shares: engine, users, sessions, audit, policy, settings."""

    def __init__(self, engine: Any, users: UserStore, settings: WebSettings) -> None:
        self.engine = engine
        self.users = users
        self.settings = settings
        self.sessions = SessionStore(users.sql)
        self.audit = AuditStore(users.sql)
        self.throttle = Throttle(ThrottleStore(users.sql))
        self.guard = Guard(self)
        self.trusted = Networks(settings.trusted_proxies)
        self.public_paths = tuple(settings.public_paths)
        self.signon: Any = None  # signon.SignOn when web.oidc is set (create_app)
        self.security_headers = dict(SECURITY_HEADERS)
        self.body_timeout = settings.body_timeout
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals["quote"] = quote
        self.templates.env.filters["local"] = self.local_text
        # argon2 runs here, never on the event loop nor in the request thread pool: a burst of
        # sign-ins waits its turn without taking the threads other requests need.
        self.password_pool = ThreadPoolExecutor(max_workers=max(1, settings.password_workers),
                                                thread_name_prefix="icsflow-argon2")
        self.password_check = password_matches
        self._today_cache: dict[Any, tuple[float, TodayView]] = {}
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
        view = today_view(self.engine.store.engine, now, self.engine.calendar)
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
        moment: datetime = self.engine.clock.now()
        return moment

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
             **context: Any) -> Response:
        csrf = csrf_token(user.session_id, self.settings.secret) \
            if user and user.session_id else ""
        return self.templates.TemplateResponse(request, template, {
            "user": user, "csrf": csrf, "nav": context.pop("nav", ""), **context},
            status_code=status)


def _user(record: UserRecord, via: str, session_id: str = "", credential: str = "") -> User:
    return User(record.name, record.role, via, session_id, record.team, record.service,
                record.email, credential)


def _status_for(error: WorkflowError) -> int:
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


def _need_login(request: Request) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": "not signed in: send a session cookie or "
                             "'Authorization: Bearer TOKEN'"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)


def _refusal_handlers(app: FastAPI, web: Web) -> None:
    """No session, no CSRF token, no relationship: 401/redirect, 403, 403 saying why."""

    @app.exception_handler(NeedLogin)
    async def need_login(request: Request, exc: NeedLogin) -> Response:
        return _need_login(request)

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, exc: CsrfRefused) -> Response:
        message = ("The form had no valid security token (CSRF). Reload the page and try "
                   "again; nothing was changed.")
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=403)
        return web.page(request, "error.html", web.user_from_request(request), status=403,
                        title="Refused", message=message)

    @app.exception_handler(AccessRefused)
    async def access_refused(request: Request, exc: AccessRefused) -> Response:
        decision = exc.decision
        if request.url.path.startswith("/api/"):
            body: dict[str, Any] = {"error": decision.reason, "kind": "AccessDenied",
                                    "rule": decision.rule}
            if decision.may_break_glass:
                body["break_glass"] = ("repeat the request with the header "
                                       "X-Break-Glass-Reason: <why you need this child's "
                                       "record>; it is audited")
            return JSONResponse(body, status_code=403)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return web.page(request, "denied.html", web.user_from_request(request), status=403,
                        decision=decision, child=exc.child, case_id=exc.case_id,
                        next=target)


def _error_handlers(app: FastAPI, web: Web) -> None:
    """The engine's refusals, invalid requests and HTTP errors, as JSON or a page."""

    @app.exception_handler(WorkflowError)
    async def workflow_error(request: Request, exc: WorkflowError) -> Response:
        status = _status_for(exc)
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message, "kind": type(exc).__name__},
                                status_code=status)
        return web.page(request, "error.html", web.user_from_request(request), status=status,
                        title="Refused", message=message)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        user = web.require(request)  # the gate let no anonymous request get this far
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "invalid request",
                                 "detail": _plain(exc.errors())}, status_code=422)
        return web.page(request, "error.html", user, status=422, title="Invalid request",
                        message="; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: "
                                          f"{e.get('msg', '')}" for e in exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        user = web.user_from_request(request)
        if isinstance(exc, BodyRefused):
            if request.url.path.startswith("/api/") or user is None:
                return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        elif user is None and not request.url.path.startswith("/static/"):
            return _need_login(request)
        if request.url.path.startswith("/api/") or request.url.path.startswith("/static/"):
            return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)
        return web.page(request, "error.html", user, status=exc.status_code,
                        title="Not found" if exc.status_code == 404 else "Error",
                        message=str(exc.detail))


def create_app(engine: Any, users: UserStore, settings: WebSettings | None = None) -> FastAPI:
    """The application on an open engine and users' store."""
    from icsflow.workflow.web import api, pages

    settings = settings or WebSettings()
    web = Web(engine, users, settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        web.password_pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="icsflow", version="1", openapi_url=None, lifespan=lifespan,
                  docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None,
                  description="The icsflow JSON API: cases, children, deadlines, reports, and "
                  "firing events as the signed-in user (or an API token's user) with their role. "
                  "Errors: 400 refused, 401 not signed in, 403 role or relationship, 404 unknown, "
                  "409 wrong state or conflict, 422 invalid data.")
    app.state.web = web
    if settings.oidc is not None:
        _with_sign_on(app, web, settings.oidc)

    app.add_middleware(Gate, web=web)
    app.add_middleware(SecurityHeaders, web=web)  # outermost: the gate's answers get them too

    _refusal_handlers(app, web)
    _error_handlers(app, web)

    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi_document(request: Request) -> JSONResponse:
        """The API's OpenAPI document, for signed-in users and token holders only."""
        web.require(request)
        return JSONResponse(app.openapi())

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(pages.router)
    app.include_router(api.router)
    return app


def _with_sign_on(app: FastAPI, web: Web, config: OidcConfig) -> None:
    """The identity provider's routes, answering without a session; the pages' forms may
    lead to the provider (the sign-out form redirects to its end_session_endpoint)."""
    from icsflow.workflow.web import signon

    if not web.settings.base_url:
        raise ValueError("WebSettings.oidc needs WebSettings.base_url")
    web.signon = signon.sign_on_for(config, web.settings.oidc_client_secret,
                                    web.settings.base_url, web.users.sql)
    web.public_paths += (START_PATH, CALLBACK_PATH)
    web.security_headers["Content-Security-Policy"] = CSP.replace(
        "form-action 'self'", f"form-action 'self' {web.signon.issuer_origin}")
    app.include_router(signon.router)


class SecurityHeaders:
    """Pure ASGI middleware (cheaper than ``BaseHTTPMiddleware``): the security headers on
    every response, ``no-store`` on everything but static assets, HSTS over HTTPS."""

    def __init__(self, app: Any, web: Web) -> None:
        self.app = app
        self.web = web

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")
        https = scope.get("scheme") == "https" if self.web.settings.secure_cookies is None \
            else self.web.settings.secure_cookies

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = dict(self.web.security_headers)
                if not static:
                    extra["Cache-Control"] = "no-store"
                if https:
                    extra["Strict-Transport-Security"] = "max-age=31536000"
                for key, value in extra.items():
                    if key.lower().encode() not in present:
                        headers.append((key.lower().encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _plain(errors: Any) -> Any:
    """Validation errors as JSON-safe values (they may carry exceptions and bytes)."""
    out = []
    for e in errors:
        out.append({"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
                    "type": str(e.get("type", ""))})
    return out


def web_of(request: Request) -> Web:
    w: Web = request.app.state.web
    return w


__all__ = ["create_app", "WebSettings", "Web", "web_of", "NeedLogin", "CsrfRefused",
           "SECURITY_HEADERS", "CSP", "PRE_COOKIE"]
