"""Server-side sessions and API tokens: an old cookie is dead after sign-out, a new password,
disabling or a new role; idle and absolute timeouts; tokens expire and are revoked one by one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from web_support import PASSWORD, WebWorld, build, password_hash

from icsflow.storage.sessions import digest_of, sessions
from icsflow.workflow.cli import cli
from icsflow.workflow.web.auth import SESSION_COOKIE, new_token, token_digest


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[WebWorld]:
    w = build(tmp_path)
    yield w
    w.engine.close()


def signed_in(world: WebWorld, name: str = "tm") -> tuple[TestClient, str]:
    c = TestClient(world.app, follow_redirects=False)
    form = c.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    r = c.post("/login", data={"username": name, "password": PASSWORD, "next": "/",
                               "csrf_token": token.group(1)})
    assert r.status_code == 303
    cookie = c.cookies.get(SESSION_COOKIE)
    assert cookie
    return c, cookie


def replay(world: WebWorld, cookie: str) -> int:
    """A fresh client presenting only an old cookie (as a thief would)."""
    c = TestClient(world.app, follow_redirects=False, cookies={SESSION_COOKIE: cookie})
    return c.get("/api/me").status_code


def db(world: WebWorld) -> str:
    return world.users.sql.url.render_as_string(hide_password=False)


def test_the_cookie_is_an_opaque_random_id_and_only_its_digest_is_stored(
        world: WebWorld) -> None:
    _, cookie = signed_in(world)
    assert "tm" not in cookie and len(cookie) >= 40
    with world.users.sql.connect() as conn:
        stored = [r.digest for r in conn.execute(select(sessions.c.digest))]
    assert stored == [digest_of(cookie)] and cookie not in stored


def test_signing_in_again_gives_a_new_session_id(world: WebWorld) -> None:
    _, first = signed_in(world)
    _, second = signed_in(world)
    assert first != second and replay(world, first) == 200


def test_an_old_cookie_is_dead_after_sign_out(world: WebWorld) -> None:
    c, cookie = signed_in(world)
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/").text)
    assert token and replay(world, cookie) == 200
    assert c.post("/logout", data={"csrf_token": token.group(1)}).status_code == 303
    assert replay(world, cookie) == 401


def test_an_old_cookie_is_dead_after_a_password_change(world: WebWorld) -> None:
    _, cookie = signed_in(world)
    r = CliRunner().invoke(cli, ["--db", db(world), "user", "passwd", "tm", "--password-stdin"],
                           input="a-brand-new-password\n")
    assert r.exit_code == 0, r.output
    assert replay(world, cookie) == 401


def test_an_old_cookie_stays_dead_after_disable_and_enable(world: WebWorld) -> None:
    _, cookie = signed_in(world)
    assert CliRunner().invoke(cli, ["--db", db(world), "user", "disable", "tm"]).exit_code == 0
    assert replay(world, cookie) == 401
    assert CliRunner().invoke(cli, ["--db", db(world), "user", "enable", "tm"]).exit_code == 0
    assert replay(world, cookie) == 401


def test_an_old_cookie_is_dead_after_a_role_change(world: WebWorld) -> None:
    _, cookie = signed_in(world)
    r = CliRunner().invoke(cli, ["--db", db(world), "user", "set", "tm", "--role", "director"])
    assert r.exit_code == 0 and "sessions were ended" in r.output
    assert replay(world, cookie) == 401


def test_changing_a_relationship_applies_to_the_live_session_at_once(world: WebWorld) -> None:
    c, cookie = signed_in(world)
    assert c.get("/children/CH-2").status_code == 403
    r = CliRunner().invoke(cli, ["--db", db(world), "user", "set", "tm", "--team",
                                 "tm.2@council.example"])
    assert r.exit_code == 0
    assert c.get("/children/CH-2").status_code == 200 and replay(world, cookie) == 200


def _age(world: WebWorld, cookie: str, **moved: timedelta) -> None:
    now = datetime.now(UTC)
    values = {k: now - v for k, v in moved.items()}
    with world.users.sql.begin() as conn:
        conn.execute(update(sessions).where(sessions.c.digest == digest_of(cookie))
                     .values(**values))


def test_a_session_idle_longer_than_the_idle_timeout_is_ended(world: WebWorld) -> None:
    _, cookie = signed_in(world)
    _age(world, cookie, last_seen_at=timedelta(minutes=29))
    assert replay(world, cookie) == 200  # and this request counts as activity
    _age(world, cookie, last_seen_at=timedelta(minutes=31))
    assert replay(world, cookie) == 401
    [record] = world.app.state.web.sessions.for_user("tm")
    assert record.end_reason == "idle"


def test_a_session_older_than_the_absolute_timeout_is_ended_however_active(
        world: WebWorld) -> None:
    _, cookie = signed_in(world)
    _age(world, cookie, created_at=timedelta(hours=8, minutes=1),
         last_seen_at=timedelta(minutes=1))
    assert replay(world, cookie) == 401


def test_sessions_are_listed_and_revoked_from_the_command_line(world: WebWorld) -> None:
    _, cookie = signed_in(world)
    listed = CliRunner().invoke(cli, ["--db", db(world), "user", "sessions", "tm"])
    assert listed.exit_code == 0
    assert digest_of(cookie)[:12] in listed.output and "live" in listed.output
    assert cookie not in listed.output and "testclient" in listed.output
    revoked = CliRunner().invoke(cli, ["--db", db(world), "user", "sessions", "tm",
                                       "--revoke"])
    assert revoked.exit_code == 0 and "1 session(s) of tm ended" in revoked.output
    assert replay(world, cookie) == 401
    assert "revoked by an administrator" in CliRunner().invoke(
        cli, ["--db", db(world), "user", "sessions", "tm"]).output


def test_an_expired_token_is_refused(world: WebWorld) -> None:
    token = new_token()
    world.users.add_token(token_digest(token), "tm", "old", datetime.now(UTC) - timedelta(days=2),
                          datetime.now(UTC) - timedelta(seconds=1))
    c = TestClient(world.app)
    assert c.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_tokens_are_named_listed_and_revoked_one_by_one(world: WebWorld) -> None:
    base = ["--db", db(world), "user", "token", "tm"]
    made = CliRunner().invoke(cli, [*base, "--label", "portal", "--expires", "2099-01-31"])
    assert made.exit_code == 0
    token = made.output.strip()
    listed = CliRunner().invoke(cli, [*base, "--list"]).output
    line = next(ln for ln in listed.splitlines() if "portal" in ln)
    assert "2099-02-01" in line or "2099-01-31" in line
    assert token not in listed and "live" in line
    token_id = line.split()[0]
    c = TestClient(world.app)
    assert c.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    other = world.tokens["tm"]
    revoked = CliRunner().invoke(cli, [*base, "--revoke", token_id])
    assert revoked.exit_code == 0, revoked.output
    assert c.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert c.get("/api/me", headers={"Authorization": f"Bearer {other}"}).status_code == 200
    again = CliRunner().invoke(cli, [*base, "--revoke", token_id])
    assert again.exit_code == 1 and "already revoked" in again.output
    assert "revoked" in CliRunner().invoke(cli, [*base, "--list"]).output


def test_a_new_token_expires_in_90_days_by_default(world: WebWorld) -> None:
    token = CliRunner().invoke(cli, ["--db", db(world), "user", "token", "tm"]).output.strip()
    record = world.users.token(token_digest(token), datetime.now(UTC))
    assert record is not None and record.expires_at is not None
    days = (record.expires_at - datetime.now(UTC)).days
    assert 89 <= days <= 91


def test_a_user_added_with_relationships_keeps_them(world: WebWorld) -> None:
    r = CliRunner().invoke(cli, ["--db", db(world), "user", "add", "sw1", "--role",
                                 "social_worker", "--team", "tm.1@council.example",
                                 "--password-stdin"], input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    record = world.users.get("sw1")
    assert record is not None and record.team == "tm.1@council.example"
    assert "team tm.1@council.example" in CliRunner().invoke(
        cli, ["--db", db(world), "user", "list"]).output
    world.users.set_password("sw1", password_hash(), datetime.now(UTC))
    c, _ = signed_in(world, "sw1")
    assert c.get("/children/CH-1").status_code == 200
    assert c.get("/children/CH-2").status_code == 403


def test_a_relationship_attribute_must_be_one_printable_line(world: WebWorld) -> None:
    bad = CliRunner().invoke(cli, ["--db", db(world), "user", "set", "tm", "--email", "nope"])
    assert bad.exit_code == 1 and "is not an email address" in bad.output
    bad = CliRunner().invoke(cli, ["--db", db(world), "user", "set", "tm", "--team", "a\x1bb"])
    assert bad.exit_code == 1 and "printable" in bad.output
    ok = CliRunner().invoke(cli, ["--db", db(world), "user", "set", "tm", "--email",
                                  "TM.One@Council.Example", "--team", ""])
    assert ok.exit_code == 0
    record = world.users.get("tm")
    assert record is not None and record.email == "tm.one@council.example" and record.team is None
