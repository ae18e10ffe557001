"""Talking to the council's identity provider: OpenID Connect, authorization code with PKCE,
through Authlib.

Why Authlib and not our own HTTP: the authorization request (``state``, ``nonce``, the S256
PKCE challenge), client authentication at the token endpoint, the provider's error answers and
the ID token's claims rules (issuer, audience, authorised party, expiry, issued-at, nonce,
``at_hash``) are Authlib's, and the signature is checked by joserfc (Authlib's JOSE library)
against the provider's published keys. What this module adds is the provider's lifecycle and
one clear failure per way a sign-in can go wrong:

- the discovery document is fetched from ``ISSUER/.well-known/openid-configuration``, checked
  (Authlib's ``OpenIDProviderMetadata``, and its ``issuer`` must be exactly
  ``web.oidc.issuer``) and kept for an hour; the signing keys are kept until a token names a
  key the set does not hold (a rotation), then fetched again (at most once a minute);
- every call has a timeout (``TIMEOUT``) and runs in a worker thread, never on the event loop;
- every failure is a ``SignOnError`` with an HTTP status, one sentence for the person signing
  in and a detail for the audit; nothing is stored until every check has passed.

Claims come from the ID token and, when the provider has a ``userinfo_endpoint``, from it too
(many providers put profile and group claims only there; its ``sub`` must be the ID token's);
the ID token's own claims win a conflict.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import requests
from authlib.common.urls import add_params_to_uri
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata, get_well_known_url
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
)
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from icsflow.workflow.identity import OidcConfig

TIMEOUT = 10.0  # seconds for each call to the provider
METADATA_SECONDS = 3600.0
JWKS_REFRESH_SECONDS = 60.0
LEEWAY = 60  # seconds of clock difference allowed on exp, iat and nbf
# Signature algorithms an ID token may use: asymmetric only (keys from the provider's JWKS).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
              "ES512", "EdDSA")
TRY_AGAIN = "Please try again; if it keeps happening, tell the IT service desk."
ROTATED = "id token refused: signed with a key the provider's key set does not hold"


class SignOnError(Exception):
    """A sign-in through the provider that cannot go on. ``message`` is for the person
    signing in (one sentence, nothing secret), ``detail`` for the audit trail."""

    def __init__(self, status: int, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail or message


def _unreachable(what: str, error: Exception) -> SignOnError:
    reason = type(error).__name__
    return SignOnError(503, f"icsflow could not reach the council's identity provider ({what}: "
                       f"{reason}). {TRY_AGAIN}", f"provider unreachable: {what}: {reason}")


class OidcClient:
    """One identity provider, as ``web.oidc`` describes it, for one icsflow address."""

    def __init__(self, config: OidcConfig, client_secret: str, redirect_uri: str, *,
                 timeout: float = TIMEOUT) -> None:
        self.config = config
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.timeout = timeout
        self.discovery_url = get_well_known_url(config.issuer, external=True)
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0

    # -- the provider's description and keys ------------------------------------------------

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = requests.get(url, timeout=self.timeout,
                                    headers={"Accept": "application/json"})
        except requests.RequestException as error:
            raise _unreachable(what, error) from None
        if response.status_code != 200:
            raise SignOnError(502, f"The identity provider answered HTTP {response.status_code} "
                              f"for its {what}: icsflow's setting web.oidc.issuer may be wrong. "
                              f"{TRY_AGAIN}", f"{what} at {url}: HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise SignOnError(502, f"The identity provider's {what} is not JSON: icsflow's "
                              f"setting web.oidc.issuer may be wrong. {TRY_AGAIN}",
                              f"{what} at {url}: not a JSON object")
        return data

    def metadata(self) -> Mapping[str, Any]:
        """The provider's discovery document, checked, at most an hour old."""
        with self._lock:
            if self._metadata is not None and \
                    time.monotonic() - self._metadata_at < METADATA_SECONDS:
                return self._metadata
        data = self._get_json(self.discovery_url, "discovery document")
        if data.get("issuer") != self.config.issuer:
            raise SignOnError(502, "The identity provider calls itself "
                              f"{str(data.get('issuer'))[:200]!r}, not {self.config.issuer!r}: "
                              "icsflow's setting web.oidc.issuer must be exactly the provider's "
                              f"issuer. {TRY_AGAIN}",
                              f"issuer mismatch: configured {self.config.issuer}, provider says "
                              f"{str(data.get('issuer'))[:200]}")
        try:
            OpenIDProviderMetadata(data).validate()
        except (ValueError, TypeError, KeyError) as error:
            raise SignOnError(502, "The identity provider's discovery document is not valid "
                              f"OpenID Connect ({error}). {TRY_AGAIN}",
                              f"discovery document invalid: {error}") from None
        with self._lock:
            self._metadata, self._metadata_at = data, time.monotonic()
        return data

    def _key_set(self, force: bool) -> KeySet:
        with self._lock:
            fresh = time.monotonic() - self._keys_at < JWKS_REFRESH_SECONDS
            if self._keys is not None and (not force or fresh):
                return self._keys
        data = self._get_json(str(self.metadata()["jwks_uri"]), "signing keys")
        try:
            keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as error:
            raise SignOnError(502, f"The identity provider's signing keys cannot be read. "
                              f"{TRY_AGAIN}", f"jwks invalid: {error}") from None
        with self._lock:
            self._keys, self._keys_at = keys, time.monotonic()
        return keys

    # -- the flow ---------------------------------------------------------------------------

    def _session(self, token: Mapping[str, Any] | None = None) -> OAuth2Session:
        supported = self.metadata().get("token_endpoint_auth_methods_supported") or []
        method = "client_secret_post" if supported and "client_secret_basic" not in supported \
            and "client_secret_post" in supported else "client_secret_basic"
        return OAuth2Session(self.config.client_id, self.client_secret,
                             scope=" ".join(self.config.scopes), redirect_uri=self.redirect_uri,
                             code_challenge_method="S256", token_endpoint_auth_method=method,
                             token=dict(token) if token else None,
                             default_timeout=self.timeout)

    def authorization_url(self, state: str, nonce: str, code_verifier: str) -> str:
        """Where to send the browser: the provider's sign-in for this state and nonce, with
        the S256 challenge of ``code_verifier``."""
        endpoint = str(self.metadata()["authorization_endpoint"])
        with self._session() as session:
            url, _ = session.create_authorization_url(endpoint, state=state, nonce=nonce,
                                                      code_verifier=code_verifier)
        return str(url)

    def check_response_issuer(self, iss: str | None) -> None:
        """RFC 9207: a provider that names itself in the answer must name itself (a mix-up
        between two providers otherwise goes unnoticed)."""
        if iss is not None and iss != self.config.issuer:
            raise SignOnError(400, "The answer came from another identity provider than the "
                              f"one icsflow uses. {TRY_AGAIN}",
                              f"authorization response iss {iss[:200]!r} is not the issuer")

    def claims(self, code: str, code_verifier: str, nonce: str,
               now: datetime) -> dict[str, Any]:
        """Exchange the code (with the PKCE verifier) and return the verified claims."""
        token = self._exchange(code, code_verifier)
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SignOnError(502, f"The identity provider sent no ID token. {TRY_AGAIN}",
                              "token response without id_token")
        claims = self.verify_id_token(id_token, nonce, token.get("access_token"), now)
        return {**self._userinfo(token, claims["sub"]), **claims}

    def _exchange(self, code: str, code_verifier: str) -> dict[str, Any]:
        endpoint = str(self.metadata()["token_endpoint"])
        try:
            with self._session() as session:
                token = session.fetch_token(endpoint, code=code, code_verifier=code_verifier,
                                            grant_type="authorization_code")
        except requests.RequestException as error:
            raise _unreachable("token endpoint", error) from None
        except OAuthError as error:
            raise _token_refused(str(error.error), str(error.description or "")) from None
        except ValueError as error:
            raise SignOnError(502, f"The identity provider's token answer cannot be read. "
                              f"{TRY_AGAIN}", f"token response: {error}") from None
        return dict(token)

    def verify_id_token(self, id_token: str, nonce: str, access_token: object,
                        now: datetime) -> dict[str, Any]:
        """The ID token's claims, checked against the provider's keys (fetched again once
        when the token names a key we do not hold: the provider rotated them)."""
        algorithms = self.metadata().get("id_token_signing_alg_values_supported", ["RS256"])
        check = {"issuer": self.config.issuer, "client_id": self.config.client_id,
                 "nonce": nonce, "access_token": access_token, "now": now,
                 "algorithms": algorithms}
        try:
            return verify_id_token(id_token, self._key_set(False), **check)
        except SignOnError as error:
            if error.detail != ROTATED:
                raise
        return verify_id_token(id_token, self._key_set(True), **check)

    def _userinfo(self, token: Mapping[str, Any], subject: str) -> dict[str, Any]:
        endpoint = self.metadata().get("userinfo_endpoint")
        if not endpoint or not token.get("access_token"):
            return {}
        try:
            with self._session(token) as session:
                response = session.get(str(endpoint), headers={"Accept": "application/json"})
        except requests.RequestException as error:
            raise _unreachable("userinfo endpoint", error) from None
        if response.status_code != 200:
            raise SignOnError(502, f"The identity provider refused icsflow its user details "
                              f"(HTTP {response.status_code}). {TRY_AGAIN}",
                              f"userinfo: HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or data.get("sub") != subject:
            raise SignOnError(502, f"The identity provider's user details are not about the "
                              f"person who signed in. {TRY_AGAIN}",
                              "userinfo sub differs from the ID token's, or is not JSON")
        return data

    def logout_url(self, post_logout_redirect_uri: str) -> str | None:
        """The provider's sign-out (RP-initiated logout), when it offers one; None otherwise
        or when it cannot be reached (icsflow's own sign-out has happened either way)."""
        try:
            endpoint = self.metadata().get("end_session_endpoint")
        except SignOnError:
            return None
        if not endpoint:
            return None
        return str(add_params_to_uri(str(endpoint), [
            ("client_id", self.config.client_id),
            ("post_logout_redirect_uri", post_logout_redirect_uri)]))


def verify_id_token(id_token: str, keys: KeySet, *, issuer: str, client_id: str, nonce: str,
                    access_token: object, now: datetime,
                    algorithms: Iterable[str] | None = ("RS256",)) -> dict[str, Any]:
    """The claims of ``id_token`` once its signature (one of ``keys``, with an asymmetric
    algorithm the provider announces), issuer, audience, authorised party, expiry, issued-at,
    nonce and ``at_hash`` all hold (joserfc and Authlib's ``CodeIDToken``); ``SignOnError``
    saying which did not."""
    allowed = [a for a in (algorithms or ()) if a in ALGORITHMS] or ["RS256"]
    try:
        token = jwt.decode(id_token, keys, registry=JWSRegistry(algorithms=allowed))
        options: dict[str, Any] = {"iss": {"essential": True, "value": issuer},
                                   "aud": {"essential": True, "value": client_id},
                                   "sub": {"essential": True}}
        params = {"nonce": nonce, "client_id": client_id}
        if isinstance(access_token, str):
            params["access_token"] = access_token
        checked = CodeIDToken(token.claims, token.header, options, params)
        checked.validate(now=int(now.timestamp()), leeway=LEEWAY)
    except InvalidKeyIdError:
        raise SignOnError(502, "The identity provider's answer could not be trusted: it is "
                          "signed with a key the provider does not publish. Nobody was signed "
                          "in.", ROTATED) from None
    except JoseError as error:
        raise _untrusted(error) from None
    except (ValueError, TypeError) as error:
        raise SignOnError(502, f"The identity provider's ID token cannot be read. {TRY_AGAIN}",
                          f"id token unreadable: {error}") from None
    return dict(checked)


def _token_refused(error: str, description: str) -> SignOnError:
    said = f"{error}: {description}"[:300] if description else error[:100]
    if error == "invalid_client":
        return SignOnError(502, "The identity provider refused icsflow's client credentials: "
                           "icsflow's settings web.oidc.client_id or its client secret are "
                           f"wrong. {TRY_AGAIN}", f"token endpoint refused the client ({said})")
    if error == "invalid_grant":
        return SignOnError(400, "The identity provider refused this sign-in's code: it was "
                           "used already, has expired or belongs to another sign-in. Please sign "
                           "in again.", f"token endpoint refused the code ({said})")
    return SignOnError(502, f"The identity provider refused the sign-in ({error[:100]}). "
                       f"{TRY_AGAIN}", f"token endpoint error ({said})")


def _untrusted(error: JoseError) -> SignOnError:
    if isinstance(error, BadSignatureError):
        why = "its signature does not verify with the provider's keys"
    elif isinstance(error, ExpiredTokenError):
        why = "it has expired (is this server's clock right?)"
    elif isinstance(error, ClaimError) and error.claim == "nonce":
        why = "its nonce is not this sign-in's (a replayed or injected answer)"
    elif isinstance(error, ClaimError):
        why = f"its {error.claim} claim is wrong or missing"
    else:
        why = f"it is malformed ({error.error})"
    return SignOnError(502, f"The identity provider's answer could not be trusted: {why}. "
                       "Nobody was signed in.", f"id token refused: {why}")


__all__ = ["OidcClient", "SignOnError", "verify_id_token", "TIMEOUT", "LEEWAY", "ALGORITHMS"]
