"""Sign-in through the council's identity provider in a real browser: Debian's Chromium driven
by Playwright, icsflow served by uvicorn on loopback, a real OpenID provider (panva's
oidc-provider, ``oidc_support``) beside it. From icsflow's sign-in page through the provider's
login form and back, signed in on Today; then signing out through the provider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from oidc_support import CLIENT, PASSWORD, ROLE_MAP, SECRET, Provider
from web_support import (
    WebWorld,
    build,
    chromium,
    playwright_or_skip,
    served_app,
    today_row,
)

from icsflow.workflow.identity import OidcConfig
from icsflow.workflow.web import WebSettings

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]

pytestmark = pytest.mark.slow

sync_api = playwright_or_skip()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory,
           oidc_provider: Provider) -> Iterator[tuple[str, WebWorld]]:
    """icsflow at the address the provider's client sends browsers back to."""
    config = OidcConfig(issuer=oidc_provider.issuer, client_id=CLIENT, role_map=ROLE_MAP,
                        team_claim="team")
    settings = WebSettings(secret=b"s" * 32, base_url=oidc_provider.base, oidc=config,
                           oidc_client_secret=SECRET)
    world = build(Path(tmp_path_factory.mktemp("web-oidc")), settings)
    port = urlsplit(oidc_provider.base).port
    assert port is not None
    with served_app(world.app, port):
        yield oidc_provider.base, world
    world.engine.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(sync_api, FLAGS) as b:
        yield b


def test_a_team_manager_signs_in_at_the_provider_and_lands_on_today(
        served: tuple[str, WebWorld], oidc_provider: Provider, browser: Any) -> None:
    base, world = served
    page = browser.new_page()
    errors: list[str] = []
    # icsflow's pages load nothing missing and break no CSP rule (the provider's are its own)
    page.on("console", lambda m: errors.append(f"{page.url}: {m.text}")
            if m.type == "error" and page.url.startswith(base) else None)

    page.goto(base + "/")
    assert page.url.startswith(base + "/login")  # no session: icsflow's sign-in page
    assert page.locator("#password").count() == 0  # local passwords are off
    page.get_by_role("link", name="Sign in with your council account").click()

    page.wait_for_url(oidc_provider.issuer + "/interaction/**")  # the provider's login form
    assert page.locator("h1").inner_text() == "Council sign-in"
    page.fill("#login", "tm-sub")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Continue").click()

    page.wait_for_url(base + "/")  # back on icsflow, signed in, on Today
    labels = world.app.state.web.labels  # what a person reads for the ids
    assert "tm" in page.locator("#signed-in-as").inner_text()
    assert labels.role("team_manager") in page.locator("#signed-in-as").inner_text()
    row = today_row(page, "ALERT-1", labels.deadline("alert_dispute", "response_due"))
    assert "3 working days overdue" in row.inner_text()
    assert page.locator("table.govuk-table tbody tr", has_text="ALERT-2").count() == 0

    # sign out: icsflow's session ends, the provider asks to sign out of it too, then back
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(oidc_provider.issuer + "/session/end**")
    page.locator("button[autofocus], button[type=submit]").first.click()
    page.wait_for_url(base + "/login**")
    page.goto(base + "/")
    assert "/login" in page.url
    assert errors == []
    page.close()
