"""A small database for the web tests: users of each role, an overdue Alert, a Stage 3 Alert.

The clock stands at Tuesday 20 December 2011: the Alert raised on Thursday 1 December had its
response due on 15 December (10 working days), so it is 3 working days overdue.

Relationships: ALERT-1 (child CH-1) names iro.1@ and team manager tm.1@, ALERT-2 (CH-2) iro.2@
and tm.2@. User ``iro`` is the IRO of CH-1 (by address), ``iro2`` of CH-2; ``tm`` manages team
tm.1@ (CH-1); ``tm2`` team tm.2@ (CH-2); ``director`` has no service set (the whole service);
``admin`` sees all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from icsflow.storage.web_users import UserStore
from icsflow.workflow import Actor, Engine, FakeClock
from icsflow.workflow.web import WebSettings, create_app
from icsflow.workflow.web.auth import hash_password, new_token, token_digest

PASSWORD = "correct-horse-battery"
NOW = datetime(2011, 12, 20, 12, 0, tzinfo=UTC)
DIRECTORY = {"iro_service_manager": ["ism@council.example"],
             "head_of_service": ["hos@council.example"],
             "director": ["director@council.example"], "admin": ["admin@council.example"],
             "service_manager": ["sm@council.example"]}
ROLES = {"tm": "team_manager", "iro": "iro", "director": "director", "admin": "admin",
         "iro2": "iro", "tm2": "team_manager"}
RELATIONS: dict[str, dict[str, str]] = {
    "tm": {"team": "tm.1@council.example"}, "tm2": {"team": "tm.2@council.example"},
    "iro": {"email": "iro.1@council.example"}, "iro2": {"email": "iro.2@council.example"}}


@dataclass
class WebWorld:
    engine: Engine
    users: UserStore
    app: Any
    overdue_id: str
    stage3_id: str
    tokens: dict[str, str]


def alert_data(n: int) -> dict[str, str]:
    return {"iro_email": f"iro.{n}@council.example",
            "team_manager_email": f"tm.{n}@council.example",
            "service_manager_email": f"sm.{n}@council.example",
            "concern": "Plan drift", "category": "care_plan"}


_HASH: list[str] = []


def password_hash() -> str:
    """One argon2 hash for every test user (hashing is slow on purpose)."""
    if not _HASH:
        _HASH.append(hash_password(PASSWORD))
    return _HASH[0]


def build(tmp: Path, settings: WebSettings | None = None) -> WebWorld:
    clock = FakeClock(datetime(2011, 12, 1, 10, 0, tzinfo=UTC))
    engine = Engine.open(db=f"sqlite:///{tmp / 'web.db'}", clock=clock, directory=DIRECTORY)
    iro = Actor("iro", "iro")
    overdue = engine.start("alert_dispute", ref="ALERT-1", data=alert_data(1), actor=iro,
                           child="CH-1", family="FAM-1")
    stage3 = engine.start("alert_dispute", ref="ALERT-2", data=alert_data(2), actor=iro,
                          child="CH-2")
    engine.fire(stage3.id, "escalate_to_stage3", actor=iro)
    clock.set(NOW)
    engine.tick(now=NOW)
    users = UserStore(engine.store.engine)
    tokens = {}
    for name, role in ROLES.items():
        users.add(name, role, password_hash(), NOW, **RELATIONS.get(name, {}))
        token = new_token()
        users.add_token(token_digest(token), name, "tests", NOW)
        tokens[name] = token
    app = create_app(engine, users, settings or WebSettings(secret=b"s" * 32))
    return WebWorld(engine, users, app, overdue.id, stage3.id, tokens)


__all__ = ["WebWorld", "build", "PASSWORD", "NOW", "ROLES", "alert_data", "password_hash"]


CHROMIUM = "/usr/bin/chromium"  # Debian's Chromium, driven by Playwright (no downloads here)


def free_port() -> int:
    """A loopback port nobody listens on (the OS picks it)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served_app(app: Any, port: int) -> Iterator[str]:
    """``app`` under uvicorn on a thread at ``port`` for the ``with`` block; its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)  # uvicorn says when it listens; nothing else to wait on
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def chromium(sync_api: Any, args: tuple[str, ...] | list[str] = (
        "--no-sandbox", "--headless", "--disable-gpu")) -> Iterator[Any]:
    """Headless Chromium through Playwright, closed at the end of the block."""
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=list(args))
        try:
            yield b
        finally:
            b.close()


def today_row(page: Any, ref: str, deadline: str) -> Any:
    """The one row of Today's table for case ``ref`` and the deadline labelled ``deadline``
    (exactly: "Response due" is not "Stage 1 response due")."""
    rows = page.locator("table.govuk-table tbody tr", has_text=ref)
    found = [rows.nth(k) for k in range(rows.count())
             if rows.nth(k).locator('td[data-label="Deadline"]').inner_text()
             .splitlines()[0].strip() == deadline]
    assert len(found) == 1, f"{len(found)} rows of {ref} for {deadline!r} on Today"
    return found[0]


def playwright_or_skip() -> Any:
    """``playwright.sync_api``, or the calling test module skipped with the reason: no
    Chromium at ``CHROMIUM`` or no Playwright package. Called at a module's top."""
    import os

    import pytest

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (Debian package 'chromium'; "
                    ".ci/run installs it)", allow_module_level=True)
    return pytest.importorskip("playwright.sync_api",
                               reason="browser tests need the 'playwright' package")
