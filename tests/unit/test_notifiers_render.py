"""render_email writes the bytes the stdlib would, only faster: compared byte for byte with
``build_email`` flattened by the stdlib, on a generated corpus (non-ASCII subjects and names,
long subjects, many recipients, long and non-ASCII body lines), for both line endings."""

from __future__ import annotations

import email
import random
import string
from datetime import UTC, datetime, timedelta, timezone
from email.generator import BytesGenerator
from io import BytesIO

import pytest

from icsflow.notifiers.message import (
    _PLAIN_ADDRESS,
    InvalidAddress,
    Message,
    _render_plain,
    _strict_envelope_address,
    build_email,
    envelope_address,
    render_email,
)

WHEN = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
PLAIN_WORDS = ["Alert", "dispute", "C-1:", "response", "due", "22", "January", "(urgent)",
               "O'Brien", "x" * 40, "a.b", "[ref]", "review,", "IRO", "100%", "#4",
               "\"quoted\"", "C-123456", "x" * 70]
ODD_WORDS = ["Café", "réponse", "y" * 80, "=?utf-8?q?x?=", "Łódź", "—", "", "a\tb"]
PLAIN_NAMES = ["", "", "Team Manager", "O'Brien", "IRO-2", "Dr Ann Lee"]
ODD_NAMES = ["Zoë Smith", "J. Smith", "\"Smith, John\""]
PLAIN_LOCALS = ["tm", "team.manager", "tm-1", "tm+x", "a_b", "first.last.name"]
ODD_LOCALS = ["o'neil", "\"q\""]
INVALID_LOCALS = ["dot..dot", ".lead", "ü"]
DOMAINS = ["example.org", "council.gov.uk", "x", "a-b.example", "sub.domain.example.org"]
BODIES = ["Please respond.\n", "", "line1\nline2", "Café — réponse\n", "x" * 78 + "\n",
          "x" * 79 + "\n", "é" * 40, "a\r\nb\rc\n", "From here\n.\n..\n", "tab\there\n",
          "trailing space \n"]


def reference(message: Message, smtp: bool) -> bytes:
    """What the stdlib writes: ``as_bytes()`` (Maildir), or what smtplib's send_message
    sends (it flattens a copy with a default BytesGenerator and CRLF)."""
    built = build_email(message, date=WHEN)
    if not smtp:
        return built.as_bytes()
    out = BytesIO()
    BytesGenerator(out).flatten(built, linesep="\r\n")
    return out.getvalue()


def address(rng: random.Random, odd: bool = True) -> str:
    locals_ = PLAIN_LOCALS + (ODD_LOCALS if odd else [])
    local = rng.choice(INVALID_LOCALS if odd and rng.random() < 0.01 else locals_)
    if rng.random() < 0.03:  # a mailbox too long for one line
        local = "x" * rng.randrange(50, 75)
    spec = f"{local}@{rng.choice(DOMAINS)}"
    name = rng.choice(PLAIN_NAMES + (ODD_NAMES if odd else []))
    if rng.random() < 0.03:
        name = "a" * rng.randrange(50, 75)
    return f"{name} <{spec}>" if name else spec


def corpus(n: int, seed: int = 16) -> list[Message]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        # Half the messages are plain (the fast path's), half may hold anything odd.
        odd = bool(k % 2)
        words = PLAIN_WORDS + (ODD_WORDS if odd else [])
        subject = " ".join(rng.choice(words) for _ in range(rng.randrange(1, 25)))
        if rng.random() < 0.1:
            subject = "  " + subject + " "
        recipients = tuple(address(rng, odd) for _ in range(rng.choice([1, 1, 2, 3, 8, 20])))
        headers = [("X-Icsflow-Outbox-Id", str(k))]
        if rng.random() < 0.5:
            headers.append(("X-Icsflow-Ref", " ".join(rng.choice(words) for _ in range(3))))
        out.append(Message(
            message_id=f"<outbox-{k}.{rng.getrandbits(48):012x}@icsflow>",
            sender=rng.choice(["icsflow@council.example", "Icsflow <noreply@example.org>"]
                              + (["Zoë <z@example.org>"] if odd else [])),
            recipients=recipients, subject=subject,
            body=rng.choice(BODIES) * rng.randrange(1, 4) if odd or k % 4 else "Please.\n",
            urgent=rng.random() < 0.3,
            headers=tuple(headers),
            date=WHEN.astimezone(timezone(timedelta(hours=rng.choice([0, 1, -5]))))))
    return out


def reference_if_sendable(message: Message, smtp: bool) -> bytes | None:
    """``reference``, or None for a message ``build_email`` refuses (one build, not two)."""
    try:
        return reference(message, smtp)
    except ValueError:
        return None


@pytest.mark.parametrize("smtp", [False, True])
def test_render_email_writes_exactly_what_the_stdlib_writes(smtp: bool) -> None:
    references = [(m, ref) for m in corpus(1000)
                  if (ref := reference_if_sendable(m, smtp)) is not None]
    messages = [m for m, _ in references]
    fast = 0
    for message, expected in references:
        assert render_email(message, date=WHEN, smtp=smtp) == expected
        fast += _render_plain(message, WHEN, smtp) is not None
    # The corpus exercises both paths, the fast one on a good share of it.
    assert len(messages) > 900 and 0.2 * len(messages) < fast < len(messages)


def test_plain_long_subjects_and_many_recipients_are_folded_on_the_fast_path() -> None:
    message = Message(
        message_id="<outbox-1.abc@icsflow>", sender="icsflow@council.example",
        recipients=tuple(f"Team Manager <team.manager.{k}@council.example>" for k in range(30)),
        subject="Alert dispute review for case C-123456 response due " * 4, body="x\n")
    message = Message(message.message_id, message.sender, message.recipients,
                      message.subject.rstrip(), message.body)
    for smtp in (False, True):
        data = _render_plain(message, WHEN, smtp)
        assert data is not None and data == reference(message, smtp)
        lines = data.split(b"\r\n" if smtp else b"\n")
        assert max(len(line) for line in lines) <= 998  # RFC 5322's limit
        # The subject on the line "Subject:" starts (issue 28), the 30 recipients folded.
        assert f"Subject: {message.subject}".encode() in lines
        assert sum(line.startswith(b" team.manager") or line.startswith(b" Team")
                   for line in lines) >= 1


def test_non_ascii_subjects_and_names_are_rfc2047_encoded_and_read_back() -> None:
    message = Message(message_id="<outbox-2.abc@icsflow>", sender="Zoë <z@example.org>",
                      recipients=("Łukasz Nowak <ln@example.org>",),
                      subject="Réponse attendue — " * 6, body="Café\n")
    data = render_email(message, date=WHEN, smtp=True)
    assert data.isascii() is False  # the 8bit body
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and b"=?utf-8?" in head
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))  # RFC 5322's limit
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["Subject"] == message.subject
    assert parsed["From"].addresses[0].display_name == "Zoë"
    assert parsed["To"].addresses[0].display_name == "Łukasz Nowak"
    assert parsed.get_content() == "Café\r\n"  # as a Maildir reader sees the SMTP bytes


def test_the_plain_address_shortcut_agrees_with_the_strict_check() -> None:
    rng = random.Random(5)
    seen = 0
    for _ in range(3000):
        candidate = address(rng)
        if _PLAIN_ADDRESS.match(candidate) is None:
            continue
        seen += 1
        assert envelope_address(candidate) == _strict_envelope_address(candidate, "To")
    assert seen > 500


@pytest.mark.parametrize("bad", ["dot..dot@example.org", ".lead@example.org", "a@.x", "a@b@c",
                                 "Name <a@x> trailing", "a b@x"])
def test_addresses_the_shortcut_leaves_alone_are_still_checked(bad: str) -> None:
    with pytest.raises(InvalidAddress):
        envelope_address(bad)


def test_render_email_refuses_what_build_email_refuses() -> None:
    message = Message(message_id="<a@b>", sender="x@y", recipients=("Bcc: evil@x\r\n",),
                      subject="s", body="b")
    with pytest.raises(ValueError):
        render_email(message)
    with pytest.raises(ValueError, match="timezone-aware"):
        render_email(Message("<a@b>", "x@y.org", ("a@b.org",), "s", "b"),
                     date=datetime(2026, 3, 2))


def test_random_printable_subjects_and_plain_names_match_the_stdlib() -> None:
    """Any printable ASCII in a subject (quotes, '=', '?', parentheses, backslashes) and any
    name of atom characters: the fast path's output is still the stdlib's, byte for byte."""
    rng = random.Random(1)
    name_chars = string.ascii_letters + string.digits + "'_-"

    def word(chars: str, most: int) -> str:
        return "".join(rng.choice(chars) for _ in range(rng.randrange(1, most)))

    def mailbox() -> str:
        spec = (".".join(word(string.ascii_letters + string.digits + "_+-", 5)
                         for _ in range(rng.randrange(1, 3))) + "@"
                + ".".join(word(string.ascii_lowercase + string.digits + "-", 5)
                           for _ in range(rng.randrange(1, 3))))
        if rng.random() < 0.4:
            return spec
        return " ".join(word(name_chars, 6) for _ in range(rng.randrange(1, 4))) + f" <{spec}>"

    fast = 0
    for k in range(800):
        subject = " ".join(word(string.printable[:94], 12) for _ in range(rng.randrange(1, 15)))
        message = Message(f"<x{k}@icsflow>", mailbox(),
                          tuple(mailbox() for _ in range(rng.randrange(1, 6))), subject,
                          "Respond.\n", date=WHEN)
        expected = reference_if_sendable(message, False)
        if expected is None:
            continue
        fast += _render_plain(message, WHEN, False) is not None
        assert render_email(message, smtp=False) == expected
        assert render_email(message, smtp=True) == reference(message, True)
    assert fast > 600
