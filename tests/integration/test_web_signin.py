"""Signing in: a stranger cannot lock a user out, names are not revealed, failures are audited,
and password checking never holds the server's event loop (real uvicorn on loopback)."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from web_support import PASSWORD, WebWorld, build

from icsflow.storage.audit import AuditStore
from icsflow.workflow import FakeClock
from icsflow.workflow.web import WebSettings
from icsflow.workflow.web.auth import DEVICE_COOKIE

STRANGER = ("203.0.113.66", 40000)
HOME = ("198.51.100.7", 40000)


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[WebWorld]:
    w = build(tmp_path)
    yield w
    w.engine.close()


def attempt(c: TestClient, name: str, password: str) -> httpx.Response:
    form = c.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    return c.post("/login", data={"username": name, "password": password, "next": "/",
                                  "csrf_token": token.group(1)})


def at(world: WebWorld, address: tuple[str, int]) -> TestClient:
    return TestClient(world.app, follow_redirects=False, client=address)


def test_a_strangers_wrong_passwords_cannot_keep_the_user_out(world: WebWorld) -> None:
    home = at(world, HOME)
    assert attempt(home, "tm", PASSWORD).status_code == 303  # this browser is now known
    device = home.cookies.get(DEVICE_COOKIE)
    assert device
    stranger = at(world, STRANGER)
    answers = [attempt(stranger, "tm", "wrong-password-1").status_code for _ in range(40)]
    assert set(answers) == {401, 429} and answers.count(401) < 10  # slowed down, not locked
    assert attempt(at(world, ("192.0.2.44", 1)), "tm", PASSWORD).status_code == 303
    same_address = TestClient(world.app, follow_redirects=False, client=STRANGER,
                              cookies={DEVICE_COOKIE: device})
    assert attempt(same_address, "tm", PASSWORD).status_code == 303


def test_a_guesser_is_slowed_with_growing_delays(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    world = build(tmp_path, WebSettings(secret=b"s" * 32, wall_clock=clock))
    try:
        c = at(world, STRANGER)
        seen: list[int | str] = []
        while seen.count("wrong") < 7:
            r = attempt(c, "tm", "wrong-password-1")
            if r.status_code == 401:
                seen.append("wrong")
            else:
                assert r.status_code == 429
                seen.append(int(r.headers["retry-after"]))
                clock.advance(timedelta(seconds=int(r.headers["retry-after"])))
        assert seen == ["wrong"] * 4 + [1, "wrong", 2, "wrong", 4, "wrong"]
        throttled = attempt(c, "tm", PASSWORD)  # even the right password waits its turn
        assert throttled.status_code == 429 and "try again in 8 seconds" in throttled.text
        clock.advance(timedelta(seconds=8))
        assert attempt(c, "tm", PASSWORD).status_code == 303
    finally:
        world.engine.close()


def test_failures_spread_over_many_addresses_slow_only_addresses_that_failed(
        world: WebWorld) -> None:
    for n in range(12):  # a botnet: one failure from each of twelve addresses
        assert attempt(at(world, (f"203.0.113.{n}", 1)), "tm", "guess-number-1").status_code \
            == 401
    again = attempt(at(world, ("203.0.113.3", 1)), "tm", "guess-number-2")
    assert again.status_code == 429  # this address failed on tm before: the account delay
    assert attempt(at(world, HOME), "tm", PASSWORD).status_code == 303  # a first try passes


def test_an_unknown_name_gets_the_same_answers_as_a_known_one(world: WebWorld) -> None:
    def story(name: str, address: tuple[str, int]) -> list[tuple[int, str]]:
        c = at(world, address)
        out = []
        for _ in range(6):
            r = attempt(c, name, "wrong-password-1")
            error = re.search(r'id="login-error">([^<]*)</a>', r.text)
            out.append((r.status_code, error.group(1) if error else ""))
        return out

    known = story("tm", ("192.0.2.1", 1))
    unknown = story("no-such-user", ("192.0.2.2", 1))
    assert known == unknown
    assert known[0] == (401, "Wrong user name or password.")


def test_failed_and_throttled_sign_ins_are_audited_without_the_typed_name(
        world: WebWorld) -> None:
    c = at(world, STRANGER)
    for _ in range(5):
        attempt(c, "tm", "wrong-password-1")
    attempt(c, "my-password-typed-as-name", "x" * 12)
    attempt(at(world, HOME), "tm", PASSWORD)
    rows = AuditStore(world.users.sql).rows()
    kinds = [(r.entry.kind, r.entry.user) for r in rows]
    assert ("sign_in_failed", "tm") in kinds and ("throttled", "tm") in kinds
    assert ("sign_in", "tm") in kinds
    assert not any("my-password" in r.entry.user for r in rows)
    assert any(r.entry.user.startswith("(unknown ") for r in rows)
    assert all(r.entry.ip in (STRANGER[0], HOME[0]) for r in rows)


def test_a_disabled_user_with_the_right_password_is_told_so(world: WebWorld) -> None:
    world.users.set_disabled("tm", True, datetime.now(UTC))
    r = attempt(at(world, HOME), "tm", PASSWORD)
    assert r.status_code == 403 and "disabled" in r.text
    assert attempt(at(world, HOME), "tm", "wrong-password-1").text.count("disabled") == 0


# -- a real server ---------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[str, WebWorld]]:
    import uvicorn

    from icsflow.workflow.web.server import server_config

    world = build(tmp_path)
    port = _free_port()
    server = uvicorn.Server(server_config(world.app, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield f"http://127.0.0.1:{port}", world
    server.should_exit = True
    thread.join(timeout=10)
    world.engine.close()


def test_sign_ins_waiting_on_password_checks_never_hold_other_requests(
        served: tuple[str, WebWorld]) -> None:
    """Five sign-ins are held inside the password check (the check waits on an event the test
    sets only afterwards): if argon2 ran on the event loop, or held the request threads, the
    /api/me call below could not be answered until then, and would time out."""
    base, world = served
    web = world.app.state.web
    real, entered, release = web.password_check, threading.Event(), threading.Event()

    def held(stored: str | None, password: str) -> bool:
        entered.set()
        release.wait(60)
        return bool(real(stored, password))

    web.password_check = held
    results: list[int] = []

    def sign_in() -> None:
        with httpx.Client(base_url=base, timeout=60, follow_redirects=False) as c:
            form = c.get("/login").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', form)
            assert token
            results.append(c.post("/login", data={
                "username": "tm", "password": PASSWORD, "next": "/",
                "csrf_token": token.group(1)}).status_code)

    threads = [threading.Thread(target=sign_in) for _ in range(5)]
    for t in threads:
        t.start()
    try:
        assert entered.wait(30), "no sign-in reached the password check"
        me = httpx.get(base + "/api/me", timeout=15,
                       headers={"Authorization": f"Bearer {world.tokens['admin']}"})
        health = httpx.get(base + "/healthz", timeout=15)
        assert me.status_code == 200 and me.json()["name"] == "admin"
        assert health.status_code == 200
        assert not release.is_set() and any(t.is_alive() for t in threads)
    finally:
        release.set()
        for t in threads:
            t.join(timeout=60)
    assert results == [303] * 5
