"""Sign-in through the council's identity provider: ``/login/oidc`` and its callback.

``GET /login/oidc?next=/path`` makes a fresh ``state``, ``nonce`` and PKCE ``code_verifier``,
asks the provider (``web/oidc.py``) for its sign-in address, remembers the three on the server
bound to this browser (``storage/oidc.py``, a cookie holding a random value whose digest the row
keeps) and sends the browser to the provider. ``GET /login/oidc/callback`` takes that row
(once: a replayed answer finds nothing), checks it belongs to this browser, exchanges the code,
verifies the ID token, maps the claims (``workflow/identity.py``: a user with no mapped role is
refused), creates or updates the user and links the provider's subject in one transaction, and
ends exactly as a password sign-in does: ``Web.begin_session`` (via ``oidc``).

Every way it can fail (the provider down or mis-set, a state that is not ours, a nonce or
signature that does not hold, no role, a disabled user) is one page saying what happened and
what to do, a ``sign_in_failed`` audit row with the reason, and nothing stored: the user row is
written only after every check passed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from authlib.common.security import generate_token
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Engine as SqlEngine

from icsflow.storage import audit as kinds
from icsflow.storage.oidc import Refused, SignOnStore
from icsflow.storage.sessions import digest_of
from icsflow.storage.web_users import UserRecord
from icsflow.workflow.identity import (
    CALLBACK_PATH,
    START_PATH,
    ClaimProblem,
    OidcConfig,
    identity_from,
)
from icsflow.workflow.web.context import web_of
from icsflow.workflow.web.oidc import TRY_AGAIN, OidcClient, SignOnError
from icsflow.workflow.web.signin import safe_next

router = APIRouter(include_in_schema=False)
BROWSER_COOKIE = "icsflow_oidc"  # binds a sign-in under way to the browser that began it
PURPOSE = "sign-in (identity provider)"
NOT_OURS = ("This answer from the identity provider does not match a sign-in begun in this "
            "browser in the last 10 minutes (it was used already, or came from elsewhere). "
            "Please sign in again.")


@dataclass
class SignOn:
    """The identity provider as this application uses it."""

    config: OidcConfig
    client: OidcClient
    store: SignOnStore
    base_url: str

    @property
    def issuer_origin(self) -> str:
        parts = urlsplit(self.config.issuer)
        return f"{parts.scheme}://{parts.netloc}"

    def logout_url(self) -> str | None:
        """The provider's sign-out, when it offers one on the issuer's own origin (the pages'
        ``form-action`` allows only that one besides icsflow)."""
        url = self.client.logout_url(self.base_url + "/login")
        if url is None:
            return None
        parts = urlsplit(url)
        return url if f"{parts.scheme}://{parts.netloc}" == self.issuer_origin else None


def sign_on_for(config: OidcConfig, client_secret: str, base_url: str, sql: SqlEngine) -> SignOn:
    client = OidcClient(config, client_secret, config.redirect_uri(base_url))
    return SignOn(config, client, SignOnStore(sql), base_url.rstrip("/"))


def _sign_on(request: Request) -> SignOn:
    signon: SignOn | None = web_of(request).signon
    if signon is None:  # the routes are mounted only with web.oidc; never reached otherwise
        raise SignOnError(404, "Sign-in through an identity provider is not set up here.")
    return signon


def _failed(request: Request, error: SignOnError, name: str = "-") -> Response:
    """The one page a failed sign-in gets, audited (runs in a worker thread)."""
    web = web_of(request)
    web.guard.record(request, None, kinds.SIGN_IN_FAILED, PURPOSE, name=name[:200], role="-",
                     detail=error.detail[:500])
    response: Response = web.page(request, "signon_error.html", None, status=error.status,
                                  message=error.message)
    return response


@router.get(START_PATH)
def begin(request: Request, next: str = "/") -> Response:
    """Send the browser to the provider's sign-in."""
    web = web_of(request)
    browser = request.cookies.get(BROWSER_COOKIE, "")
    if not browser or len(browser) > 100:
        browser = secrets.token_urlsafe(32)
    state, nonce, verifier = generate_token(43), generate_token(43), generate_token(64)
    try:
        signon = _sign_on(request)
        url = signon.client.authorization_url(state, nonce, verifier)  # may find it down
        signon.store.begin(state, browser, nonce, verifier, safe_next(next), web.now_wall())
    except SignOnError as error:
        return _failed(request, error)
    response = RedirectResponse(url, status_code=303)
    web.set_cookie(request, response, BROWSER_COOKIE, browser, max_age=3600)
    return response


@router.get(CALLBACK_PATH)
def callback(request: Request) -> Response:
    """The provider's answer: a code (or an error) for one of our states."""
    web = web_of(request)
    params = request.query_params
    try:
        signon = _sign_on(request)
        record, target = _finish(request, signon, params.get("state") or "",
                                 request.cookies.get(BROWSER_COOKIE, ""))
    except _Failed as failed:
        return _failed(request, failed.error, failed.name)
    except SignOnError as error:
        return _failed(request, error)
    response = RedirectResponse(target, status_code=303)
    web.begin_session(request, response, record, "oidc")
    web.guard.record(request, None, kinds.SIGN_IN, PURPOSE, name=record.name, role=record.role,
                     detail="oidc")
    response.delete_cookie(BROWSER_COOKIE, path="/")
    return response


class _Failed(Exception):
    """A refusal that knows who the provider said signed in (for the audit row)."""

    def __init__(self, error: SignOnError, name: str) -> None:
        super().__init__(error.message)
        self.error = error
        self.name = name


def _finish(request: Request, signon: SignOn, state: str,
            browser: str) -> tuple[UserRecord, str]:
    """Every check, then the user: (the user's record, where to go). Raises SignOnError."""
    web = web_of(request)
    params = request.query_params
    now = web.now_wall()
    pending = signon.store.take(state, now) if state and len(state) <= 200 else None
    if pending is None:
        raise SignOnError(400, NOT_OURS, "state unknown, used or expired")
    if not browser or not secrets.compare_digest(digest_of(browser), pending.browser_digest):
        raise SignOnError(400, NOT_OURS, "state begun in another browser")
    if params.get("error"):
        said = f"{params.get('error', '')[:100]}: {params.get('error_description', '')[:200]}"
        raise SignOnError(403, "The identity provider did not sign you in "
                          f"({params.get('error', '')[:100]}). {TRY_AGAIN}",
                          f"provider answered an error ({said})")
    code = params.get("code") or ""
    if not code or len(code) > 2000:
        raise SignOnError(400, NOT_OURS, "callback without a code")
    signon.client.check_response_issuer(params.get("iss"))
    claims = signon.client.claims(code, pending.code_verifier, pending.nonce, now)
    try:
        identity = identity_from(signon.config, claims)
    except ClaimProblem as problem:
        raise SignOnError(403, f"Your account at the identity provider cannot be used here: "
                          f"{problem}.", f"claims refused: {problem}") from None
    if identity.role is None:
        held = ", ".join(identity.role_values)[:300] or "none"
        raise _Failed(SignOnError(
            403, f"Your account ({identity.user_name}) has no icsflow role at the identity "
            "provider: ask the IRO service's administrator to give it one of the roles icsflow "
            "maps. Nobody was signed in.",
            f"no mapped role: claim {signon.config.role_claim} holds {held}"),
            identity.user_name)
    try:
        outcome = signon.store.sign_in(
            identity.issuer, identity.subject, identity.user_name, identity.role, now,
            email=identity.email, team=identity.team, service=identity.service)
    except Refused as refused:
        raise _Failed(SignOnError(403, f"{refused}: icsflow cannot sign you in as them. Tell "
                                  "the IRO service's administrator.", str(refused)),
                      identity.user_name) from None
    if outcome.disabled:
        raise _Failed(SignOnError(403, "This user is disabled in icsflow.", "user disabled"),
                      outcome.user_name)
    if outcome.changes:
        web.guard.record(request, None, kinds.ACCOUNT, f"user {outcome.user_name} from the "
                         "identity provider", name=outcome.user_name, role=outcome.role,
                         detail="; ".join(outcome.changes))
    record = web.users.get(outcome.user_name)
    if record is None:  # deleted between the two statements: nothing to sign in
        raise SignOnError(409, f"The user vanished while signing in. {TRY_AGAIN}")
    return record, safe_next(pending.next_path)


__all__ = ["router", "SignOn", "sign_on_for", "BROWSER_COOKIE"]
