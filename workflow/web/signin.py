"""Signing in with a password, without blocking the server or naming accounts.

The handler is ``async`` only to await: the form is read from a body the gate already bounded
(8 KiB, ``application/x-www-form-urlencoded`` only, so no multipart parser runs before the
CSRF check), every database call runs in the request thread pool, and argon2 runs in its own
small pool (``Web.password_pool``): a hundred sign-ins at once queue there, holding neither the
event loop nor the threads other requests need.

Every outcome is the same for a name that exists and one that does not: the throttle counts
the typed name either way, argon2 runs either way (against a dummy hash), and the answer is
"Wrong user name or password." A disabled user is told so only after the right password.
Failures, throttled attempts and successes are audited (an unknown typed name is recorded as
``(unknown)`` with a short hash, so a password typed into the name box is not kept).

With the council's identity provider on (``web.oidc``) and ``local_passwords`` off, the form
is not shown and a posted password is refused (403, audited) before anything is checked. A
user the provider made has no password (``storage.oidc.NO_PASSWORD``): the check runs against
the dummy hash, as for an unknown name, so the answer and the time are the same.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
from typing import TypedDict
from urllib.parse import parse_qs, urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from icsflow.storage import audit as kinds
from icsflow.storage.web_users import UserRecord
from icsflow.workflow.identity import START_PATH
from icsflow.workflow.web.auth import DEVICE_COOKIE, PRE_COOKIE, login_csrf, login_csrf_ok
from icsflow.workflow.web.context import Web
from icsflow.workflow.web.throttle import Keys, keys_for

WRONG = "Wrong user name or password."
PASSWORDS_OFF = ("Sign-in with an icsflow password is turned off here: sign in with your "
                 "council account.")
DEVICE_SECONDS = 180 * 24 * 3600


def safe_next(target: str | None) -> str:
    """Only a path on this site (never //host or a scheme): no open redirect after sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class SignInChoices(TypedDict):
    passwords: bool  # the password form is shown
    provider: str | None  # where "sign in with your council account" leads, if anywhere


def sign_in_choices(web: Web, target: str) -> SignInChoices:
    """What the sign-in page offers: the password form, the identity provider, or both."""
    provider = None
    if web.signon is not None:
        provider = START_PATH + ("?" + urlencode({"next": target}) if target != "/" else "")
    return {"passwords": web.passwords_allowed, "provider": provider}


def _field(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name) or [""]
    return values[0]


def _who(known: bool, name: str) -> str:
    if known:
        return name
    return "(unknown " + hashlib.sha256(name.encode("utf-8")).hexdigest()[:8] + ")"


async def sign_in(web: Web, request: Request) -> Response:
    """``POST /login``."""
    body = await request.body()
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        form = {}
    pre = request.cookies.get(PRE_COOKIE, "")
    name = _field(form, "username").strip()[:200]
    password = _field(form, "password")[:1000]
    target = safe_next(_field(form, "next"))
    ip = request.client.host if request.client else ""

    def again(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
        fresh = pre or secrets.token_urlsafe(16)
        response = web.page(request, "login.html", None, status=status,
                                      next=target, login_csrf=login_csrf(fresh),
                                      error=message, username=name,
                                      **sign_in_choices(web, target))
        web.set_cookie(request, response, PRE_COOKIE, fresh, max_age=3600)
        for key, value in (headers or {}).items():
            response.headers[key] = value
        return response

    if not web.passwords_allowed:
        await run_in_threadpool(web.guard.record, request, None, kinds.SIGN_IN_FAILED,
                                "sign-in", name="-", role="-",
                                detail="password sign-in is turned off (web.oidc)")
        return again(PASSWORDS_OFF, 403)
    if not login_csrf_ok(pre, _field(form, "csrf_token")):
        return again("The sign-in form had expired. Please sign in again.", 403)
    if not name or not password:
        return again(WRONG, 401)
    device = request.cookies.get(DEVICE_COOKIE, "")[:100]
    attempt = await run_in_threadpool(_before, web, name, ip, device)
    keys, record, wait = attempt
    if wait > 0:
        seconds = math.ceil(wait)
        await run_in_threadpool(web.guard.record, request, None, kinds.THROTTLED, "sign-in",
                                name=_who(record is not None, name), role="-",
                                detail=f"next attempt accepted in {seconds} s")
        return again(f"Too many failed sign-ins: try again in {seconds} seconds.", 429,
                     {"Retry-After": str(seconds)})
    loop = asyncio.get_running_loop()
    stored = record.password_hash if record and record.password_hash.startswith("$") else None
    ok = await loop.run_in_executor(web.password_pool, web.password_check, stored, password)
    if not ok or record is None:
        await run_in_threadpool(_failed, web, request, keys, record is not None, name)
        return again(WRONG, 401)
    if record.disabled:
        await run_in_threadpool(web.guard.record, request, None, kinds.SIGN_IN_FAILED,
                                "sign-in", name=record.name, role=record.role,
                                detail="user disabled")
        return again("This user is disabled.", 403)
    response = RedirectResponse(target, status_code=303)
    await run_in_threadpool(_succeeded, web, request, response, keys, record,
                            keys.device is not None)
    response.delete_cookie(PRE_COOKIE, path="/")
    return response


def _before(web: Web, name: str, ip: str, device: str) -> tuple[Keys, UserRecord | None, float]:
    now = web.now_wall()
    known_device = bool(device) and web.sessions.device_user(device, now) == name
    keys = keys_for(name, ip, known_device, device)
    return keys, web.users.get(name), web.throttle.wait(keys, now)


def _failed(web: Web, request: Request, keys: Keys, known: bool, name: str) -> None:
    web.throttle.failed(keys, web.now_wall())
    web.guard.record(request, None, kinds.SIGN_IN_FAILED, "sign-in", name=_who(known, name),
                     role="-", detail="wrong user name or password")


def _succeeded(web: Web, request: Request, response: Response, keys: Keys, record: UserRecord,
               device_known: bool) -> None:
    web.throttle.succeeded(keys)
    web.begin_session(request, response, record, "password")
    if not device_known:
        raw = web.sessions.remember_device(record.name, web.now_wall())
        web.set_cookie(request, response, DEVICE_COOKIE, raw, max_age=DEVICE_SECONDS)
    web.guard.record(request, None, kinds.SIGN_IN, "sign-in", name=record.name,
                     role=record.role, detail="password")


__all__ = ["sign_in", "safe_next", "sign_in_choices", "WRONG", "PASSWORDS_OFF"]
