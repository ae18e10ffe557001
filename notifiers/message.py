"""The message value passed to every channel, and its conversion to an RFC 5322 email.

Every value that reaches a header is checked here once, so no channel can be used to inject
headers (a CR/LF in a subject built from case data would otherwise start a new header).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses

__all__ = [
    "HeaderInjectionError",
    "InvalidAddress",
    "Message",
    "build_email",
    "envelope_address",
    "validate_message",
]

# Headers build_email sets itself; an extra header may not replace them.
_RESERVED = frozenset(
    {"from", "to", "cc", "bcc", "subject", "message-id", "date", "sender", "reply-to",
     "mime-version", "content-type", "content-transfer-encoding", "x-priority", "importance"}
)
_FIELD_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 ftext: printable ASCII except ':'
_MESSAGE_ID = re.compile(r"^<[^<>@\s]+@[^<>@\s]+>$")


class HeaderInjectionError(ValueError):
    """A value bound for a header contains a line break or another control character."""

    def __init__(self, header: str, value: str) -> None:
        self.header = header
        self.value = value
        super().__init__(
            f"refusing header {header!r}: its value {value!r} contains a line break or control "
            "character; strip CR/LF from the data used to build it"
        )


class InvalidAddress(ValueError):
    """An email address that is not a single, plain ``local@domain`` mailbox."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(
            f"invalid email address {address!r}: {reason}; "
            "expected one address like 'name@example.org' or 'Name <name@example.org>'"
        )


@dataclass(frozen=True, slots=True)
class Message:
    """One email-like notification.

    ``message_id`` comes from the caller (derived from the outbox row, e.g.
    ``"<outbox-42.7f3a@icsflow>"``) so that a resend after a crash carries the same
    Message-ID and channels can recognise it.
    """

    message_id: str
    sender: str
    recipients: tuple[str, ...]
    subject: str
    body: str
    urgent: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    date: datetime | None = None  # the Date header; None means the moment it is built

    def __post_init__(self) -> None:
        # Accept lists from callers but keep the value hashable and immutable.
        if not isinstance(self.recipients, tuple):
            object.__setattr__(self, "recipients", tuple(self.recipients))
        if not isinstance(self.headers, tuple):
            object.__setattr__(self, "headers", tuple(tuple(h) for h in self.headers))


def _check_header_value(header: str, value: str) -> None:
    for ch in value:
        if ch == "\t":
            continue
        if unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029":
            raise HeaderInjectionError(header, value)


def envelope_address(address: str, *, header: str = "address") -> str:
    """Validate one address and return its bare ``local@domain`` (the SMTP envelope form)."""
    _check_header_value(header, address)
    pairs = getaddresses([address])
    if len(pairs) != 1:
        raise InvalidAddress(address, "more than one address")
    _name, spec = pairs[0]
    if not spec:
        raise InvalidAddress(address, "no address found")
    if spec.count("@") != 1:
        raise InvalidAddress(address, "it must contain exactly one '@'")
    if any(ch.isspace() for ch in spec):
        raise InvalidAddress(address, "it contains whitespace")
    local, domain = spec.split("@")
    if not local or not domain or domain.startswith(".") or domain.endswith("."):
        raise InvalidAddress(address, "empty local part or domain")
    # getaddresses is lenient; the address must survive a strict round trip too.
    if "<" in address and not address.rstrip().endswith(">"):
        raise InvalidAddress(address, "text after the closing '>'")
    try:
        Address(addr_spec=spec)
    except (HeaderParseError, ValueError, IndexError) as exc:
        raise InvalidAddress(address, str(exc) or "not parseable") from None
    return spec


def validate_message(message: Message) -> None:
    """Raise ``HeaderInjectionError``/``InvalidAddress``/``ValueError`` if ``message`` is unsafe."""
    _check_header_value("Message-ID", message.message_id)
    if not _MESSAGE_ID.match(message.message_id):
        raise ValueError(
            f"invalid Message-ID {message.message_id!r}: expected '<unique-part@domain>'"
        )
    envelope_address(message.sender, header="From")
    if not message.recipients:
        raise InvalidAddress("", "the message has no recipients")
    for rcpt in message.recipients:
        envelope_address(rcpt, header="To")
    _check_header_value("Subject", message.subject)
    for name, value in message.headers:
        _check_header_value(f"header name {name!r}", name)
        if not _FIELD_NAME.match(name):
            raise HeaderInjectionError(name, name)
        if name.lower() in _RESERVED:
            raise ValueError(f"extra header {name!r} would replace one icsflow sets; rename it")
        _check_header_value(name, value)


def build_email(message: Message, *, date: datetime | None = None) -> EmailMessage:
    """Return the RFC 5322 email for ``message`` (text/plain, UTF-8).

    ``date`` must be timezone-aware; it defaults to the message's own date, else now in UTC.
    """
    validate_message(message)
    if date is None:
        date = message.date or datetime.now(UTC)
    elif date.tzinfo is None or date.utcoffset() is None:
        raise ValueError("date must be timezone-aware, e.g. datetime.now(UTC)")
    msg = EmailMessage()
    msg["From"] = message.sender
    msg["To"] = ", ".join(message.recipients)
    msg["Subject"] = message.subject
    msg["Message-ID"] = message.message_id
    msg["Date"] = format_datetime(date)
    if message.urgent:
        msg["X-Priority"] = "1 (Highest)"
        msg["Importance"] = "High"
    for name, value in message.headers:
        msg[name] = value
    msg.set_content(message.body, subtype="plain", charset="utf-8")
    return msg
