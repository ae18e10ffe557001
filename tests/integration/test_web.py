"""The web application through its HTTP interface (no browser): pages, API, security."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from web_support import PASSWORD, WebWorld, build

from icsflow.workflow.web.app import SECURITY_HEADERS


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[WebWorld]:
    w = build(tmp_path)
    yield w
    w.engine.close()


def client(world: WebWorld) -> TestClient:
    return TestClient(world.app, follow_redirects=False)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field in the form"
    return found.group(1)


def sign_in(c: TestClient, name: str, password: str = PASSWORD) -> object:
    form = c.get("/login")
    return c.post("/login", data={"username": name, "password": password, "next": "/",
                                  "csrf_token": csrf_of(form.text)})


def test_anonymous_page_redirects_to_login_and_api_answers_401(world: WebWorld) -> None:
    c = client(world)
    for path in ("/", "/children/CH-1", f"/cases/{world.overdue_id}", "/reports", "/nowhere"):
        r = c.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login?next=")
    assert c.get("/api/cases").status_code == 401
    assert c.get("/healthz").json() == {"status": "ok"}
    assert c.get("/login").status_code == 200


def test_security_headers_on_every_response(world: WebWorld) -> None:
    c = client(world)
    for r in (c.get("/login"), c.get("/healthz"), c.get("/")):
        for key in SECURITY_HEADERS:
            assert r.headers.get(key) == SECURITY_HEADERS[key], (r.url, key)
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "default-src 'none'" in csp


def test_session_cookie_is_httponly_and_samesite_lax(world: WebWorld) -> None:
    r = sign_in(client(world), "tm")
    assert r.status_code == 303  # type: ignore[attr-defined]
    cookie = r.headers["set-cookie"]  # type: ignore[attr-defined]
    assert "icsflow_session=" in cookie and "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    assert "Secure" not in cookie  # plain http in the test; https makes it Secure


def test_secure_cookie_over_https(world: WebWorld) -> None:
    c = TestClient(world.app, base_url="https://testserver", follow_redirects=False)
    r = sign_in(c, "tm")
    assert "Secure" in r.headers["set-cookie"]  # type: ignore[attr-defined]
    assert "Strict-Transport-Security" in c.get("/").headers


def test_passwords_are_stored_hashed(world: WebWorld) -> None:
    record = world.users.get("tm")
    assert record is not None and PASSWORD not in record.password_hash
    assert record.password_hash.startswith("$argon2")


def test_post_without_csrf_token_is_refused_and_changes_nothing(world: WebWorld) -> None:
    c = client(world)
    sign_in(c, "tm")
    r = c.post(f"/cases/{world.overdue_id}/events/respond", data={"response": "Done"})
    assert r.status_code == 403
    assert "CSRF" in r.text
    assert world.engine.get(world.overdue_id).state == "alert"
    r = c.post("/logout", data={})
    assert r.status_code == 403


def test_login_without_form_token_is_refused(world: WebWorld) -> None:
    r = client(world).post("/login", data={"username": "tm", "password": PASSWORD})
    assert r.status_code == 403
    assert "icsflow_session" not in r.headers.get("set-cookie", "")


def test_sign_in_then_today_shows_the_overdue_alert(world: WebWorld) -> None:
    c = client(world)
    assert sign_in(c, "tm").headers["location"] == "/"  # type: ignore[attr-defined]
    page = c.get("/")
    assert page.status_code == 200
    due = world.engine.definition("alert_dispute").label_for("deadline", "response_due")
    assert "ALERT-1" in page.text and due in page.text and "response_due" not in page.text
    assert "3 working days overdue" in page.text  # 15 Dec due; 16, 19, 20 Dec are past it
    csv_text = c.get("/today.csv?process=alert_dispute").text
    assert csv_text.splitlines()[0].startswith("case,ref,child,process")
    assert "ALERT-1" in csv_text
    assert "ALERT-1" not in c.get("/?process=initial_review").text


def test_fire_respond_as_team_manager_changes_state(world: WebWorld) -> None:
    c = client(world)
    sign_in(c, "tm")
    form = c.get(f"/cases/{world.overdue_id}/events/respond")
    assert 'name="response"' in form.text  # exactly the definition's field for respond
    r = c.post(f"/cases/{world.overdue_id}/events/respond",
               data={"csrf_token": csrf_of(form.text), "response": "Plan reviewed"})
    assert r.status_code == 303
    inst = world.engine.get(world.overdue_id)
    assert inst.state == "alert_responded"
    assert inst.history[-1].actor == "tm" and inst.history[-1].role == "team_manager"


def test_role_refusal_shown_in_words_and_nothing_changes(world: WebWorld) -> None:
    c = client(world)
    sign_in(c, "tm")
    form = c.get(f"/cases/{world.overdue_id}/events/escalate")
    r = c.post(f"/cases/{world.overdue_id}/events/escalate",
               data={"csrf_token": csrf_of(form.text)})
    assert r.status_code == 403
    assert "Refused" in r.text and "may not fire" in r.text
    assert world.engine.get(world.overdue_id).state == "alert"


def test_child_page_views_are_recorded_in_the_audit(world: WebWorld) -> None:
    from icsflow.storage.audit import AuditStore

    c = client(world)
    sign_in(c, "admin")
    assert c.get("/children/CH-1").status_code == 200
    assert c.get(f"/cases/{world.overdue_id}").status_code == 200
    seen = AuditStore(world.users.sql).rows(child="CH-1", kinds=("read",))
    assert [(r.entry.user, r.entry.purpose.split(" [")[0]) for r in seen][-2:] == [
        ("admin", "child page"), ("admin", "case page")]


def test_api_token_iro_cannot_fire_a_directors_event(world: WebWorld) -> None:
    c = client(world)
    headers = {"Authorization": f"Bearer {world.tokens['iro2']}"}  # CH-2's IRO
    r = c.post(f"/api/cases/{world.stage3_id}/events/respond", json={"data": {}},
               headers=headers)
    assert r.status_code == 403
    assert "may not fire" in r.json()["error"]
    assert world.engine.get(world.stage3_id).state == "stage3"
    director = {"Authorization": f"Bearer {world.tokens['director']}"}
    r = c.post(f"/api/cases/{world.stage3_id}/events/respond",
               json={"data": {"response": "Agreed"}}, headers=director)
    assert r.status_code == 200 and r.json()["state"] == "stage3_responded"


def test_api_errors_map_to_http(world: WebWorld) -> None:
    c = client(world)
    h = {"Authorization": f"Bearer {world.tokens['tm']}"}
    assert c.get("/api/cases/no-such-case", headers=h).status_code == 404
    h2 = {"Authorization": f"Bearer {world.tokens['tm2']}"}  # CH-2's team
    r = c.post(f"/api/cases/{world.stage3_id}/events/no_such_event", json={}, headers=h2)
    assert r.status_code == 409
    r = c.post(f"/api/cases/{world.overdue_id}/events/respond",
               json={"data": {"not_a_field": "x"}}, headers=h)
    assert r.status_code == 422
    r = c.post(f"/api/cases/{world.overdue_id}/events/respond",
               json={"data": {}, "row_version": 99}, headers=h)
    assert r.status_code == 409
    assert c.get("/api/cases", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_api_with_session_cookie_needs_the_csrf_header(world: WebWorld) -> None:
    c = client(world)
    sign_in(c, "tm")
    r = c.post(f"/api/cases/{world.overdue_id}/events/respond", json={"data": {}})
    assert r.status_code == 403
    token = csrf_of(c.get(f"/cases/{world.overdue_id}/events/respond").text)
    r = c.post(f"/api/cases/{world.overdue_id}/events/respond", json={"data": {}},
               headers={"X-CSRF-Token": token})
    assert r.status_code == 200


def test_api_reads(world: WebWorld) -> None:
    c = client(world)
    h = {"Authorization": f"Bearer {world.tokens['admin']}"}
    assert c.get("/api/me", headers=h).json() == {"name": "admin", "role": "admin",
                                                  "via": "token"}
    deadlines = c.get("/api/deadlines", headers=h).json()
    assert deadlines["overdue"] >= 1
    assert "ALERT-1" in {d["ref"] for d in deadlines["deadlines"] if d["overdue"]}
    days = [d["working_days"] for d in deadlines["deadlines"]]
    assert days == sorted(days)  # worst first
    child = c.get("/api/children/CH-1", headers=h).json()
    assert child["child"] == "CH-1" and child["cases"][0]["ref"] == "ALERT-1"
    assert c.get("/api/children/CH-404", headers=h).status_code == 404
    report = c.get("/api/reports?as_at=2011-12-20", headers=h).json()
    assert report["alerts"]["raised"] == 2
    assert len(c.get("/api/cases?definition=alert_dispute", headers=h).json()) == 2
    doc = c.get("/api/openapi.json", headers=h).json()
    assert "/api/cases/{case_id}/events/{event}" in doc["paths"]
    assert c.get("/api/openapi.json").status_code == 401


def test_disabled_user_is_signed_out_at_once(world: WebWorld) -> None:
    from datetime import UTC, datetime

    c = client(world)
    sign_in(c, "tm")
    assert c.get("/").status_code == 200
    world.users.set_disabled("tm", True, datetime.now(UTC))
    assert c.get("/").status_code == 303
    h = {"Authorization": f"Bearer {world.tokens['tm']}"}
    assert c.get("/api/cases", headers=h).status_code == 401


def test_pages_render(world: WebWorld) -> None:
    c = client(world)
    sign_in(c, "admin")
    defn = world.engine.definition("alert_dispute")
    for path, text in (("/processes", defn.label),
                       ("/processes/alert_dispute", "<svg"),
                       ("/processes/alert_dispute?start=2011-12-19", "Response reminder"),
                       ("/reports?as_at=2011-12-20", "Drill down"),
                       ("/reports/figure?path=alerts.raised&as_at=2011-12-20", "ALERT-1"),
                       ("/allocation", "Caseloads"),
                       (f"/cases/{world.overdue_id}",
                        defn.label_for("deadline", "response_due"))):
        r = c.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert text in r.text, path
    assert "from any open state" in c.get("/processes/alert_dispute").text
    case = c.get(f"/cases/{world.overdue_id}").text
    assert "10 working days after" in case and "passed over 4 weekend days" in case
    assert c.get("/processes/alert_dispute?start=not-a-date").status_code == 200


def test_proxy_sign_on_is_off_by_default_and_trusted_when_configured(tmp_path: Path) -> None:
    from icsflow.workflow.web import WebSettings

    w = build(tmp_path)
    try:
        plain = TestClient(w.app, follow_redirects=False)
        assert plain.get("/", headers={"X-Remote-User": "admin"}).status_code == 303
    finally:
        w.engine.close()
    sso = build(tmp_path / "sso" if (tmp_path / "sso").mkdir() is None else tmp_path,
                WebSettings(secret=b"s" * 32, proxy_header="X-Remote-User",
                            trusted_proxies=("10.0.0.0/8",)))
    try:
        c = TestClient(sso.app, follow_redirects=False, client=("10.1.2.3", 40000))
        assert c.get("/", headers={"X-Remote-User": "admin"}).status_code == 200
        assert c.get("/", headers={"X-Remote-User": "nobody"}).status_code == 303
        stranger = TestClient(sso.app, follow_redirects=False, client=("192.0.2.9", 40000))
        assert stranger.get("/", headers={"X-Remote-User": "admin"}).status_code == 303
    finally:
        sso.engine.close()


def test_sign_in_never_redirects_off_site(world: WebWorld) -> None:
    c = client(world)
    form = c.get("/login?next=//evil.example/x")
    assert "//evil.example" not in form.text
    r = c.post("/login", data={"username": "tm", "password": PASSWORD,
                               "next": "https://evil.example/", "csrf_token": csrf_of(form.text)})
    assert r.headers["location"] == "/"


def test_today_cache_is_cleared_by_an_event_fired_here(world: WebWorld) -> None:
    c = client(world)
    sign_in(c, "tm")
    assert "ALERT-1" in c.get("/?process=alert_dispute&state=alert").text
    token = csrf_of(c.get(f"/cases/{world.overdue_id}/events/respond").text)
    c.post(f"/cases/{world.overdue_id}/events/respond", data={"csrf_token": token})
    assert "ALERT-1" not in c.get("/?process=alert_dispute&state=alert").text


def test_a_date_is_asked_as_day_month_and_year_and_recorded_as_a_date(world: WebWorld) -> None:
    """The GOV.UK date input: three boxes, joined into YYYY-MM-DD; a date that is not one is
    refused in words with what was typed kept."""
    from icsflow.workflow.web.actions import joined_dates

    assert joined_dates({"x-day": "5", "x-month": "1", "x-year": "2012", "note": "n"}) == \
        {"x": "2012-01-05", "note": "n"}
    assert joined_dates({"x-day": "", "x-month": "", "x-year": ""}) == {"x": ""}
    c = client(world)
    sign_in(c, "iro")
    form = c.get(f"/cases/{world.overdue_id}/events/extend")
    assert 'name="extended_to-day"' in form.text and 'type="date"' not in form.text
    bad = c.post(f"/cases/{world.overdue_id}/events/extend",
                 data={"csrf_token": csrf_of(form.text), "extended_to-day": "31",
                       "extended_to-month": "2", "extended_to-year": "2012"})
    assert bad.status_code == 422 and 'value="31"' in bad.text
    assert world.engine.get(world.overdue_id).data.get("extended_to") is None
    done = c.post(f"/cases/{world.overdue_id}/events/extend",
                  data={"csrf_token": csrf_of(form.text), "extended_to-day": "6",
                        "extended_to-month": "1", "extended_to-year": "2012"})
    assert done.status_code == 303
    assert world.engine.get(world.overdue_id).data["extended_to"] == "2012-01-06"


def test_a_long_drill_down_is_paged(world: WebWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """GOV.UK pagination under a figure's cases: each page lists its share, every case on
    one page; a page number out of range is the nearest page."""
    from icsflow.workflow.web import pages

    monkeypatch.setattr(pages, "FIGURE_PAGE", 1)
    c = client(world)
    sign_in(c, "admin")
    seen = []
    for n in (1, 2):
        r = c.get(f"/reports/figure?path=alerts.raised&as_at=2011-12-20&page={n}")
        assert r.status_code == 200 and f"page {n} of 2" in r.text
        assert 'class="govuk-pagination"' in r.text
        seen += re.findall(r">(ALERT-\d)</a>", r.text)
    assert sorted(seen) == ["ALERT-1", "ALERT-2"]
    last = c.get("/reports/figure?path=alerts.raised&as_at=2011-12-20&page=9")
    assert "page 2 of 2" in last.text
