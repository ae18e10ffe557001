"""Each channel's rows are retried on their own, and a dead endpoint costs one timeout.

A real outbox (SQLite, and PostgreSQL with ICSFLOW_TEST_PG), a real WebhookNotifier against a
loopback HTTP server that answers 500 or hangs, and a raw-socket SMTP tarpit that accepts
connections and never greets. Short timeouts, a fake clock for backoffs; the email channel
is a RecordingNotifier, so every resend of an email would show."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import Engine

from icsflow.notifiers import RecordingNotifier, SmtpNotifier, WebhookNotifier
from icsflow.storage.outbox import SqlOutbox
from icsflow.workflow.clock import FakeClock
from icsflow.workflow.daemon.dispatch import Dispatcher

NOW = datetime(2012, 1, 6, 10, 0, tzinfo=UTC)
TIMEOUT = 0.5


class Receiver(ThreadingHTTPServer):
    daemon_threads = True
    status = 500
    hang = False
    message_ids: list[str]
    release: threading.Event


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.message_ids.append(self.headers["X-Icsflow-Message-Id"])
        if self.server.hang:
            self.server.release.wait(10)
            return
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(("127.0.0.1", 0), Handler)
    server.message_ids = []
    server.release = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def _queue(outbox: SqlOutbox, count: int) -> None:
    for n in range(count):
        outbox.enqueue(idempotency_key=f"k{n}", recipients=[f"tm-{n}@example.org"],
                       subject=f"Alert {n}", body="Respond.", template="reminder",
                       urgent=False, now=NOW)


def _dispatcher(sql: Engine, email: object, clock: FakeClock, copies: dict[str, object],
                **options: object) -> Dispatcher:
    return Dispatcher(SqlOutbox(sql), email, office_hours=None,  # type: ignore[arg-type]
                      sender="icsflow@example.org", clock=clock, rng=lambda: 0.5,
                      backoff_base=60.0, owner="test", copies=copies,  # type: ignore[arg-type]
                      **options)  # type: ignore[arg-type]


def _rows(sql: Engine, channel: str) -> list:
    return [m for m in SqlOutbox(sql).list() if m.channel == channel]


def test_a_webhook_500_is_retried_and_never_resends_the_email(sql, receiver):
    outbox, email, clock = SqlOutbox(sql), RecordingNotifier(), FakeClock(NOW)
    _queue(outbox, 3)
    hook = WebhookNotifier(f"http://127.0.0.1:{receiver.server_port}/hook", "s3cret",
                           timeout=TIMEOUT)
    dispatcher = _dispatcher(sql, email, clock, {"webhook": hook})

    first = dispatcher.dispatch_once(NOW)
    assert (first.sent, first.copies, first.retried, first.deferred) == (3, 0, 1, 2)
    assert len(email.messages) == 3 and len(receiver.message_ids) == 1  # breaker: one try
    copies = _rows(sql, "webhook")
    assert [c.status for c in copies] == ["pending"] * 3
    assert "HTTP 500" in (copies[0].last_error or "")
    assert [c.attempts for c in copies] == [1, 0, 0]  # deferred copies keep their attempts

    receiver.status = 200
    clock.advance(timedelta(hours=1))
    second = dispatcher.dispatch_once(clock.now())
    assert (second.sent, second.copies) == (0, 3)
    assert len(email.messages) == 3  # the email was never sent again
    # each copy carries its email's Message-ID, so a receiver can tie (and dedupe) them
    assert sorted(set(receiver.message_ids)) == sorted(email.message_ids)
    assert [c.status for c in _rows(sql, "webhook")] == ["sent"] * 3
    assert [c.status for c in _rows(sql, "email")] == ["sent"] * 3


def test_a_webhook_that_always_fails_is_dead_lettered_alone(sql, receiver):
    outbox, email, clock = SqlOutbox(sql), RecordingNotifier(), FakeClock(NOW)
    _queue(outbox, 1)
    hook = WebhookNotifier(f"http://127.0.0.1:{receiver.server_port}/hook", "s3cret",
                           timeout=TIMEOUT)
    dispatcher = _dispatcher(sql, email, clock, {"webhook": hook}, max_attempts=3,
                             admin_address="admin@example.org")
    for _ in range(6):
        dispatcher.dispatch_once(clock.now())
        clock.advance(timedelta(hours=7))
    copy = _rows(sql, "webhook")[0]
    assert copy.status == "failed" and "gave up after 3 attempts" in (copy.last_error or "")
    assert receiver.message_ids.count(email.message_ids[0]) == 3
    notices = [m for m in email.messages if m.recipients == ("admin@example.org",)]
    assert len(notices) == 1 and "webhook copy" in notices[0].subject
    assert len([m for m in email.messages if m.recipients == ("tm-0@example.org",)]) == 1


def test_a_hanging_webhook_costs_one_timeout_per_batch_not_one_per_message(sql, receiver):
    outbox, email, clock = SqlOutbox(sql), RecordingNotifier(), FakeClock(NOW)
    receiver.hang = True
    _queue(outbox, 10)
    hook = WebhookNotifier(f"http://127.0.0.1:{receiver.server_port}/hook", "s3cret",
                           timeout=TIMEOUT)
    result = _dispatcher(sql, email, clock, {"webhook": hook}).dispatch_once(NOW)
    assert (result.sent, result.retried, result.deferred) == (10, 1, 9)
    # one request waited out its timeout; the other nine were not tried (not timed: the
    # count is the proof, and holds on a loaded machine)
    assert len(receiver.message_ids) == 1


@pytest.fixture
def tarpit() -> Iterator[tuple[int, list[socket.socket]]]:
    """An SMTP server that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_a_tarpit_smtp_server_is_given_up_after_its_first_timeout(sql, tarpit):
    port, accepted = tarpit
    outbox, clock = SqlOutbox(sql), FakeClock(NOW)
    _queue(outbox, 5)
    smtp = SmtpNotifier("127.0.0.1", port, timeout=TIMEOUT)
    result = _dispatcher(sql, smtp, clock, {}).dispatch_once(NOW)
    assert (result.sent, result.retried, result.deferred) == (0, 1, 4)
    assert len(accepted) == 1  # one connection waited out its timeout, not five
    rows = _rows(sql, "email")
    assert [r.attempts for r in rows] == [1, 0, 0, 0, 0]
    assert all("smtp" in (r.last_error or "") for r in rows)
    # the breaker reopens after its backoff: the next pass tries the server once more
    clock.advance(timedelta(minutes=5))
    again = _dispatcher(sql, smtp, clock, {}).dispatch_once(clock.now())
    assert again.retried + again.deferred == 5 and len(accepted) == 2


def test_a_down_channel_does_not_hold_back_the_other(sql, receiver, tarpit):
    """Email (the tarpit) is down, the webhook is up: copies of already-sent emails go."""
    port, _ = tarpit
    outbox, clock = SqlOutbox(sql), FakeClock(NOW)
    receiver.status = 200
    _queue(outbox, 2)
    email = RecordingNotifier()
    hook = WebhookNotifier(f"http://127.0.0.1:{receiver.server_port}/hook", "s3cret",
                           timeout=TIMEOUT)
    _dispatcher(sql, email, clock, {"webhook": hook}).dispatch_once(NOW)  # both sent + copied
    _queue_more = [outbox.enqueue(idempotency_key=f"late{n}", recipients=["x@example.org"],
                                  subject="late", body="b", template="reminder", urgent=False,
                                  now=NOW) for n in range(3)]
    assert all(_queue_more)
    smtp = SmtpNotifier("127.0.0.1", port, timeout=TIMEOUT)
    result = _dispatcher(sql, smtp, clock, {"webhook": hook}).dispatch_once(NOW)
    assert (result.sent, result.retried, result.deferred) == (0, 1, 2)
    assert len(receiver.message_ids) == 2
