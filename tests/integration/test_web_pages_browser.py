"""Every page of the demo year in a real browser (Debian's Chromium driven by Playwright), as
``icsflow serve --now 2012-03-30T17:00`` shows it after ``icsflow demo``:

- a person reads labels, never an id: no page's visible text (``document.body.innerText``)
  holds a ``snake_case`` identifier;
- axe-core (vendored in ``data/axe/``) finds no WCAG 2.2 A/AA violation on any page, at
  1,280 and at 375 px wide;
- a keyboard alone goes from the sign-in to recording an event (Tab, typing, Enter).

With ``ICSFLOW_WEB_SCREENSHOTS=DIR`` the page test also saves each page at 1,280 and 375 px
wide into DIR (how ``docs/web/*.png`` are made).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
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
)

AXE = Path(__file__).parent / "data" / "axe" / "axe.min.js"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
NOW = "2012-03-30T17:00"

# One worker runs them all: the demo year and the browser are built once (module fixtures).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web_pages_browser")]

sync_api = playwright_or_skip()

# An identifier as the engine keeps it: lower-case words joined by underscores. Allowed, as a
# person's own identifiers rather than the definition's: email addresses and user names (the
# demo's people are named like ``social_worker-review-02``), so a match touching "@", "." or
# "-" is not counted.
IDENTIFIER = re.compile(r"(?<![\w.@-])[a-z]+(?:_[a-z0-9]+)+(?![\w@.-])")


def identifiers(text: str) -> list[str]:
    """The snake_case identifiers in a page's visible text (an address or user name is not
    one)."""
    return sorted(set(IDENTIFIER.findall(text)))


def test_identifiers_are_found_where_a_person_would_see_them() -> None:
    """The check itself can fail: it finds an id in prose, not in an address."""
    assert identifiers("Review due: response_due, 3 overdue") == ["response_due"]
    assert identifiers("iro_service_manager@council.example, social_worker-review-02") == []


@dataclass(frozen=True)
class Demo:
    base: str
    user: str
    password: str
    db: str


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from icsflow.workflow.cli import main; main()", *args]


@pytest.fixture(scope="module")
def demo(demo_year: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """A copy of the run's ``icsflow demo`` folder, then ``icsflow serve --now`` on its
    database, as the demo's own hint prints it."""
    from icsflow.workflow.web.demo_user import add_demo_user

    run = demo_year.copy_to(tmp_path_factory.mktemp("demo"))  # the run's one demo year
    folder, db = run.folder, run.db
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICSFLOW_")}
    user, password = add_demo_user(db)
    port = free_port()
    server = subprocess.Popen(_cli("--db", db, "serve", "--now", NOW, "--port", str(port)),
                              cwd=folder, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/healthz", timeout=2).close()
            break
        except OSError:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            assert time.monotonic() < deadline, "icsflow serve did not answer"
            time.sleep(0.2)
    yield Demo(base, user, password, db)
    server.terminate()
    server.wait(timeout=20)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(sync_api) as b:
        yield b


def _sign_in(page: Any, demo: Demo) -> None:
    page.goto(demo.base + "/login")
    page.fill("#username", demo.user)
    page.fill("#password", demo.password)
    page.click("button[type=submit]")
    page.wait_for_url(demo.base + "/")


def _href(page: Any, selector: str) -> str:
    href = page.locator(selector).first.get_attribute("href")
    assert href, f"no link {selector} on {page.url}"
    return str(href)


def _pages(page: Any, demo: Demo) -> dict[str, str]:
    """Every kind of page, by name -> path: the links followed from Today and the report,
    so each is a page of real demo data."""
    page.goto(demo.base + "/")
    case = _href(page, "a[href^='/cases/']")
    child = _href(page, "a[href^='/children/']")
    page.goto(demo.base + case)
    action = _href(page, "a[href*='/events/']")
    page.goto(demo.base + "/reports")
    figure = _href(page, "a[href^='/reports/figure']")
    return {"today": "/", "child": child, "case": case, "action": action,
            "reports": "/reports", "figure": figure, "processes": "/processes",
            "process": "/processes/initial_review",
            "what-if": "/processes/alert_dispute?start=2011-12-19#whatif",
            "allocation": "/allocation", "error": "/cases/no-such-case"}


def _axe(page: Any) -> list[str]:
    """axe-core's WCAG 2.2 A/AA violations on the page, one line each."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("async (tags) => (await axe.run(document, {runOnly: tags}))"
                          ".violations.map(v => v.id + ': ' + v.help + ' at ' + "
                          "v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))", WCAG)
    return list(found)


def _shoot(page: Any, name: str) -> None:
    folder = os.environ.get("ICSFLOW_WEB_SCREENSHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    from PIL import Image  # matplotlib's dependency

    for width, height in ((1280, 900), (375, 812)):
        page.set_viewport_size({"width": width, "height": height})
        target = Path(folder) / f"{name}-{width}.png"
        page.screenshot(path=str(target))
        with Image.open(target) as shot:  # 64 colours: a tenth of the size, text still sharp
            shot.convert("RGB").quantize(64).save(target, optimize=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_axe_finds_a_violation_when_there_is_one(browser: Any) -> None:
    """The check itself can fail: a form field without a label is reported."""
    page = browser.new_page()
    page.set_content('<!DOCTYPE html><html lang="en"><head><title>t</title></head><body>'
                     '<main><h1>t</h1><input type="text"></main></body></html>')
    assert any(v.startswith("label:") for v in _axe(page))
    page.close()


def test_every_page_shows_labels_and_passes_axe(demo: Demo, browser: Any) -> None:
    # bypass_csp: axe is injected as a script the page's Content-Security-Policy would
    # refuse; the pages' own scripts are checked under the policy by the test below
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(demo.base + "/login")
    found = {"sign-in": identifiers(page.inner_text("body"))}
    problems = {"sign-in": _axe(page)}
    _shoot(page, "sign-in")
    _sign_in(page, demo)
    for name, path in _pages(page, demo).items():
        page.goto(demo.base + path)
        found[name] = identifiers(page.evaluate("document.body.innerText"))
        problems[name] = _axe(page)
        page.set_viewport_size({"width": 375, "height": 812})  # the phone layout too
        page.reload()
        problems[name] += [f"at 375 px: {p}" for p in _axe(page)]
        page.set_viewport_size({"width": 1280, "height": 900})
        _shoot(page, name)
    context.close()
    leftover = {k: v for k, v in found.items() if v}
    assert {"ids": leftover, "axe": {k: v for k, v in problems.items() if v}} == \
        {"ids": {}, "axe": {}}


def test_pages_load_under_the_csp_without_errors(demo: Demo, browser: Any) -> None:
    """Under the real policy: nothing refused, nothing missing, GOV.UK Frontend started."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"{page.url}: {m.text}")
            if m.type == "error" else None)
    _sign_in(page, demo)
    for name, path in _pages(page, demo).items():
        page.goto(demo.base + path)
        classes = page.evaluate("document.body.className")
        assert "govuk-frontend-supported" in classes, (name, classes)
    page.close()
    assert [e for e in errors if "/cases/no-such-case" not in e] == []


def test_a_marker_is_a_tracked_date_never_overdue(demo: Demo, browser: Any) -> None:
    """A birthday or "eligible from" (a marker) long past is shown as a tracked date on the
    case page: no working days left, never overdue."""
    from icsflow.workflow import Engine

    engine = Engine.open(db=demo.db)
    try:
        case = next(i for i in engine.list() if i.markers
                    and min(i.markers.values()).isoformat() < NOW[:10])
        defn = engine.definition(case.definition, case.version)
        names = [defn.label_for("deadline", n) for n in case.markers]
    finally:
        engine.close()
    page = browser.new_page()
    _sign_in(page, demo)
    page.goto(f"{demo.base}/cases/{case.id}")
    for name in names:
        row = page.locator("table.govuk-table tbody tr").filter(
            has=page.locator("td", has_text=name))
        assert row.count() >= 1, name
        for k in range(row.count()):
            text = row.nth(k).inner_text()
            assert "Tracked date" in text and "overdue" not in text, text
    page.close()


# -- the keyboard alone ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, WebWorld]]:
    world = build(tmp_path_factory.mktemp("web"))
    with served_app(world.app, free_port()) as base:
        yield base, world
    world.engine.close()


def _tab_to(page: Any, check: str, limit: int = 80) -> None:
    """Press Tab until the focused element satisfies the JavaScript predicate ``check``
    (given the element), failing after ``limit`` presses."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(el => {check})(document.activeElement)"):
            return
    raise AssertionError(f"Tab never reached an element where {check} on {page.url}")


def test_keyboard_alone_signs_in_and_records_an_event(served: tuple[str, WebWorld],
                                                     browser: Any) -> None:
    base, world = served
    labels = world.app.state.web.labels
    page = browser.new_page()
    page.goto(base + "/")
    page.wait_for_url(base + "/login**")
    _tab_to(page, "el.id === 'username'")
    page.keyboard.type("tm")
    _tab_to(page, "el.id === 'password'")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/")

    _tab_to(page, "el.tagName === 'A' && el.textContent.trim() === 'ALERT-1'")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/cases/{world.overdue_id}")
    respond = labels.event("alert_dispute", "respond")
    _tab_to(page, f"el.tagName === 'A' && el.textContent.trim() === {respond!r}")
    page.keyboard.press("Enter")
    page.wait_for_url("**/events/respond")
    _tab_to(page, "el.id === 'f-response'")
    page.keyboard.type("Answered by keyboard")
    _tab_to(page, "el.tagName === 'BUTTON' && el.type === 'submit' && "
                  "el.textContent.startsWith('Record')")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/cases/{world.overdue_id}?fired=respond")
    assert world.engine.get(world.overdue_id).state == "alert_responded"
    assert "Answered by keyboard" in page.content()
    page.close()


# -- diagrams that fit -------------------------------------------------------------------------

_INSIDE = """svg => {
  const box = svg.viewBox.baseVal, out = [];
  for (const el of svg.querySelectorAll('rect, text, path:not(.arrowhead)')) {
    const b = el.getBBox();
    if (b.x < -0.5 || b.y < -0.5 || b.x + b.width > box.width + 0.5
        || b.y + b.height > box.height + 0.5)
      out.push(el.tagName + ' ' + (el.textContent || el.getAttribute('d') || '').slice(0, 60));
  }
  return out;
}"""


def test_every_diagram_fits_inside_its_drawing(browser: Any) -> None:
    """Every box, label and edge of every version of every shipped and example definition
    lies inside the SVG's viewBox, measured by the browser with the page's stylesheet."""
    from icsflow.definitions.loader import load_paths
    from icsflow.definitions.registry import builtin_dir, examples_dir
    from icsflow.workflow.web.diagram import diagram_svg

    css = (Path(__file__).parents[2] / "workflow" / "web" / "static" / "style.css").read_text(
        encoding="utf-8")
    page = browser.new_page()
    page.set_content('<svg class="diagram" viewBox="0 0 10 10"><rect x="20" y="0" width="5" '
                     'height="5"/></svg>')
    assert page.locator("svg").evaluate(_INSIDE) == ["rect "]  # the check can fail
    outside: dict[str, list[str]] = {}
    count = 0
    for defn in load_paths([builtin_dir(), examples_dir()]):
        page.set_content(f"<!DOCTYPE html><html><head><style>{css}</style></head><body>"
                         f"{diagram_svg(defn)}</body></html>")
        svg = page.locator("svg.diagram")
        assert svg.count() == 1
        drawn = page.evaluate("() => document.querySelectorAll('svg.diagram g').length")
        assert drawn >= len(defn.states), defn.name
        missed = svg.evaluate(_INSIDE)
        if missed:
            outside[f"{defn.name} v{defn.version}"] = missed
        count += 1
    page.close()
    assert count >= 10 and outside == {}
