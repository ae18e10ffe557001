"""SmtpNotifier against a real aiosmtpd server on loopback."""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from icsflow.notifiers import DeliveryError, Message, SmtpNotifier

MESSAGE = Message(
    message_id="<outbox-42.7f3a@icsflow>",
    sender="Icsflow <noreply@example.org>",
    recipients=("tm-1@example.org", "Reviewing Officer <iro-1@example.org>"),
    subject="Alert dispute C-1: response overdue — escalated",
    body="Escalated to the service manager.\n",
    urgent=True,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Handler:
    """Records envelopes; ``rcpt_reply`` / ``data_reply`` override the server's answers."""

    def __init__(self, rcpt_reply: str | None = None, data_reply: str = "250 OK") -> None:
        self.envelopes: list[Any] = []
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply.startswith("250"):
            self.envelopes.append(envelope)
        return self.data_reply


def serve(handler: Handler, **kwargs: Any) -> Controller:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    return controller


@pytest.fixture
def server() -> Iterator[tuple[Controller, Handler]]:
    handler = Handler()
    controller = serve(handler)
    yield controller, handler
    controller.stop()


def test_smtp_delivers_recipients_subject_and_message_id_as_given(
    server: tuple[Controller, Handler],
) -> None:
    controller, handler = server
    SmtpNotifier("127.0.0.1", controller.port, timeout=5).send(MESSAGE)
    [envelope] = handler.envelopes
    assert envelope.mail_from == "noreply@example.org"
    assert envelope.rcpt_tos == ["tm-1@example.org", "iro-1@example.org"]
    received = email.message_from_bytes(envelope.original_content,
                                        policy=email.policy.default)
    assert received["Message-ID"] == "<outbox-42.7f3a@icsflow>"
    assert received["Subject"] == MESSAGE.subject
    assert received["X-Priority"].startswith("1")
    assert received.get_content().replace("\r\n", "\n") == MESSAGE.body


@pytest.mark.parametrize("message", [
    MESSAGE,  # a non-ASCII subject: RFC 2047, through the stdlib
    Message(message_id="<outbox-43.7f3a@icsflow>", sender="icsflow@example.org",
            recipients=tuple(f"Team Manager <tm-{k}@example.org>" for k in range(12)),
            subject="Alert dispute C-1: response due on 22 January " * 3,
            body=("From the case record: the response is due within ten working days of "
                  "the alert being raised.\n.\n") * 3),  # plain: the fast path
], ids=["non-ascii", "plain-long"])
def test_smtp_sends_the_bytes_smtplib_send_message_sends(
        server: tuple[Controller, Handler], message: Message) -> None:
    """The rendered bytes reach the server exactly as smtplib's send_message of the email
    package's message would (dot-stuffing, folding, CRLF, ">From ")."""
    import smtplib
    from dataclasses import replace
    from datetime import UTC, datetime

    from icsflow.notifiers import build_email

    message = replace(message, date=datetime(2026, 3, 2, 9, 30, tzinfo=UTC))  # one Date
    controller, handler = server
    SmtpNotifier("127.0.0.1", controller.port, timeout=5).send(message)
    with smtplib.SMTP("127.0.0.1", controller.port, timeout=5) as conn:
        conn.send_message(build_email(message), to_addrs=[
            r.split("<")[-1].rstrip(">") for r in message.recipients])
    ours, stdlib = handler.envelopes
    assert ours.original_content == stdlib.original_content
    assert ours.rcpt_tos == stdlib.rcpt_tos and ours.mail_from == stdlib.mail_from


def test_smtp_keeps_working_after_a_failed_send(server: tuple[Controller, Handler]) -> None:
    controller, handler = server
    notifier = SmtpNotifier("127.0.0.1", controller.port, timeout=5)
    handler.data_reply = "451 try later"
    with pytest.raises(DeliveryError):
        notifier.send(MESSAGE)
    handler.data_reply = "250 OK"
    notifier.send(MESSAGE)
    notifier.send(MESSAGE)
    assert len(handler.envelopes) == 2


def test_smtp_server_down_is_a_temporary_failure() -> None:
    with pytest.raises(DeliveryError) as info:
        SmtpNotifier("127.0.0.1", free_port(), timeout=5).send(MESSAGE)
    assert info.value.permanent is False
    assert "cannot connect" in str(info.value)


def test_smtp_server_that_never_greets_times_out_as_a_temporary_failure() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(DeliveryError) as info:
            SmtpNotifier("127.0.0.1", port, timeout=0.2).send(MESSAGE)
    assert info.value.permanent is False


def test_smtp_550_on_every_recipient_is_a_permanent_failure() -> None:
    controller = serve(Handler(rcpt_reply="550 5.1.1 no such user"))
    try:
        with pytest.raises(DeliveryError) as info:
            SmtpNotifier("127.0.0.1", controller.port, timeout=5).send(MESSAGE)
    finally:
        controller.stop()
    assert info.value.permanent is True


def test_smtp_450_on_recipients_is_a_temporary_failure() -> None:
    controller = serve(Handler(rcpt_reply="450 4.2.1 mailbox busy"))
    try:
        with pytest.raises(DeliveryError) as info:
            SmtpNotifier("127.0.0.1", controller.port, timeout=5).send(MESSAGE)
    finally:
        controller.stop()
    assert info.value.permanent is False


class RefuseIro(Handler):
    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.startswith("iro-"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_smtp_some_recipients_refused_counts_as_sent_so_others_get_no_duplicate(
        caplog: pytest.LogCaptureFixture) -> None:
    handler = RefuseIro()
    controller = serve(handler)
    try:
        with caplog.at_level("INFO", logger="icsflow"):
            SmtpNotifier("127.0.0.1", controller.port, timeout=5).send(MESSAGE)
    finally:
        controller.stop()
    logs = [r.icsflow_event for r in caplog.records]
    [envelope] = handler.envelopes
    assert envelope.rcpt_tos == ["tm-1@example.org"]
    assert [e["event"] for e in logs] == ["email_recipients_refused", "email_sent"]
    assert "iro-1@example.org" not in repr(logs)


def test_smtp_550_after_data_is_a_permanent_failure() -> None:
    handler = Handler(data_reply="550 5.7.1 message rejected")
    controller = serve(handler)
    try:
        with pytest.raises(DeliveryError) as info:
            SmtpNotifier("127.0.0.1", controller.port, timeout=5).send(MESSAGE)
    finally:
        controller.stop()
    assert info.value.permanent is True and "550" in str(info.value)


def test_smtp_refuses_header_injection_before_connecting() -> None:
    bad = Message("<a@icsflow>", "noreply@example.org", ("x@example.org\r\nBcc: e@example.com",),
                  "s", "b")
    with pytest.raises(DeliveryError) as info:
        SmtpNotifier("127.0.0.1", free_port(), timeout=5).send(bad)  # nothing listens there
    assert info.value.permanent is True


# --- TLS (needs the openssl command to make a throwaway certificate) ---------------------

@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not available to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def _contexts(tls_cert: tuple[Path, Path]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(*tls_cert)
    client_ctx = ssl.create_default_context(cafile=str(tls_cert[0]))
    client_ctx.check_hostname = False
    return server_ctx, client_ctx


def test_smtp_starttls_with_login_delivers(tls_cert: tuple[Path, Path]) -> None:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    seen: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        seen.append((auth_data.login, auth_data.password))
        ok = auth_data.password == b"pa ss"
        return AuthResult(success=ok, handled=False)

    server_ctx, client_ctx = _contexts(tls_cert)
    handler = Handler()
    controller = serve(handler, tls_context=server_ctx, require_starttls=True,
                       authenticator=authenticator, auth_require_tls=True)
    try:
        url = f"smtp+starttls://relay%40council@127.0.0.1:{controller.port}"
        SmtpNotifier.from_url(url, password="pa ss", timeout=5, ssl_context=client_ctx).send(
            MESSAGE)
        wrong = SmtpNotifier.from_url(url, password="wrong", timeout=5, ssl_context=client_ctx)
        with pytest.raises(DeliveryError) as info:
            wrong.send(MESSAGE)
    finally:
        controller.stop()
    assert len(handler.envelopes) == 1
    assert seen[0] == (b"relay@council", b"pa ss")
    assert info.value.permanent is False and "wrong" not in str(info.value)


def test_smtp_starttls_with_an_untrusted_certificate_is_a_temporary_failure(
    tls_cert: tuple[Path, Path],
) -> None:
    server_ctx, _ = _contexts(tls_cert)
    controller = serve(Handler(), tls_context=server_ctx, require_starttls=True)
    try:
        with pytest.raises(DeliveryError) as info:
            SmtpNotifier("127.0.0.1", controller.port, security="starttls", timeout=5).send(
                MESSAGE)
    finally:
        controller.stop()
    assert info.value.permanent is False


def test_smtps_implicit_tls_delivers(tls_cert: tuple[Path, Path]) -> None:
    server_ctx, client_ctx = _contexts(tls_cert)
    handler = Handler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(),
                            ssl_context=server_ctx, server_hostname="localhost")
    controller.start()
    try:
        SmtpNotifier("127.0.0.1", controller.port, security="ssl", timeout=5,
                     ssl_context=client_ctx).send(MESSAGE)
    finally:
        controller.stop()
    assert len(handler.envelopes) == 1


def test_concurrent_sends_each_use_their_own_connection(
    server: tuple[Controller, Handler],
) -> None:
    controller, handler = server
    notifier = SmtpNotifier("127.0.0.1", controller.port, timeout=5)
    threads = [threading.Thread(target=notifier.send, args=(MESSAGE,)) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(handler.envelopes) == 5
