"""Signed sessions and CSRF tokens: what the web's sign-in rests on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from icsflow.workflow.web.auth import SESSION_HOURS, Signer, hash_password, password_matches

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_a_session_cookie_reads_back_until_it_expires() -> None:
    signer = Signer(b"k" * 32)
    cookie = signer.session_cookie("alice", NOW)
    assert signer.read_session(cookie, NOW + timedelta(hours=1))["u"] == "alice"  # type: ignore
    assert signer.read_session(cookie, NOW + timedelta(hours=SESSION_HOURS, minutes=1)) is None


def test_a_tampered_or_foreign_cookie_is_refused() -> None:
    signer = Signer(b"k" * 32)
    payload, mac = signer.session_cookie("alice", NOW).rsplit(".", 1)
    forged = Signer(b"k" * 32).session_cookie("mallory", NOW).rsplit(".", 1)[0]
    assert signer.read_session(f"{forged}.{mac}", NOW) is None
    assert Signer(b"other" * 8).read_session(f"{payload}.{mac}", NOW) is None
    assert signer.read_session("garbage", NOW) is None
    assert signer.read_session(None, NOW) is None


def test_csrf_token_belongs_to_its_session() -> None:
    signer = Signer(b"k" * 32)
    token = signer.csrf_token("session-1")
    assert signer.csrf_ok("session-1", token)
    assert not signer.csrf_ok("session-2", token)
    assert not signer.csrf_ok("session-1", None)
    assert not signer.csrf_ok("", signer.csrf_token(""))


def test_passwords_hash_with_argon2_and_verify() -> None:
    stored = hash_password("a-long-password")
    assert stored.startswith("$argon2id$") and "a-long-password" not in stored
    assert password_matches(stored, "a-long-password")
    assert not password_matches(stored, "a-long-passwore")
    assert not password_matches(None, "a-long-password")
