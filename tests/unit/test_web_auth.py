"""Passwords, CSRF tokens and API tokens: what the web's sign-in rests on."""

from __future__ import annotations

from icsflow.workflow.web.auth import (
    csrf_ok,
    csrf_token,
    hash_password,
    login_csrf,
    login_csrf_ok,
    new_token,
    password_matches,
    token_digest,
)


def test_csrf_token_belongs_to_its_session() -> None:
    token = csrf_token("session-1")
    assert csrf_ok("session-1", token)
    assert not csrf_ok("session-2", token)
    assert not csrf_ok("session-1", None)
    assert not csrf_ok("", csrf_token(""))


def test_a_proxy_users_csrf_token_needs_the_servers_secret() -> None:
    """A proxy user's session id is their name, which anyone knows: the token is keyed by the
    secret too, so a page on another site cannot make it."""
    mine = csrf_token("proxy:alice", b"secret-one" * 4)
    assert csrf_ok("proxy:alice", mine, b"secret-one" * 4)
    assert not csrf_ok("proxy:alice", mine, b"secret-two" * 4)
    assert mine != csrf_token("proxy:alice")


def test_the_sign_in_forms_token_belongs_to_its_pre_session_cookie() -> None:
    assert login_csrf_ok("pre-1", login_csrf("pre-1"))
    assert not login_csrf_ok("pre-2", login_csrf("pre-1"))
    assert not login_csrf_ok("", login_csrf(""))


def test_passwords_hash_with_argon2_and_verify() -> None:
    stored = hash_password("a-long-password")
    assert stored.startswith("$argon2id$") and "a-long-password" not in stored
    assert password_matches(stored, "a-long-password")
    assert not password_matches(stored, "a-long-passwore")
    assert not password_matches(None, "a-long-password")


def test_api_tokens_are_random_and_kept_as_a_digest() -> None:
    a, b = new_token(), new_token()
    assert a != b and a.startswith("icsf_") and len(a) > 40
    assert token_digest(a) != a and len(token_digest(a)) == 64
