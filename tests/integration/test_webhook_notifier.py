"""WebhookNotifier against a real ThreadingHTTPServer on loopback that checks signatures."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from icsflow.notifiers import DeliveryError, Message, WebhookNotifier, verify_signature

SECRET = "webhook-s3cret"
MESSAGE = Message(
    message_id="<outbox-9.c0de@icsflow>",
    sender="noreply@example.org",
    recipients=("tm-1@example.org", "sm-1@example.org"),
    subject="Child C-9: review overdue — café",
    body="Escalated.\n",
    urgent=True,
)


class Receiver(ThreadingHTTPServer):
    status = 200
    redirect_to: str | None = None
    received: list[dict[str, Any]]


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if not verify_signature(SECRET, body, self.headers["X-Icsflow-Signature"]):
            self.send_response(401)
            self.end_headers()
            return
        if self.server.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.server.redirect_to)
            self.end_headers()
            return
        self.server.received.append(
            {"headers": dict(self.headers), "json": json.loads(body), "path": self.path}
        )
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(("127.0.0.1", 0), Handler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url(server: Receiver, path: str = "/hooks/icsflow") -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def test_webhook_posts_signed_json_with_the_message_id(receiver: Receiver) -> None:
    WebhookNotifier(url(receiver), SECRET, timeout=5).send(MESSAGE)
    [got] = receiver.received
    assert got["path"] == "/hooks/icsflow"
    assert got["headers"]["X-Icsflow-Message-Id"] == "<outbox-9.c0de@icsflow>"
    assert got["headers"]["Content-Type"] == "application/json"
    assert got["json"] == {
        "message_id": "<outbox-9.c0de@icsflow>",
        "from": "noreply@example.org",
        "to": ["tm-1@example.org", "sm-1@example.org"],
        "subject": "Child C-9: review overdue — café",
        "body": "Escalated.\n",
        "urgent": True,
    }


@pytest.mark.parametrize("status", [200, 202, 204])
def test_webhook_any_2xx_is_delivered(receiver: Receiver, status: int) -> None:
    receiver.status = status
    WebhookNotifier(url(receiver), SECRET, timeout=5).send(MESSAGE)
    assert len(receiver.received) == 1


def test_webhook_signed_with_the_wrong_secret_is_refused_permanently(
    receiver: Receiver,
) -> None:
    with pytest.raises(DeliveryError) as info:
        WebhookNotifier(url(receiver), "wrong", timeout=5).send(MESSAGE)
    assert info.value.permanent is True and "401" in str(info.value)


@pytest.mark.parametrize(("status", "permanent"),
                         [(400, True), (404, True), (408, False), (429, False), (500, False),
                          (503, False)])
def test_webhook_status_decides_whether_a_failure_is_permanent(
    receiver: Receiver, status: int, permanent: bool
) -> None:
    receiver.status = status
    with pytest.raises(DeliveryError) as info:
        WebhookNotifier(url(receiver), SECRET, timeout=5).send(MESSAGE)
    assert info.value.permanent is permanent
    assert str(status) in str(info.value)


def test_webhook_does_not_follow_a_redirect_into_a_get(receiver: Receiver) -> None:
    receiver.redirect_to = url(receiver, "/elsewhere")
    with pytest.raises(DeliveryError):
        WebhookNotifier(url(receiver), SECRET, timeout=5).send(MESSAGE)
    assert receiver.received == []


def test_webhook_receiver_down_is_a_temporary_failure() -> None:
    server = Receiver(("127.0.0.1", 0), Handler)
    dead = url(server)
    server.server_close()
    with pytest.raises(DeliveryError) as info:
        WebhookNotifier(dead, SECRET, timeout=5).send(MESSAGE)
    assert info.value.permanent is False


def test_webhook_refuses_header_injection_in_the_message_id_permanently(
    receiver: Receiver,
) -> None:
    bad = Message("<a@b>\r\nX-Evil: 1", "noreply@example.org", ("x@example.org",), "s", "b")
    with pytest.raises(DeliveryError) as info:
        WebhookNotifier(url(receiver), SECRET, timeout=5).send(bad)
    assert info.value.permanent is True
    assert receiver.received == []
