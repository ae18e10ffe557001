"""Sign-in through the council's identity provider, end to end against a real OpenID provider
on loopback (``oidc_support``: panva's oidc-provider under Node.js): icsflow's half driven
with FastAPI's TestClient (httpx), the browser's half at the provider with httpx.

Every refusal is checked for its page, its audit row and that nothing was stored."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from oidc_support import CLIENT, ROLE_MAP, SECRET, Provider, free_port, through_provider
from web_support import PASSWORD, WebWorld, build

from icsflow.storage.audit import AuditStore
from icsflow.storage.oidc import NO_PASSWORD, SignOnStore, pending
from icsflow.workflow import FakeClock
from icsflow.workflow.identity import OidcConfig
from icsflow.workflow.web import WebSettings
from icsflow.workflow.web.auth import SESSION_COOKIE

pytestmark = pytest.mark.slow


def oidc(provider: Provider, **changes: Any) -> OidcConfig:
    config = OidcConfig(issuer=provider.issuer, client_id=CLIENT, role_map=ROLE_MAP,
                        team_claim="team")
    return replace(config, **changes)


def world_of(tmp: Path, provider: Provider, config: OidcConfig | None = None, *,
             secret: str = SECRET, wall_clock: Any = None) -> WebWorld:
    settings = WebSettings(secret=b"s" * 32, base_url=provider.base,
                           oidc=config or oidc(provider), oidc_client_secret=secret)
    if wall_clock is not None:
        settings.wall_clock = wall_clock
    return build(tmp, settings)


@pytest.fixture()
def world(tmp_path: Path, oidc_provider: Provider) -> Iterator[WebWorld]:
    w = world_of(tmp_path, oidc_provider)
    yield w
    w.engine.close()


def browser(world: WebWorld, provider: Provider) -> TestClient:
    return TestClient(world.app, base_url=provider.base, follow_redirects=False)


def begin(client: TestClient, next_path: str = "/") -> str:
    """icsflow's sign-in button: the address of the provider's sign-in."""
    response = client.get("/login/oidc", params={"next": next_path})
    assert response.status_code == 303, response.text
    return response.headers["location"]


def local(url: str) -> str:
    """The path and query of an address on icsflow (what the browser asks the app for)."""
    parts = urlsplit(url)
    return urlunsplit(("", "", parts.path, parts.query, ""))


def sign_in(client: TestClient, account: str, next_path: str = "/") -> httpx.Response:
    return client.get(local(through_provider(begin(client, next_path), account)))


def audit(world: WebWorld, kind: str) -> list[Any]:
    return [r.entry for r in AuditStore(world.users.sql).rows(kinds=[kind])]


def pending_rows(world: WebWorld) -> int:
    with world.users.sql.connect() as conn:
        return len(conn.execute(pending.select()).all())


# -- the good path ----------------------------------------------------------------------------

def test_a_provider_sign_in_creates_the_user_from_the_claims_and_opens_a_session(
        world: WebWorld, oidc_provider: Provider) -> None:
    c = browser(world, oidc_provider)
    url = begin(c)
    auth = parse_qs(urlsplit(url).query)
    assert auth["code_challenge_method"] == ["S256"] and auth["code_challenge"][0]
    assert auth["state"][0] and auth["nonce"][0] and auth["response_type"] == ["code"]
    assert auth["redirect_uri"] == [oidc_provider.base + "/login/oidc/callback"]
    assert pending_rows(world) == 1

    answer = c.get(local(through_provider(url, "alice")))
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    me = c.get("/api/me").json()
    assert me == {"name": "alice", "role": "iro", "via": "session"}
    record = world.users.get("alice")
    assert record is not None and record.role == "iro"
    assert record.email == "alice.iro@council.example"  # lower-cased, as `user add` keeps it
    assert record.password_hash == NO_PASSWORD
    assert SignOnStore(world.users.sql).linked_user(oidc_provider.issuer, "alice") == "alice"
    signed = audit(world, "sign_in")[-1]
    assert (signed.user, signed.role, signed.detail) == ("alice", "iro", "oidc")
    created = audit(world, "account")[-1]
    assert created.user == "alice" and "created with role iro" in (created.detail or "")
    assert pending_rows(world) == 0  # the sign-in under way was taken


def test_the_provider_sign_in_makes_the_same_server_side_session_as_a_password(
        world: WebWorld, oidc_provider: Provider) -> None:
    from icsflow.storage.sessions import SessionStore

    c = browser(world, oidc_provider)
    sign_in(c, "alice")
    cookie = c.cookies.get(SESSION_COOKIE)
    assert cookie and len(cookie) >= 40
    stored = SessionStore(world.users.sql).for_user("alice")
    assert len(stored) == 1 and stored[0].via == "oidc" and stored[0].ended_at is None


def test_an_existing_user_is_linked_and_takes_the_team_from_the_claims(
        world: WebWorld, oidc_provider: Provider) -> None:
    c = browser(world, oidc_provider)
    assert sign_in(c, "tm-sub").status_code == 303
    record = world.users.get("tm")
    assert record is not None and record.role == "team_manager"
    assert record.team == "tm.1@council.example" and record.email == "tm@council.example"
    assert record.password_hash != NO_PASSWORD  # the password they had is kept
    today = c.get("/")
    assert today.status_code == 200 and "ALERT-1" in today.text and "ALERT-2" not in today.text


def test_the_next_page_survives_the_trip_to_the_provider(world: WebWorld,
                                                        oidc_provider: Provider) -> None:
    c = browser(world, oidc_provider)
    answer = sign_in(c, "tm-sub", "/children/CH-1")
    assert answer.headers["location"] == "/children/CH-1"
    evil = sign_in(browser(world, oidc_provider), "tm-sub", "//evil.example/x")
    assert evil.headers["location"] == "/"


def test_a_new_role_from_the_provider_changes_the_user_and_ends_their_other_sessions(
        tmp_path: Path, world: WebWorld, oidc_provider: Provider) -> None:
    first = browser(world, oidc_provider)
    sign_in(first, "alice")
    assert first.get("/api/me").status_code == 200
    remapped = oidc(oidc_provider, role_map={"icsflow-iro": "cpc"})
    world.app.state.web.settings.oidc = remapped
    world.app.state.web.signon.config = remapped
    second = browser(world, oidc_provider)
    sign_in(second, "alice")
    assert second.get("/api/me").json()["role"] == "cpc"
    assert first.get("/api/me").status_code == 401  # the old role's session ended
    assert "role iro -> cpc" in (audit(world, "account")[-1].detail or "")


# -- refusals ---------------------------------------------------------------------------------

def assert_refused(world: WebWorld, answer: httpx.Response, status: int, words: str,
                   detail: str) -> None:
    assert answer.status_code == status, answer.text
    text = html.unescape(answer.text)
    assert "Sign-in failed" in text and words in text
    assert SESSION_COOKIE not in answer.cookies
    failed = audit(world, "sign_in_failed")
    assert failed and detail in (failed[-1].detail or ""), [f.detail for f in failed]


def test_a_user_with_no_mapped_role_is_refused_and_nothing_is_stored(
        world: WebWorld, oidc_provider: Provider) -> None:
    c = browser(world, oidc_provider)
    answer = sign_in(c, "nobody")
    assert_refused(world, answer, 403, "has no icsflow role",
                   "no mapped role: claim roles holds all-staff")
    assert audit(world, "sign_in_failed")[-1].user == "nobody"
    assert world.users.get("nobody") is None
    assert SignOnStore(world.users.sql).linked_user(oidc_provider.issuer, "nobody") is None
    assert c.get("/api/me").status_code == 401


def test_an_answer_with_a_state_icsflow_never_issued_is_refused(
        world: WebWorld, oidc_provider: Provider) -> None:
    c = browser(world, oidc_provider)
    back = through_provider(begin(c), "alice")
    parts = urlsplit(back)
    query = parse_qs(parts.query)
    query["state"] = ["not-a-state-of-ours"]
    answer = c.get(parts.path + "?" + urlencode({k: v[0] for k, v in query.items()}))
    assert_refused(world, answer, 400, "does not match a sign-in begun in this browser",
                   "state unknown")
    assert world.users.get("alice") is None


def test_an_answer_delivered_to_another_browser_is_refused(world: WebWorld,
                                                           oidc_provider: Provider) -> None:
    victim = browser(world, oidc_provider)
    back = through_provider(begin(browser(world, oidc_provider)), "alice")
    answer = victim.get(local(back))  # no binding cookie: the state is another browser's
    assert_refused(world, answer, 400, "does not match", "another browser")
    assert world.users.get("alice") is None


def test_a_replayed_answer_is_refused(world: WebWorld, oidc_provider: Provider) -> None:
    c = browser(world, oidc_provider)
    back = local(through_provider(begin(c), "alice"))
    assert c.get(back).status_code == 303
    assert_refused(world, c.get(back), 400, "does not match", "state unknown, used or expired")


def test_an_id_token_for_another_nonce_is_refused(world: WebWorld,
                                                 oidc_provider: Provider) -> None:
    """An attacker's code, obtained with their own nonce, injected into a sign-in of ours: the
    provider issues it faithfully, and the nonce check catches it."""
    c = browser(world, oidc_provider)
    auth = urlsplit(begin(c))
    query = {k: v[0] for k, v in parse_qs(auth.query).items()}
    query["nonce"] = "the-attackers-own-nonce"
    tampered = urlunsplit((auth.scheme, auth.netloc, auth.path, urlencode(query), ""))
    answer = c.get(local(through_provider(tampered, "alice")))
    assert_refused(world, answer, 502, "could not be trusted",
                   "its nonce is not this sign-in's")
    assert world.users.get("alice") is None


def test_an_expired_id_token_is_refused(tmp_path: Path, oidc_provider: Provider) -> None:
    later = FakeClock(datetime.now(UTC) + timedelta(hours=3))  # past the token's hour
    world = world_of(tmp_path, oidc_provider, wall_clock=later)
    c = browser(world, oidc_provider)
    answer = sign_in(c, "alice")
    assert_refused(world, answer, 502, "could not be trusted", "it has expired")
    assert world.users.get("alice") is None
    world.engine.close()


def test_a_wrong_client_secret_is_refused_naming_the_setting(tmp_path: Path,
                                                           oidc_provider: Provider) -> None:
    world = world_of(tmp_path, oidc_provider, secret="not-the-secret-at-all")
    answer = sign_in(browser(world, oidc_provider), "alice")
    assert_refused(world, answer, 502, "web.oidc.client_id or its client secret",
                   "refused the client (invalid_client")
    assert world.users.get("alice") is None
    world.engine.close()


def test_a_provider_that_is_down_gets_one_clear_page_and_nothing_is_stored(
        tmp_path: Path, oidc_provider: Provider) -> None:
    down = oidc(oidc_provider, issuer=f"http://127.0.0.1:{free_port()}")
    world = world_of(tmp_path, oidc_provider, down)
    answer = browser(world, oidc_provider).get("/login/oidc")
    assert_refused(world, answer, 503, "could not reach the council's identity provider",
                   "provider unreachable: discovery document: ConnectionError")
    assert pending_rows(world) == 0
    world.engine.close()


@pytest.mark.parametrize(("issuer", "words", "detail"), [
    ("{issuer}/realms/staff", "HTTP 404", "discovery document at"),
    ("http://localhost:{port}", "must be exactly the provider's issuer", "issuer mismatch"),
])
def test_a_mis_set_issuer_gets_one_clear_page(tmp_path: Path, oidc_provider: Provider,
                                              issuer: str, words: str, detail: str) -> None:
    wrong = issuer.format(issuer=oidc_provider.issuer,
                          port=urlsplit(oidc_provider.issuer).port)
    world = world_of(tmp_path, oidc_provider, oidc(oidc_provider, issuer=wrong))
    answer = browser(world, oidc_provider).get("/login/oidc")
    assert_refused(world, answer, 502, words, detail)
    assert pending_rows(world) == 0
    world.engine.close()


def test_an_answer_naming_another_issuer_is_refused(world: WebWorld,
                                                   oidc_provider: Provider) -> None:
    """RFC 9207: a provider that names itself in its answer must be ours (mix-up)."""
    c = browser(world, oidc_provider)
    back = urlsplit(through_provider(begin(c), "alice"))
    query = {k: v[0] for k, v in parse_qs(back.query).items()}
    assert query["iss"] == oidc_provider.issuer  # the provider does name itself
    query["iss"] = "https://login.elsewhere.example"
    answer = c.get(back.path + "?" + urlencode(query))
    assert_refused(world, answer, 400, "came from another identity provider",
                   "authorization response iss")
    assert world.users.get("alice") is None


def test_a_refusal_at_the_provider_is_shown_and_audited(world: WebWorld,
                                                       oidc_provider: Provider) -> None:
    c = browser(world, oidc_provider)
    state = parse_qs(urlsplit(begin(c)).query)["state"][0]
    answer = c.get("/login/oidc/callback", params={
        "error": "access_denied", "error_description": "End-User aborted interaction",
        "state": state, "iss": oidc_provider.issuer})
    assert_refused(world, answer, 403, "did not sign you in (access_denied)",
                   "provider answered an error (access_denied")


def test_another_account_claiming_a_linked_user_name_is_refused(
        world: WebWorld, oidc_provider: Provider) -> None:
    sign_in(browser(world, oidc_provider), "alice")
    c = browser(world, oidc_provider)
    answer = sign_in(c, "impostor")  # preferred_username "alice", another subject
    assert_refused(world, answer, 403, "belongs to another account",
                   "belongs to another account at the identity provider")
    assert c.get("/api/me").status_code == 401


def test_a_user_name_with_hidden_characters_is_refused(world: WebWorld,
                                                       oidc_provider: Provider) -> None:
    answer = sign_in(browser(world, oidc_provider), "bidi")
    assert_refused(world, answer, 403, "cannot be used here", "invisible or control character")
    assert world.users.names() == sorted(world.users.names())
    assert not [n for n in world.users.names() if "\u202e" in n]


def test_a_disabled_user_is_refused_and_left_unchanged(world: WebWorld,
                                                       oidc_provider: Provider) -> None:
    world.users.set_disabled("tm", True, datetime.now(UTC))
    answer = sign_in(browser(world, oidc_provider), "tm-sub")
    assert_refused(world, answer, 403, "disabled", "user disabled")
    record = world.users.get("tm")
    assert record is not None and record.team == "tm.1@council.example"
    assert SignOnStore(world.users.sql).linked_user(oidc_provider.issuer, "tm-sub") is None


# -- passwords and sign-out -------------------------------------------------------------------

def test_with_local_passwords_off_the_form_is_gone_and_a_posted_password_is_refused(
        world: WebWorld, oidc_provider: Provider) -> None:
    c = browser(world, oidc_provider)
    page = c.get("/login?next=/allocation")
    assert 'name="password"' not in page.text
    assert 'href="/login/oidc?next=%2Fallocation"' in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    answer = c.post("/login", data={"username": "tm", "password": PASSWORD, "next": "/",
                                    "csrf_token": token.group(1) if token else ""})
    assert answer.status_code == 403 and "turned off" in answer.text
    assert SESSION_COOKIE not in answer.cookies
    assert "password sign-in is turned off" in (audit(world, "sign_in_failed")[-1].detail or "")


def test_with_local_passwords_on_both_ways_are_offered_and_a_password_works(
        tmp_path: Path, oidc_provider: Provider) -> None:
    world = world_of(tmp_path, oidc_provider, oidc(oidc_provider, local_passwords=True))
    c = browser(world, oidc_provider)
    page = c.get("/login")
    assert 'name="password"' in page.text and 'href="/login/oidc"' in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    answer = c.post("/login", data={"username": "tm", "password": PASSWORD, "next": "/",
                                    "csrf_token": token.group(1)})
    assert answer.status_code == 303 and c.get("/api/me").json()["name"] == "tm"
    world.engine.close()


def test_a_user_the_provider_made_cannot_sign_in_with_any_password(
        tmp_path: Path, oidc_provider: Provider) -> None:
    world = world_of(tmp_path, oidc_provider, oidc(oidc_provider, local_passwords=True))
    sign_in(browser(world, oidc_provider), "alice")
    c = browser(world, oidc_provider)
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
    assert token
    answer = c.post("/login", data={"username": "alice", "password": NO_PASSWORD * 3,
                                    "next": "/", "csrf_token": token.group(1)})
    assert answer.status_code == 401 and "Wrong user name or password" in answer.text
    world.engine.close()


def test_signing_out_ends_the_session_and_sends_the_browser_to_the_providers_sign_out(
        world: WebWorld, oidc_provider: Provider) -> None:
    c = browser(world, oidc_provider)
    sign_in(c, "alice")
    page = c.get("/")
    csp = page.headers["content-security-policy"]
    assert f"form-action 'self' {oidc_provider.issuer};" in csp
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    old = c.cookies.get(SESSION_COOKIE)
    answer = c.post("/logout", data={"csrf_token": token.group(1)})
    assert answer.status_code == 303
    target = urlsplit(answer.headers["location"])
    assert f"{target.scheme}://{target.netloc}" == oidc_provider.issuer
    assert parse_qs(target.query) == {
        "client_id": [CLIENT], "post_logout_redirect_uri": [oidc_provider.base + "/login"]}
    again = TestClient(world.app, base_url=oidc_provider.base, cookies={SESSION_COOKIE: old})
    assert again.get("/api/me").status_code == 401
    # the provider accepts the request (its own confirmation page, no error)
    with httpx.Client(timeout=30) as idp:
        shown = idp.get(answer.headers["location"])
    assert shown.status_code == 200 and "error" not in shown.text.lower()


def test_a_password_user_signing_out_stays_on_icsflow(tmp_path: Path,
                                                     oidc_provider: Provider) -> None:
    world = world_of(tmp_path, oidc_provider, oidc(oidc_provider, local_passwords=True))
    c = browser(world, oidc_provider)
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
    assert token
    c.post("/login", data={"username": "tm", "password": PASSWORD, "next": "/",
                           "csrf_token": token.group(1)})
    page_token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/").text)
    assert page_token
    answer = c.post("/logout", data={"csrf_token": page_token.group(1)})
    assert answer.headers["location"] == "/login"
    world.engine.close()
