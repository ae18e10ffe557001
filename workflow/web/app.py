"""The ASGI application: pages, the JSON API, sign-in, and the security every response gets.

``create_app(engine, users)`` wires one open ``Engine`` (the CLI's engine, same database and
definitions) and the users' store into a FastAPI application. Pages are rendered on the server
with Jinja2 and work without JavaScript; ``/api`` is the JSON API with its OpenAPI document at
``/api/openapi.json``. Nothing but ``/login``, ``/healthz`` and the static files answers without
a session (pages redirect to ``/login``, the API answers 401).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from icsflow.storage.web_users import UserStore
from icsflow.workflow.errors import (
    ConcurrencyConflict,
    InstanceNotFound,
    InvalidTransition,
    PermissionDenied,
    ValidationError,
    WorkflowError,
)
from icsflow.workflow.web.auth import SESSION_COOKIE, SESSION_HOURS, Signer, User, token_digest
from icsflow.workflow.web.today import TodayView, today_view

HERE = Path(__file__).resolve().parent
PRE_COOKIE = "icsflow_pre"  # the anonymous CSRF id of the sign-in form

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

    ``proxy_header`` names a header a trusted reverse proxy sets to the signed-in user's name
    (single sign-on); it is off (None) by default and honoured only from ``trusted_proxies``.
    ``secure_cookies`` None means: Secure when the request came over HTTPS.
    """

    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    proxy_header: str | None = None
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    secure_cookies: bool | None = None
    allocation_definition: str = "initial_review"
    allocation_state: str = "awaiting_allocation"
    band: tuple[int, int] = (50, 70)
    ip_failures_per_window: int = 30
    ip_window_seconds: int = 900
    today_cache_seconds: float = 2.0


class NeedLogin(Exception):
    """No (valid) session: pages go to /login, the API answers 401."""


class CsrfRefused(Exception):
    """A state-changing request without the form's (or header's) CSRF token."""


@dataclass
class IpThrottle:
    """Wrong sign-ins per client address in a sliding window: the per-user lock-out does not
    cover names that do not exist, so guessing names is slowed here."""

    limit: int
    window: float
    seen: dict[str, list[float]] = field(default_factory=dict)

    def blocked(self, ip: str) -> bool:
        now = time.monotonic()
        recent = [t for t in self.seen.get(ip, []) if now - t < self.window]
        self.seen[ip] = recent
        return len(recent) >= self.limit

    def failed(self, ip: str) -> None:
        self.seen.setdefault(ip, []).append(time.monotonic())


class Web:
    """What every request handler shares: engine, users, signer, templates, settings."""

    def __init__(self, engine: Any, users: UserStore, settings: WebSettings) -> None:
        self.engine = engine
        self.users = users
        self.settings = settings
        self.signer = Signer(settings.secret)
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals["quote"] = quote
        self.templates.env.filters["local"] = self.local_text
        self.throttle = IpThrottle(settings.ip_failures_per_window, settings.ip_window_seconds)
        self._today_cache: dict[tuple[Any, ...], tuple[float, TodayView]] = {}
        self._cache_lock = threading.Lock()

    def today(self, filters: Mapping[str, str | None]) -> TodayView:
        """The Today view, computed at most once per ``today_cache_seconds`` for a set of
        filters: twenty managers opening the page at nine o'clock share one query. Events
        fired through this server clear it at once; changes made elsewhere (the daemon, the
        CLI) show within the interval."""
        now = self.now()
        key = (self.engine.calendar.local_date(now), tuple(sorted(
            (k, v) for k, v in filters.items() if v)))
        ttl = self.settings.today_cache_seconds
        with self._cache_lock:
            hit = self._today_cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < ttl:
                return hit[1]
        view = today_view(self.engine.store.engine, now, self.engine.calendar, filters)
        with self._cache_lock:
            if len(self._today_cache) > 256:
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

    def user_from_request(self, request: Request) -> User | None:
        cached = getattr(request.state, "user", None)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        user = self._resolve_user(request)
        request.state.user = user
        return user

    def _resolve_user(self, request: Request) -> User | None:
        header = self.settings.proxy_header
        client = request.client.host if request.client else ""
        if header and client in self.settings.trusted_proxies:
            name = request.headers.get(header)
            if name:
                record = self.users.get(name.strip())
                if record is not None and not record.disabled:
                    return User(record.name, record.role, "proxy", "proxy:" + record.name)
                return None
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            owner = self.users.token_user(token_digest(auth[7:].strip()))
            record = self.users.get(owner) if owner else None
            if record is None or record.disabled:
                return None
            return User(record.name, record.role, "token")
        body = self.signer.read_session(request.cookies.get(SESSION_COOKIE), self.now_wall())
        if body is None:
            return None
        record = self.users.get(body["u"])
        if record is None or record.disabled:
            return None
        return User(record.name, record.role, "session", str(body.get("s", "")))

    def now_wall(self) -> datetime:
        """Sessions expire by the real clock, not the engine's (which may be set to the past)."""
        from datetime import UTC

        return datetime.now(UTC)

    def require(self, request: Request) -> User:
        user = self.user_from_request(request)
        if user is None:
            raise NeedLogin()
        return user

    def check_csrf(self, request: Request, user: User, given: str | None) -> None:
        if user.via == "token":
            return  # no cookie involved: a cross-site page cannot send the bearer token
        if not self.signer.csrf_ok(user.session_id, given):
            raise CsrfRefused()

    def secure(self, request: Request) -> bool:
        if self.settings.secure_cookies is not None:
            return self.settings.secure_cookies
        return request.url.scheme == "https"

    def set_cookie(self, request: Request, response: Response, name: str, value: str,
                   max_age: int | None) -> None:
        response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax",
                            secure=self.secure(request), path="/")

    # -- rendering ----------------------------------------------------------------------------

    def page(self, request: Request, template: str, user: User | None, status: int = 200,
             **context: Any) -> Response:
        csrf = self.signer.csrf_token(user.session_id) if user and user.session_id else ""
        return self.templates.TemplateResponse(request, template, {
            "user": user, "csrf": csrf, "nav": context.pop("nav", ""), **context},
            status_code=status)

    def record_access(self, user: User, child: str | None, instance_id: str | None,
                      what: str) -> None:
        self.users.record_access(self.now_wall(), user.name, user.role, child, instance_id, what)


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


def create_app(engine: Any, users: UserStore, settings: WebSettings | None = None) -> FastAPI:
    """The application on an open engine and users' store."""
    from icsflow.workflow.web import api, pages

    settings = settings or WebSettings()
    web = Web(engine, users, settings)
    app = FastAPI(title="icsflow", version="1", openapi_url=None,
                  docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None,
                  description="The icsflow JSON API: cases, children, deadlines, reports, and "
                  "firing events as the signed-in user (or an API token's user) with their role. "
                  "Errors: 400 refused, 401 not signed in, 403 role, 404 unknown, "
                  "409 wrong state or conflict, 422 invalid data.")
    app.state.web = web

    app.add_middleware(SecurityHeaders, web=web)

    @app.exception_handler(NeedLogin)
    async def need_login(request: Request, exc: NeedLogin) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "not signed in: send a session cookie or "
                                 "'Authorization: Bearer TOKEN'"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, exc: CsrfRefused) -> Response:
        message = ("The form had no valid security token (CSRF). Reload the page and try "
                   "again; nothing was changed.")
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=403)
        return web.page(request, "error.html", web.user_from_request(request), status=403,
                        title="Refused", message=message)

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
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "invalid request",
                                 "detail": _plain(exc.errors())}, status_code=422)
        user = web.require(request)
        return web.page(request, "error.html", user, status=422, title="Invalid request",
                        message="; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: "
                                          f"{e.get('msg', '')}" for e in exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        user = web.user_from_request(request)
        if user is None and not request.url.path.startswith("/static/"):
            return await need_login(request, NeedLogin())
        if request.url.path.startswith("/api/") or request.url.path.startswith("/static/"):
            return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)
        return web.page(request, "error.html", user, status=exc.status_code,
                        title="Not found" if exc.status_code == 404 else "Error",
                        message=str(exc.detail))

    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi_document(request: Request) -> JSONResponse:
        """The API's OpenAPI document, for signed-in users and token holders only."""
        web.require(request)
        return JSONResponse(app.openapi())

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(pages.router)
    app.include_router(api.router)
    return app


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
                extra = dict(SECURITY_HEADERS)
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


SESSION_SECONDS = SESSION_HOURS * 3600

__all__ = ["create_app", "WebSettings", "Web", "web_of", "NeedLogin", "CsrfRefused",
           "SECURITY_HEADERS", "CSP", "PRE_COOKIE", "SESSION_SECONDS"]
