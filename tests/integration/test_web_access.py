"""Access by relationship through the pages and the API, break-glass, and the audit of every
read (the attacks of issue 23 kept as tests)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from web_support import PASSWORD, WebWorld, build

from icsflow.storage.audit import AuditStore

REASON = "Covering for the team manager of CH-2 while they are on leave"


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[WebWorld]:
    w = build(tmp_path)
    yield w
    w.engine.close()


def client(world: WebWorld) -> TestClient:
    return TestClient(world.app, follow_redirects=False)


def bearer(world: WebWorld, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[name]}"}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field in the form"
    return found.group(1)


def sign_in(c: TestClient, name: str) -> None:
    form = c.get("/login")
    r = c.post("/login", data={"username": name, "password": PASSWORD, "next": "/",
                               "csrf_token": csrf_of(form.text)})
    assert r.status_code == 303, r.text


def audit(world: WebWorld) -> AuditStore:
    return AuditStore(world.users.sql)


def test_an_iro_cannot_read_a_child_not_allocated_to_them_and_is_told_why(
        world: WebWorld) -> None:
    c = client(world)
    sign_in(c, "iro")  # CH-1's IRO, not CH-2's
    assert c.get("/children/CH-1").status_code == 200
    for path in ("/children/CH-2", f"/cases/{world.stage3_id}",
                 f"/cases/{world.stage3_id}/events/respond"):
        page = c.get(path)
        assert page.status_code == 403, path
        fields = world.app.state.web.labels.plain("iro_email or cpc_email")  # in words
        assert "may not read child CH-2" in page.text and fields in html.unescape(page.text)
        assert "Open with this reason" not in page.text  # an IRO may not break glass
    api = c.get("/api/children/CH-2", headers=bearer(world, "iro"))
    assert api.status_code == 403 and api.json()["kind"] == "AccessDenied"
    assert "break_glass" not in api.json()
    assert c.get(f"/api/cases/{world.stage3_id}", headers=bearer(world, "iro")).status_code == 403
    refused = audit(world).rows(user="iro", kinds=("refused",))
    assert len(refused) == 5 and all(r.entry.children == ("CH-2",) for r in refused)


def test_an_iro_cannot_act_on_a_child_not_allocated_to_them(world: WebWorld) -> None:
    c = client(world)
    r = c.post(f"/api/cases/{world.stage3_id}/events/withdraw", json={"data": {}},
               headers=bearer(world, "iro"))
    assert r.status_code == 403 and "may not act on child CH-2" in r.json()["error"]
    assert world.engine.get(world.stage3_id).state == "stage3"
    sign_in(c, "iro")
    token = csrf_of(c.get("/").text)
    page = c.post(f"/cases/{world.stage3_id}/events/withdraw", data={"csrf_token": token})
    assert page.status_code == 403
    assert world.engine.get(world.stage3_id).state == "stage3"
    # the IRO of CH-2 may
    r = c.post(f"/api/cases/{world.stage3_id}/events/withdraw", json={"data": {}},
               headers=bearer(world, "iro2"))
    assert r.status_code == 200 and r.json()["state"] == "withdrawn"
    acts = audit(world).rows(kinds=("act",))
    assert [(a.entry.user, a.entry.children) for a in acts] == [("iro2", ("CH-2",))]


def test_lists_hold_only_the_children_the_user_may_read(world: WebWorld) -> None:
    c = client(world)
    h = bearer(world, "iro")
    assert {i["child"] for i in c.get("/api/cases", headers=h).json()} == {"CH-1"}
    assert c.get("/api/cases?child=CH-2", headers=h).json() == []
    assert {d["child"] for d in c.get("/api/deadlines", headers=h).json()["deadlines"]} == {
        "CH-1"}
    admin = bearer(world, "admin")
    assert {i["child"] for i in c.get("/api/cases", headers=admin).json()} == {"CH-1", "CH-2"}
    sign_in(c, "iro")
    assert "ALERT-1" in c.get("/").text and "ALERT-2" not in c.get("/").text
    csv_text = c.get("/today.csv").text
    assert "ALERT-1" in csv_text and "ALERT-2" not in csv_text
    figure = c.get("/reports/figure?path=alerts.raised&as_at=2011-12-20").text
    assert "ALERT-1" in figure and "ALERT-2" not in figure and "1 more of children" in figure


def test_every_bulk_read_is_audited_naming_every_child_shown(world: WebWorld) -> None:
    c = client(world)
    h = bearer(world, "admin")
    c.get("/api/cases?limit=5000", headers=h)
    c.get("/api/deadlines", headers=h)
    sign_in(c, "admin")
    c.get("/today.csv")
    c.get("/")
    c.get("/reports/figure?path=alerts.raised&as_at=2011-12-20")
    c.get("/allocation")
    reads = {r.entry.purpose.split(" [")[0]: r.entry for r in audit(world).rows(kinds=("read",))}
    for purpose in ("api cases", "api deadlines", "today.csv", "today page",
                    "report figure alerts.raised"):
        assert set(reads[purpose].children) == {"CH-1", "CH-2"}, purpose
        assert reads[purpose].user == "admin" and reads[purpose].role == "admin"
    assert "allocation list" in reads
    assert re.search(r"^api cases \[token [0-9a-f]{12}\]$", reads["api cases"].purpose)
    assert re.search(r"^today.csv \[session [0-9a-f]{12}\]$", reads["today.csv"].purpose)


def test_a_manager_opens_a_child_with_break_glass_and_the_reason_is_recorded(
        world: WebWorld) -> None:
    c = client(world)
    sign_in(c, "tm")  # CH-1's team manager
    denied = c.get("/children/CH-2")
    assert denied.status_code == 403 and "Open with this reason" in denied.text
    said = re.sub(r"<[^>]+>", " ", denied.text.split('id="main-content"')[1])
    ids = re.findall(r"(?<![\w.@-])[a-z]+(?:_[a-z0-9]+)+(?![\w@.-])", said)
    assert ids == [], ids  # the refusal in words: roles and fields by their labels
    short = c.post("/children/CH-2/break-glass", data={
        "csrf_token": csrf_of(denied.text), "reason": "because", "next": "/children/CH-2"})
    assert short.status_code == 403 and "10-500 characters" in short.text
    opened = c.post("/children/CH-2/break-glass", data={
        "csrf_token": csrf_of(denied.text), "reason": REASON, "next": "/children/CH-2"})
    assert opened.status_code == 303 and opened.headers["location"] == "/children/CH-2"
    assert c.get("/children/CH-2").status_code == 200
    assert c.get(f"/cases/{world.stage3_id}").status_code == 200
    glass = audit(world).rows(kinds=("break_glass",))
    assert len(glass) == 3 and {g.entry.detail for g in glass} == {REASON}
    assert all(g.entry.user == "tm" and g.entry.children == ("CH-2",) for g in glass)
    # another user's session has no grant
    other = client(world)
    sign_in(other, "tm2")
    assert other.get("/children/CH-1").status_code == 403


def test_the_api_takes_break_glass_in_a_header_for_managers_only(world: WebWorld) -> None:
    c = client(world)
    tm = {**bearer(world, "tm"), "X-Break-Glass-Reason": REASON}
    assert c.get("/api/children/CH-2", headers=bearer(world, "tm")).json()["break_glass"]
    assert c.get("/api/children/CH-2", headers=tm).status_code == 200
    iro = {**bearer(world, "iro"), "X-Break-Glass-Reason": REASON}
    assert c.get("/api/children/CH-2", headers=iro).status_code == 403
    [row] = audit(world).rows(kinds=("break_glass",))
    assert row.entry.user == "tm" and row.entry.detail == REASON


def test_the_demo_user_sees_every_demo_child(tmp_path: Path) -> None:
    from icsflow.workflow.access import AccessPolicy
    from icsflow.workflow.web.demo_user import DEMO_ROLE, DEMO_USER

    w = build(tmp_path)
    try:
        from icsflow.workflow.access import Principal

        principal = Principal(DEMO_USER, DEMO_ROLE)
        cases = w.engine.list()
        assert AccessPolicy().filter_readable(principal, cases, {}) == cases
    finally:
        w.engine.close()
