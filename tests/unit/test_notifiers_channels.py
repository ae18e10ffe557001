"""Maildir, log, recording and webhook-signature behaviour, and SMTP URL parsing (no I/O but
the temporary directory)."""

from __future__ import annotations

import logging
import mailbox
import os
import threading
import time
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from icsflow.notifiers import (
    DeliveryError,
    LogNotifier,
    MaildirNotifier,
    Message,
    Notifier,
    RecordingNotifier,
    SmtpNotifier,
    WebhookNotifier,
    verify_signature,
)
from icsflow.notifiers.webhook import sign


def msg(n: int = 1, **kw: object) -> Message:
    fields: dict[str, object] = {
        "message_id": f"<outbox-{n}.7f3a@icsflow>",
        "sender": "noreply@example.org",
        "recipients": ("tm-1@example.org",),
        "subject": f"Child C-{n}: strategy discussion due",
        "body": "Confidential case detail",
    }
    return Message(**{**fields, **kw})  # type: ignore[arg-type]


def test_the_notifiers_package_imports_nothing_else_of_icsflow() -> None:
    import ast

    import icsflow.notifiers

    for source in Path(icsflow.notifiers.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text("utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.removeprefix("icsflow.").split(".")[0] not in {
                    "workflow", "definitions", "storage"}, source


# --- protocol and error -----------------------------------------------------------------

def test_every_channel_satisfies_the_notifier_protocol(tmp_path: Path) -> None:
    channels = [
        SmtpNotifier("localhost", 25),
        MaildirNotifier(tmp_path / "mail"),
        LogNotifier(),
        WebhookNotifier("https://hooks.example.org/x", "s3cret"),
        RecordingNotifier(),
    ]
    for channel in channels:
        assert isinstance(channel, Notifier)
        assert channel.name


def test_delivery_error_says_whether_it_is_permanent() -> None:
    err = DeliveryError("server replied 550", permanent=True, channel="smtp",
                        message_id="<a@b>")
    assert err.permanent and "550" in str(err) and "permanent" in str(err)
    assert "temporary" in str(DeliveryError("timed out", permanent=False))


# --- maildir ----------------------------------------------------------------------------

def test_maildir_stores_a_message_a_mail_client_can_read(tmp_path: Path) -> None:
    sink = MaildirNotifier(tmp_path / "var" / "mail")
    sink.send(msg())
    box = mailbox.Maildir(tmp_path / "var" / "mail", create=False)
    [stored] = list(box)
    assert stored["Message-ID"] == "<outbox-1.7f3a@icsflow>"
    assert stored["Subject"] == "Child C-1: strategy discussion due"
    payload = stored.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert payload.decode("utf-8").strip() == "Confidential case detail"


def test_maildir_stores_a_repeated_message_id_once(tmp_path: Path) -> None:
    sink = MaildirNotifier(tmp_path / "mail")
    sink.send(msg(1))
    sink.send(msg(1))
    MaildirNotifier(tmp_path / "mail").send(msg(1))  # a restarted process resending
    sink.send(msg(2))
    assert len(list((tmp_path / "mail" / "new").iterdir())) == 2
    assert not list((tmp_path / "mail" / "tmp").iterdir())


def test_a_single_maildir_send_makes_its_link_durable_before_returning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatcher marks the row sent when send returns: new/ must be fsynced by then."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    sink = MaildirNotifier(tmp_path / "mail")
    monkeypatch.setattr(os, "fsync", fsync)
    sink.send(msg(1))
    assert synced[-1] == str(tmp_path / "mail" / "new")
    synced.clear()
    sink.send(msg(1))  # already stored: nothing written
    assert synced == []


def test_maildir_dedupes_a_message_already_read_and_moved_to_cur(tmp_path: Path) -> None:
    sink = MaildirNotifier(tmp_path / "mail")
    sink.send(msg(1))
    key = sink.key_for("<outbox-1.7f3a@icsflow>")
    (tmp_path / "mail" / "new" / key).rename(tmp_path / "mail" / "cur" / f"{key}:2,S")
    sink.send(msg(1))
    assert not list((tmp_path / "mail" / "new").iterdir())


def test_maildir_batches_see_mail_moved_to_cur_after_cur_was_last_listed(
        tmp_path: Path) -> None:
    sink = MaildirNotifier(tmp_path / "mail")
    cur = tmp_path / "mail" / "cur"
    os.utime(cur, (time.time() - 60, time.time() - 60))  # unchanged for a minute: cached
    assert sink.send_many([msg(1), msg(2)]) == [None, None]
    key = sink.key_for("<outbox-1.7f3a@icsflow>")
    (tmp_path / "mail" / "new" / key).rename(cur / f"{key}:2,S")  # read by a mail client
    assert sink.send_many([msg(1), msg(3)]) == [None, None]  # a resent batch
    assert sorted(p.name for p in (tmp_path / "mail" / "new").iterdir()) == sorted(
        sink.key_for(f"<outbox-{n}.7f3a@icsflow>") for n in (2, 3))
    assert not list((tmp_path / "mail" / "tmp").iterdir())


@pytest.mark.parametrize("threads", [1, 4])
def test_a_maildir_batch_file_that_cannot_be_fsynced_is_retried_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads: int) -> None:
    sink = MaildirNotifier(tmp_path / "mail", write_threads=threads)
    bad = sink.key_for("<outbox-2.7f3a@icsflow>")
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").rsplit("/", 1)[-1].startswith(bad):
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    answers = sink.send_many([msg(n) for n in range(1, 6)])
    sink.close()
    assert [a is None for a in answers] == [True, False, True, True, True]
    assert answers[1] is not None and not answers[1].permanent
    assert len(list((tmp_path / "mail" / "new").iterdir())) == 4
    assert not list((tmp_path / "mail" / "tmp").iterdir())


@pytest.mark.parametrize("threads", [1, 4])
def test_a_maildir_batch_racing_another_process_stores_each_message_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        threads: int) -> None:
    """Another process stores the message between our check and our link: os.link refuses
    the name, and the answer is 'already stored', not an error."""
    sink = MaildirNotifier(tmp_path / "mail", write_threads=threads)
    MaildirNotifier(tmp_path / "mail").send(msg(2))
    monkeypatch.setattr(os.path, "lexists", lambda path: False)  # the check misses it
    caplog.set_level(logging.INFO, logger="icsflow.notifiers.maildir")
    assert sink.send_many([msg(1), msg(2), msg(3)]) == [None, None, None]
    sink.close()
    assert len(list((tmp_path / "mail" / "new").iterdir())) == 3
    assert not list((tmp_path / "mail" / "tmp").iterdir())
    events = [r.getMessage().split(" ", 1)[0] for r in caplog.records]
    assert events.count("email_already_stored") == 1 and events.count("email_stored") == 2


def test_maildir_concurrent_sends_of_one_message_store_it_once(tmp_path: Path) -> None:
    sink = MaildirNotifier(tmp_path / "mail")
    threads = [threading.Thread(target=sink.send, args=(msg(7),)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(list((tmp_path / "mail" / "new").iterdir())) == 1


def test_maildir_refuses_an_unsafe_message_permanently(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError) as info:
        MaildirNotifier(tmp_path / "mail").send(msg(subject="x\r\nBcc: e@example.com"))
    assert info.value.permanent


# --- log --------------------------------------------------------------------------------

def test_log_notifier_logs_the_id_and_recipient_count_but_no_personal_data() -> None:
    with capture_logs() as logs:
        LogNotifier(structlog.get_logger()).send(msg())
    [line] = logs
    assert line["event"] == "email_logged"
    assert line["message_id"] == "<outbox-1.7f3a@icsflow>"
    assert line["recipients"] == 1
    flat = repr(line)
    assert "Confidential" not in flat and "C-1" not in flat and "tm-1@" not in flat


def test_log_notifier_refuses_an_unsafe_message() -> None:
    with pytest.raises(DeliveryError) as info:
        LogNotifier().send(msg(recipients=("not-an-address",)))
    assert info.value.permanent


# --- recording --------------------------------------------------------------------------

def test_recording_notifier_records_every_send_including_duplicates() -> None:
    rec = RecordingNotifier()
    rec.send(msg(1))
    rec.send(msg(1))
    assert rec.message_ids == ["<outbox-1.7f3a@icsflow>"] * 2


def test_recording_notifier_fails_the_next_n_sends_then_recovers() -> None:
    rec = RecordingNotifier()
    rec.fail_next(2)
    rec.fail_next(1, permanent=True)
    outcomes = []
    for _ in range(3):
        with pytest.raises(DeliveryError) as info:
            rec.send(msg())
        outcomes.append(info.value.permanent)
    assert outcomes == [False, False, True]
    rec.send(msg())
    assert len(rec.messages) == 1 and rec.attempts == 4


def test_recording_notifier_is_thread_safe() -> None:
    rec = RecordingNotifier()
    rec.fail_next(50)
    errors: list[DeliveryError] = []

    def worker() -> None:
        for i in range(25):
            try:
                rec.send(msg(i))
            except DeliveryError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 50 and len(rec.messages) == 150 and rec.attempts == 200


# --- smtp URL ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("url", "host", "port", "security", "user"),
    [
        ("smtp://mail.example.org", "mail.example.org", 25, "plain", None),
        ("smtp://localhost:2525", "localhost", 2525, "plain", None),
        ("smtp+starttls://relay%40council@smtp.example.org", "smtp.example.org", 587,
         "starttls", "relay@council"),
        ("smtp+starttls://user@smtp.example.org:2587", "smtp.example.org", 2587, "starttls",
         "user"),
        ("smtps://user@smtp.example.org", "smtp.example.org", 465, "ssl", "user"),
        ("SMTPS://user@[::1]:4650", "::1", 4650, "ssl", "user"),
    ],
)
def test_from_url_parses_the_accepted_forms(
    url: str, host: str, port: int, security: str, user: str | None
) -> None:
    n = SmtpNotifier.from_url(url, password="pw" if user else None)
    assert (n.host, n.port, n.security, n.username) == (host, port, security, user)


@pytest.mark.parametrize(
    "url",
    ["http://mail.example.org", "smtp+ssl://h", "mail.example.org:25", "smtp://h:notaport",
     "smtp://h:99999", "smtp://", "smtp://h:25/path"],
)
def test_from_url_rejects_other_forms_listing_the_accepted_ones(url: str) -> None:
    with pytest.raises(ValueError, match=r"smtp\+starttls://"):
        SmtpNotifier.from_url(url)


def test_from_url_never_shows_a_password() -> None:
    n = SmtpNotifier.from_url("smtps://user@smtp.example.org", password="hunter2")
    assert "hunter2" not in repr(n)
    with pytest.raises(ValueError) as info:
        SmtpNotifier.from_url("ftp://user:hunter2@smtp.example.org")
    assert "hunter2" not in str(info.value)


def test_smtp_refuses_an_unknown_security_mode() -> None:
    with pytest.raises(ValueError, match="starttls"):
        SmtpNotifier("h", 25, security="tls")  # type: ignore[arg-type]


# --- webhook signature ------------------------------------------------------------------

def test_verify_signature_accepts_the_signature_of_the_exact_body() -> None:
    body = WebhookNotifier.payload(msg())
    header = sign("s3cret", body)
    assert header.startswith("sha256=")
    assert verify_signature("s3cret", body, header)
    assert verify_signature(b"s3cret", body, header)


@pytest.mark.parametrize("header", [None, "", "sha256=00", "sha1=abc", "garbage"])
def test_verify_signature_rejects_missing_or_wrong_headers(header: str | None) -> None:
    assert not verify_signature("s3cret", b"{}", header)


def test_verify_signature_rejects_a_changed_body_or_another_secret() -> None:
    body = WebhookNotifier.payload(msg())
    header = sign("s3cret", body)
    assert not verify_signature("s3cret", body + b" ", header)
    assert not verify_signature("other", body, header)


def test_webhook_refuses_non_http_urls_and_empty_secrets() -> None:
    with pytest.raises(ValueError, match="http"):
        WebhookNotifier("file:///etc/passwd", "s")
    with pytest.raises(ValueError, match="secret"):
        WebhookNotifier("https://h/x", "")
