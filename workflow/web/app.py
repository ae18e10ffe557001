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

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic_core import ErrorDetails
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from icsflow.storage.web_users import UserStore
from icsflow.workflow.errors import WorkflowError
from icsflow.workflow.identity import CALLBACK_PATH, START_PATH, OidcConfig
from icsflow.workflow.instance import JsonValue
from icsflow.workflow.web import api, pages, signon
from icsflow.workflow.web.auth import PRE_COOKIE
from icsflow.workflow.web.context import (
    CSP,
    HERE,
    SECURITY_HEADERS,
    CsrfRefused,
    NeedLogin,
    Web,
    WebSettings,
    status_for,
    web_of,
)
from icsflow.workflow.web.gate import BodyRefused, Gate
from icsflow.workflow.web.guard import AccessRefused

if TYPE_CHECKING:  # the engine is opened by the caller (``icsflow serve``, the tests)
    from icsflow.workflow.engine import Engine

_status_for = status_for

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
            body: dict[str, JsonValue] = {"error": decision.reason, "kind": "AccessDenied",
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


def create_app(engine: Engine, users: UserStore, settings: WebSettings | None = None) -> FastAPI:
    """The application on an open engine and users' store."""
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

    def __init__(self, app: ASGIApp, web: Web) -> None:
        self.app = app
        self.web = web

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")
        https = scope.get("scheme") == "https" if self.web.settings.secure_cookies is None \
            else self.web.settings.secure_cookies

        async def with_headers(message: Message) -> None:
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


def _plain(errors: Iterable[ErrorDetails]) -> list[JsonValue]:
    """Validation errors as JSON-safe values (they may carry exceptions and bytes)."""
    out: list[JsonValue] = []
    for e in errors:
        out.append({"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
                    "type": str(e.get("type", ""))})
    return out


__all__ = ["create_app", "WebSettings", "Web", "web_of", "NeedLogin", "CsrfRefused",
           "SECURITY_HEADERS", "CSP", "PRE_COOKIE"]
