"""The web page in a real browser (Debian's Chromium driven by Playwright), served by uvicorn
on loopback: sign in, Today, a child, firing an event, a refusal, signing out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from web_support import (
    PASSWORD,
    WebWorld,
    build,
    chromium,
    free_port,
    playwright_or_skip,
    served_app,
    today_row,
)

# One worker runs them all: the served world and the browser are built once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web_browser")]

sync_api = playwright_or_skip()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, WebWorld]]:
    world = build(tmp_path_factory.mktemp("web"))
    with served_app(world.app, free_port()) as base:
        yield base, world
    world.engine.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(sync_api) as b:
        yield b


def sign_in(page: Any, base: str, name: str) -> None:
    page.goto(base + "/")
    assert "/login" in page.url  # a page reached without a session goes to the sign-in
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def test_page_without_session_redirects_to_login(served: tuple[str, WebWorld],
                                                 browser: Any) -> None:
    base, world = served
    page = browser.new_page()
    page.goto(f"{base}/children/CH-1")
    assert page.url.startswith(f"{base}/login?next=")
    assert page.locator("h1").inner_text() == "Sign in"
    page.close()


def test_team_manager_day(served: tuple[str, WebWorld], browser: Any) -> None:
    base, world = served
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, base, "tm")

    # Today: the overdue Alert, with working days overdue, in the service's words
    labels = world.app.state.web.labels
    due = labels.deadline("alert_dispute", "response_due")
    row = today_row(page, "ALERT-1", due)
    assert "3 working days overdue" in row.inner_text()
    assert "response_due" not in row.inner_text()
    assert int(page.locator("#count-overdue").inner_text()) >= 1

    # open the child, then the case
    row.get_by_role("link", name="CH-1").click()
    assert page.locator("h1").inner_text() == "Child CH-1"
    page.get_by_role("link", name="ALERT-1").first.click()
    assert page.locator("#state").inner_text() == labels.state("alert_dispute", "alert")

    # be refused an event the role may not fire (escalate is the IRO's)
    escalate = labels.event("alert_dispute", "escalate")
    page.get_by_role("link", name=escalate, exact=True).click()
    page.get_by_role("button", name=f"Record: {escalate}").click()
    refusal = page.locator("#refusal")
    assert "may not fire" in refusal.inner_text() and "Nothing was changed" in \
        refusal.inner_text()
    assert world.engine.get(world.overdue_id).state == "alert"

    # fire respond as the team manager and see the state change
    respond = labels.event("alert_dispute", "respond")
    page.goto(f"{base}/cases/{world.overdue_id}")
    page.get_by_role("link", name=respond, exact=True).click()
    page.fill("#f-response", "The plan is being reviewed")
    page.get_by_role("button", name=f"Record: {respond}").click()
    page.wait_for_url(f"{base}/cases/{world.overdue_id}?fired=respond")
    assert page.locator("#state").inner_text() == labels.state("alert_dispute",
                                                               "alert_responded")
    assert "The plan is being reviewed" in page.content()

    # sign out: the next page goes back to the sign-in
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/login")
    page.goto(f"{base}/")
    assert "/login" in page.url
    # no Content-Security-Policy violations and no missing assets (the refusal's 403 is ours)
    assert [e for e in errors if "403" not in e] == []
    page.close()
