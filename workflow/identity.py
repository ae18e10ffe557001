"""Signing in through the council's identity provider: the ``web.oidc`` settings, and how the
provider's claims become an icsflow user.

Why here, pure, apart from the HTTP: which claim names the user, which claim values make which
icsflow role, and what a half-filled ``web.oidc`` section lacks are decisions an operator and a
data-protection officer read and test without a provider running. ``web/oidc.py`` talks to the
provider (Authlib), ``web/signon.py`` turns a verified identity into a session, and
``storage/oidc.py`` keeps which provider subject is which icsflow user.

Rules kept here:

- a ``web.oidc`` section needs ``issuer``, ``client_id`` and ``role_map`` (and ``web.base_url``,
  which gives the redirect address); a missing one is named in one line;
- the issuer and ``web.base_url`` are ``https://`` addresses (``http://`` only on loopback, for
  tests), without query or fragment;
- a claim is named by its key, or a dotted path into nested claims (``realm_access.roles``);
- a role claim may hold one value or a list; the first ``role_map`` entry (in the order the
  configuration lists them) whose value the user holds gives the role; a user holding none is
  refused (``role_for`` returns None);
- the user name comes from ``username_claim`` (normalised and checked like every identifier:
  NFKC, visible, one script, no spaces, at most 100 characters); email, team and service come
  from their claims when those are configured and present.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from icsflow.workflow.data import is_email
from icsflow.workflow.errors import ValidationError
from icsflow.workflow.limits import identifier

DEFAULT_SECRET_ENV = "ICSFLOW_OIDC_CLIENT_SECRET"
DEFAULT_SCOPES = ("openid", "profile", "email")
START_PATH = "/login/oidc"
CALLBACK_PATH = "/login/oidc/callback"
REQUIRED = ("issuer", "client_id", "role_map")
MAX_USER_NAME = 100  # web_users.name


class BadValue(ValueError):
    """A ``web.oidc`` or ``web.base_url`` value is wrong; the configuration adds where."""


class ClaimProblem(ValueError):
    """The provider's claims cannot make an icsflow user (no subject, a bad user name)."""


@dataclass(frozen=True, slots=True)
class OidcConfig:
    """The ``web.oidc`` section (``docs/configuration.md``)."""

    issuer: str
    client_id: str
    role_map: Mapping[str, str] = field(default_factory=dict)
    client_secret_env: str = DEFAULT_SECRET_ENV
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    role_claim: str = "roles"
    username_claim: str = "preferred_username"
    email_claim: str | None = "email"
    team_claim: str | None = None
    service_claim: str | None = None
    local_passwords: bool = False

    def redirect_uri(self, base_url: str) -> str:
        """Where the provider sends the browser back (register it at the provider)."""
        return base_url.rstrip("/") + CALLBACK_PATH


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the provider says signed in, as icsflow will store them."""

    issuer: str
    subject: str
    user_name: str
    role: str | None
    role_values: tuple[str, ...]
    email: str | None = None
    team: str | None = None
    service: str | None = None


# -- values -----------------------------------------------------------------------------------

def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadValue(f"{value!r} is not a non-empty string")
    return value.strip()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def web_address(value: object) -> str:
    """An ``https://`` address without query or fragment (``http://`` only on loopback), with
    no trailing slash: ``web.base_url`` and ``web.oidc.issuer``."""
    text = _text(value)
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
    except ValueError:
        raise BadValue(f"{text!r} is not a URL") from None
    if parts.scheme not in ("https", "http") or not host:
        raise BadValue(f"{text!r} is not an https:// address")
    if parts.scheme == "http" and not _loopback(host):
        raise BadValue(f"{text!r} is not https:// (http:// is allowed only on loopback, for "
                       "tests): sign-in must not travel in clear")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise BadValue(f"{text!r} must not carry a query, a fragment or credentials")
    return text.rstrip("/")


_CLAIM = re.compile(r"^[A-Za-z0-9_:/\-]+(?:\.[A-Za-z0-9_:/\-]+)*$")


def claim_name(value: object) -> str:
    """A claim's name, or a dotted path into nested claims (``realm_access.roles``)."""
    text = _text(value)
    if not _CLAIM.match(text):
        raise BadValue(f"{text!r} is not a claim name (letters, digits, _ : / - and dots "
                       "between nested names)")
    return text


def optional_claim(value: object) -> str | None:
    """A claim name, or '' for none (``email_claim = ""`` stops reading email addresses)."""
    if isinstance(value, str) and not value.strip():
        return None
    return claim_name(value)


def env_name(value: object) -> str:
    text = _text(value)
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", text):
        raise BadValue(f"{text!r} is not an environment variable's name")
    return text


def scopes(value: object) -> tuple[str, ...]:
    """A list of scopes (or one string, comma- or space-separated) that includes openid."""
    items = re.split(r"[,\s]+", value) if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise BadValue(f"{value!r} is not a list of scopes")
    found = tuple(dict.fromkeys(_text(i) for i in items if not isinstance(i, str) or i.strip()))
    if any(not re.match(r"^[\x21\x23-\x5b\x5d-\x7e]+$", s) for s in found):
        raise BadValue(f"{list(found)!r} holds a scope with characters a scope cannot have")
    if "openid" not in found:
        raise BadValue(f"{list(found)!r} lacks openid (without it there is no ID token)")
    return found


_ROLE = re.compile(r"^[a-z][a-z0-9_]*$")


def role_map(value: object) -> dict[str, str]:
    """Claim value -> icsflow role, in the order given (the first the user holds wins)."""
    if not isinstance(value, Mapping) or not value:
        raise BadValue(f"{value!r} is not a mapping of claim value -> icsflow role (at least "
                       "one)")
    out: dict[str, str] = {}
    for key, role in value.items():
        name = _text(str(key))
        text = _text(role) if isinstance(role, str) else ""
        if not _ROLE.match(text):
            raise BadValue(f"{name}: {role!r} is not a role name (snake_case, e.g. iro)")
        out[name] = text
    return out


def flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise BadValue(f"{value!r} is not true or false")


# (key under web.oidc, parser, environment variable)
KEYS: tuple[tuple[str, Any, str | None], ...] = (
    ("issuer", web_address, None),
    ("client_id", _text, None),
    ("client_secret_env", env_name, None),
    ("scopes", scopes, None),
    ("role_claim", claim_name, None),
    ("role_map", role_map, None),
    ("username_claim", claim_name, None),
    ("email_claim", optional_claim, None),
    ("team_claim", optional_claim, None),
    ("service_claim", optional_claim, None),
    ("local_passwords", flag, None),
)


def oidc_from(values: Mapping[str, Any], base_url: str | None) -> OidcConfig | None:
    """The section from its parsed values (keys without the ``web.oidc.`` prefix); None when
    no key is set. Raises ``BadValue`` naming the first missing key as ``KEY: message``."""
    if not values:
        return None
    for key in REQUIRED:
        if key not in values:
            raise BadValue(f"web.oidc.{key}: missing; OpenID Connect sign-in needs "
                           f"web.oidc.{', web.oidc.'.join(REQUIRED)} and web.base_url")
    if base_url is None:
        raise BadValue("web.base_url: missing; OpenID Connect sign-in needs the address users "
                       f"reach icsflow at (the provider sends them back to it + {CALLBACK_PATH})")
    if urlsplit(base_url).path.rstrip("/"):
        raise BadValue(f"web.base_url: {base_url!r} has a path; icsflow serves from the root of "
                       "its address")
    return OidcConfig(**values)


def unknown_roles(config: OidcConfig, roles: Collection[str]) -> str | None:
    """One line naming the ``role_map`` entries whose role no definition has, or None."""
    bad = [f"{value!r} -> {role!r}" for value, role in config.role_map.items()
           if role not in roles]
    if not bad:
        return None
    return (f"web.oidc.role_map: {', '.join(bad)}: not a role of the definitions (they have "
            f"{', '.join(sorted(roles))})")


# -- claims -----------------------------------------------------------------------------------

def claim(claims: Mapping[str, object], path: str) -> object:
    """The value at ``path`` (a key, or dotted keys into nested objects), or None."""
    if path in claims:
        return claims[path]
    node: object = claims
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def claim_values(value: object) -> tuple[str, ...]:
    """A claim as a tuple of strings: one string, or the strings of a list."""
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list | tuple):
        return tuple(v for v in value if isinstance(v, str) and v)
    return ()


def role_for(config: OidcConfig, claims: Mapping[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    """(the icsflow role, the role claim's values): the first ``role_map`` entry the user
    holds, or None when they hold none."""
    held = claim_values(claim(claims, config.role_claim))
    for value, role in config.role_map.items():
        if value in held:
            return role, held
    return None, held


def _line(value: object, limit: int = 200) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text if text and len(text) <= limit and text.isprintable() else None


def identity_from(config: OidcConfig, claims: Mapping[str, Any]) -> Identity:
    """Who signed in, from verified claims; ``ClaimProblem`` says what is missing or wrong."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise ClaimProblem("the provider's answer names no subject (sub)")
    raw = claim(claims, config.username_claim)
    if not isinstance(raw, str) or not raw.strip():
        raise ClaimProblem(f"the provider's answer has no {config.username_claim} claim to name "
                           "the icsflow user (web.oidc.username_claim)")
    try:
        name = identifier(raw, f"claim {config.username_claim}", limit=MAX_USER_NAME,
                          spaces=False)
    except ValidationError as error:
        raise ClaimProblem(str(error)) from None
    role, held = role_for(config, claims)
    email = _line(claim(claims, config.email_claim), 320) if config.email_claim else None
    return Identity(
        issuer=config.issuer, subject=subject, user_name=name, role=role, role_values=held,
        email=email.lower() if email and is_email(email) else None,
        team=_line(claim(claims, config.team_claim)) if config.team_claim else None,
        service=_line(claim(claims, config.service_claim)) if config.service_claim else None)


__all__ = ["OidcConfig", "Identity", "BadValue", "ClaimProblem", "KEYS", "REQUIRED",
           "DEFAULT_SECRET_ENV", "DEFAULT_SCOPES", "START_PATH", "CALLBACK_PATH", "oidc_from",
           "web_address", "unknown_roles", "claim", "claim_values", "role_for", "identity_from"]
