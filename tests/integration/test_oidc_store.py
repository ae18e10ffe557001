"""``storage/oidc.py`` on SQLite and PostgreSQL: a sign-in under way is taken once and expires;
a provider subject is linked to one user, created or updated in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from icsflow.storage.oidc import NO_PASSWORD, PENDING_MINUTES, Refused, SignOnStore
from icsflow.storage.sessions import SessionStore
from icsflow.storage.web_users import UserStore

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
ISSUER = "https://login.council.example"


def test_a_sign_in_under_way_is_taken_once(sql: Engine) -> None:
    store = SignOnStore(sql)
    store.begin("state-1", "browser-1", "nonce-1", "verifier-1", "/children/CH-1", NOW)
    taken = store.take("state-1", NOW + timedelta(minutes=1))
    assert taken is not None
    assert (taken.nonce, taken.code_verifier, taken.next_path) == (
        "nonce-1", "verifier-1", "/children/CH-1")
    assert taken.browser_digest != "browser-1" and len(taken.browser_digest) == 64
    assert store.take("state-1", NOW + timedelta(minutes=1)) is None
    assert store.take("state-never-issued", NOW) is None


def test_a_sign_in_under_way_expires_and_old_ones_are_forgotten(sql: Engine) -> None:
    store = SignOnStore(sql)
    store.begin("old", "b", "n", "v", "/", NOW)
    late = NOW + timedelta(minutes=PENDING_MINUTES, seconds=1)
    assert store.take("old", late) is None
    store.begin("kept", "b", "n", "v", "/", NOW)
    store.begin("new", "b", "n", "v", "/", late)  # forgets "kept", now too old
    assert store.take("kept", NOW) is None
    assert store.take("new", late) is not None


def test_the_first_sign_in_creates_and_links_the_user(sql: Engine) -> None:
    store = SignOnStore(sql)
    outcome = store.sign_in(ISSUER, "sub-1", "alice", "iro", NOW, email="alice@council.example")
    assert outcome.user_name == "alice" and not outcome.disabled
    assert outcome.changes == ("created with role iro",
                               "linked to the identity provider's account")
    record = UserStore(sql).get("alice")
    assert record is not None and record.role == "iro" and record.password_hash == NO_PASSWORD
    assert record.email == "alice@council.example"
    assert store.linked_user(ISSUER, "sub-1") == "alice"


def test_a_linked_subject_keeps_its_user_whatever_name_it_brings_later(sql: Engine) -> None:
    store = SignOnStore(sql)
    store.sign_in(ISSUER, "sub-1", "alice", "iro", NOW)
    again = store.sign_in(ISSUER, "sub-1", "alice.smith", "iro", NOW + timedelta(days=1))
    assert again.user_name == "alice" and again.changes == ()
    assert UserStore(sql).get("alice.smith") is None


def test_another_subject_cannot_take_a_linked_name(sql: Engine) -> None:
    store = SignOnStore(sql)
    store.sign_in(ISSUER, "sub-1", "alice", "iro", NOW)
    with pytest.raises(Refused, match="belongs to another account"):
        store.sign_in(ISSUER, "sub-2", "alice", "admin", NOW)
    record = UserStore(sql).get("alice")
    assert record is not None and record.role == "iro"
    assert store.linked_user(ISSUER, "sub-2") is None


def test_a_new_role_and_team_update_the_user_and_end_their_sessions(sql: Engine) -> None:
    store = SignOnStore(sql)
    store.sign_in(ISSUER, "sub-1", "alice", "iro", NOW, team="north")
    sessions = SessionStore(sql)
    sessions.start("alice", "iro", "oidc", NOW)
    outcome = store.sign_in(ISSUER, "sub-1", "alice", "cpc", NOW, team="south", email=None)
    assert outcome.changes == ("team north -> south", "role iro -> cpc")
    record = UserStore(sql).get("alice")
    assert record is not None and (record.role, record.team) == ("cpc", "south")
    assert [s.end_reason for s in sessions.for_user("alice")] == ["role changed"]


def test_a_disabled_user_is_left_as_they_are(sql: Engine) -> None:
    users = UserStore(sql)
    users.add("tm", "team_manager", "$argon2id$x", NOW, team="north")
    users.set_disabled("tm", True, NOW)
    store = SignOnStore(sql)
    outcome = store.sign_in(ISSUER, "sub-9", "tm", "admin", NOW, team="south")
    assert outcome.disabled and outcome.changes == ()
    record = users.get("tm")
    assert record is not None and (record.role, record.team) == ("team_manager", "north")
    assert store.linked_user(ISSUER, "sub-9") is None


def test_the_session_says_how_it_began(sql: Engine) -> None:
    SignOnStore(sql).sign_in(ISSUER, "sub-1", "alice", "iro", NOW)
    raw = SessionStore(sql).start("alice", "iro", "oidc", NOW)
    assert SignOnStore(sql).session_via(raw) == "oidc"
    assert SignOnStore(sql).session_via("not-a-session") is None
