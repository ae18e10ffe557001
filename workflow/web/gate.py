"""The door every request passes before any route: who is asking, from where, with how much.

Why a pure ASGI middleware in front of FastAPI: FastAPI validates query parameters and parses
bodies before a route's code runs, so an anonymous request with a malformed parameter got a
422 listing the schema's field types, and ``/login`` parsed multipart before its CSRF check.
Here, in order, before anything reads the body:

1. the client's address and scheme: the socket's peer, unless the peer is a configured
   trusted proxy (``web.trusted_proxies``, none by default), whose ``X-Forwarded-For`` (the
   nearest address that is not itself a trusted proxy) and ``X-Forwarded-Proto`` are believed;
2. authentication (session cookie, bearer token, or the single sign-on header from a trusted
   proxy), off the event loop: an anonymous request gets 401 (API) or a redirect to the
   sign-in (pages), whatever its parameters or body;
3. the body: multipart is refused everywhere (nothing takes files), each route accepts one
   content type (JSON for the API, a form for pages), and each has a size limit, checked on
   ``Content-Length`` and again while reading; a body that stops arriving times out.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:  # context.py builds the Web and imports this module for Networks
    from icsflow.workflow.web.context import Web

PUBLIC_PATHS = frozenset({"/login", "/healthz"})
PUBLIC_PREFIXES = ("/static/",)
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
BODY_TIMEOUT = 30.0  # seconds a body may take between two chunks

# (path prefix, content type a POST takes, largest body in bytes); first match wins.
BODY_RULES: tuple[tuple[str, str, int], ...] = (
    ("/login", FORM, 8 * 1024),
    ("/logout", FORM, 4 * 1024),
    ("/api/", JSON, 64 * 1024),
    ("/", FORM, 64 * 1024),
)


class Networks:
    """Trusted proxies as networks (``10.0.0.0/8``, ``192.0.2.7``)."""

    def __init__(self, entries: Sequence[str]) -> None:
        self.networks = [ipaddress.ip_network(e, strict=False) for e in entries]

    def __contains__(self, address: object) -> bool:
        if not self.networks or not isinstance(address, str):
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in n for n in self.networks)

    def __bool__(self) -> bool:
        return bool(self.networks)


def client_of(peer: str, headers: Sequence[tuple[bytes, bytes]], trusted: Networks,
              scheme: str) -> tuple[str, str]:
    """(address, scheme) of the real client: the peer, or what a trusted proxy says."""
    if peer not in trusted:
        return peer, scheme
    forwarded: list[str] = []
    proto = None
    for key, value in headers:
        if key == b"x-forwarded-for":
            forwarded += [p.strip() for p in value.decode("latin-1").split(",") if p.strip()]
        elif key == b"x-forwarded-proto":
            proto = value.decode("latin-1").split(",")[-1].strip().lower()
    address = peer
    for hop in reversed(forwarded):  # the nearest hop that is not one of our proxies
        address = hop
        if hop not in trusted:
            break
    return address, (proto if proto in ("http", "https") else scheme)


def public(path: str, extra: Sequence[str] = ()) -> bool:
    return path in PUBLIC_PATHS or path in extra or path.startswith(PUBLIC_PREFIXES)


def body_rule(path: str) -> tuple[str, int]:
    for prefix, kind, limit in BODY_RULES:
        if path == prefix or path.startswith(prefix if prefix.endswith("/") else prefix + "/") \
                or prefix == "/":
            return kind, limit
    return FORM, 64 * 1024


class Gate:
    """The middleware; ``web`` is the application's ``Web`` (users, sessions, settings)."""

    def __init__(self, app: ASGIApp, web: Web) -> None:
        self.app = app
        self.web = web

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        peer = scope["client"][0] if scope.get("client") else ""
        address, scheme = client_of(peer, scope.get("headers", []),
                                    self.web.trusted, scope.get("scheme", "http"))
        scope = dict(scope)
        scope["client"] = (address, scope["client"][1] if scope.get("client") else 0)
        scope["scheme"] = scheme
        state = dict(scope.get("state") or {})
        state["peer"] = peer
        scope["state"] = state
        path = scope.get("path", "")
        if not public(path, self.web.public_paths):
            request = Request(scope)
            user = await run_in_threadpool(self.web.resolve_user, request)
            if user is None:
                await self._anonymous(scope, send)
                return
            state["user"] = user
        else:
            state["user"] = None
        method = scope.get("method", "GET")
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            refused = self._body_refusal(scope, path)
            if refused is not None:
                await _answer(scope, send, *refused)
                return
            receive = _bounded(receive, body_rule(path)[1], self.web.body_timeout)
        await self.app(scope, receive, send)

    def _body_refusal(self, scope: Scope, path: str) -> tuple[int, str] | None:
        kind, limit = body_rule(path)
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        given = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip()
        if given.lower().startswith("multipart/"):
            return 415, "multipart bodies are not accepted (no route takes files)"
        length = headers.get(b"content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                return 400, "Content-Length is not a number"
            if size > limit:
                return 413, f"the body is larger than this route takes ({limit} bytes)"
            if size == 0:
                return None
        if given and given.lower() != kind:
            return 415, f"this route takes {kind}, not {given[:60]}"
        return None

    async def _anonymous(self, scope: Scope, send: Send) -> None:
        path = scope.get("path", "")
        if path.startswith("/api/") or path == "/api":
            await _answer(scope, send, 401, "not signed in: send a session cookie or "
                          "'Authorization: Bearer TOKEN'",
                          [(b"www-authenticate", b"Bearer")])
            return
        query = scope.get("query_string", b"").decode("latin-1")
        target = path + (f"?{query}" if query else "")
        location = "/login?" + urlencode({"next": target})
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", location.encode("latin-1")),
                                (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


class BodyRefused(HTTPException):
    """Raised from ``receive`` while a route reads its body: too large, or too slow (an HTTP
    error, so FastAPI's body parsing lets it through to the application's error handler)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status_code=status, detail=message)


def _bounded(receive: Receive, limit: int, timeout: float) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        try:
            message = await asyncio.wait_for(receive(), timeout)
        except TimeoutError:
            raise BodyRefused(408, "the request body stopped arriving") from None
        if message.get("type") == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyRefused(413, f"the body is larger than this route takes ({limit} "
                                  "bytes)")
        return message

    return wrapped


async def _answer(scope: Scope, send: Send, status: int, message: str,
                  extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """A refusal as JSON for the API, plain text for pages (the page templates need a user)."""
    api = str(scope.get("path", "")).startswith("/api")
    body = (json.dumps({"error": message}) if api else message + "\n").encode("utf-8")
    kind = b"application/json" if api else b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode()),
                            *extra]})
    await send({"type": "http.response.body", "body": body})


__all__ = ["Gate", "BodyRefused", "Networks", "client_of", "public", "body_rule",
           "PUBLIC_PATHS", "PUBLIC_PREFIXES", "BODY_RULES", "BODY_TIMEOUT"]
