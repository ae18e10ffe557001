"""The message value passed to every channel, and its conversion to an RFC 5322 email.

Every value that reaches a header is checked here once, so no channel can be used to inject
headers (a CR/LF in a subject built from case data would otherwise start a new header).
"""

from __future__ import annotations

import email.policy
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from email.contentmanager import (  # type: ignore[attr-defined]  # not in typeshed
    _encode_text,  # what set_content runs on a str body: the stdlib's choice of encoding
)
from email.errors import HeaderParseError
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from io import BytesIO

__all__ = [
    "HeaderInjectionError",
    "InvalidAddress",
    "Message",
    "build_email",
    "envelope_address",
    "render_email",
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
    if value.isascii() and value.isprintable():  # the common case: no control character
        return
    for ch in value:
        if ch == "\t":
            continue
        if unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029":
            raise HeaderInjectionError(header, value)


# A plain ASCII mailbox, bare or after a simple display name: every address of this shape
# passes the checks below unchanged (tests/unit/test_notifiers_render.py compares), so the
# stdlib's address parser (about 0.2 ms an address) is only run on anything else.
_ATOM = r"[A-Za-z0-9_+-]+"
_PLAIN_SPEC = rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_PLAIN_NAME = r"[A-Za-z0-9'_-]+(?: [A-Za-z0-9'_-]+)*"
_PLAIN_ADDRESS = re.compile(rf"^(?:({_PLAIN_SPEC})|{_PLAIN_NAME} <({_PLAIN_SPEC})>)$")


def envelope_address(address: str, *, header: str = "address") -> str:
    """Validate one address and return its bare ``local@domain`` (the SMTP envelope form)."""
    plain = _PLAIN_ADDRESS.match(address)
    if plain is not None:
        return plain.group(1) or plain.group(2)
    return _strict_envelope_address(address, header)


def _strict_envelope_address(address: str, header: str) -> str:
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
    msg = EmailMessage(policy=_DEFAULT)
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


# -- rendering to bytes ---------------------------------------------------------------------
# ``build_email(...).as_bytes()`` parses every header back through the stdlib's header registry
# and refolds it (about 1 ms a message, most of a Maildir write). ``render_email`` writes the
# same bytes directly for the messages icsflow sends nearly always (printable ASCII headers,
# plain addresses, body lines within 78 bytes) and hands everything else (non-ASCII subjects
# or names, which need RFC 2047 encoded words; long body lines, which need quoted-printable or
# base64; anything unusual) to the stdlib. Byte-for-byte equality with the stdlib is tested on
# a generated corpus (tests/unit/test_notifiers_render.py), for both line endings.

# Header and body lines up to RFC 5322's limit of 998 characters: a subject stays on the line
# "Subject:" starts (the stdlib's 78 folded a long one onto the next line, where some mail
# tools show an empty subject), and a paragraph written as one line stays one line.
_MAX_LINE = 998
_DEFAULT = email.policy.default.clone(max_line_length=_MAX_LINE)
_FROM_LINE = re.compile(r"^From ", re.MULTILINE)  # email.generator.fcre
_LINE_END = re.compile(r"\r\n|\r|\n")  # email.generator.NLCRE
_SIMPLE_ID = re.compile(r"^<[A-Za-z0-9._+-]+@[A-Za-z0-9._-]+>$")
_PLAIN_NAMED = re.compile(rf"^{_PLAIN_NAME} <")


def render_email(message: Message, *, date: datetime | None = None,
                 smtp: bool = False) -> bytes:
    """The bytes the stdlib writes for ``build_email(message, date=date)``: what ``as_bytes()``
    gives (a Maildir file), or with ``smtp`` what ``smtplib``'s ``send_message`` sends (CRLF
    line ends, body lines starting "From " written ">From ")."""
    if date is None:
        date = message.date or datetime.now(UTC)
    elif date.tzinfo is None or date.utcoffset() is None:
        raise ValueError("date must be timezone-aware, e.g. datetime.now(UTC)")
    validate_message(message)
    fast = _render_plain(message, date, smtp)
    if fast is not None:
        return fast
    built = build_email(message, date=date)
    if not smtp:
        return built.as_bytes()
    out = BytesIO()
    BytesGenerator(out).flatten(built, linesep="\r\n")  # as smtplib.SMTP.send_message
    return out.getvalue()


def _render_plain(message: Message, date: datetime, smtp: bool) -> bytes | None:
    """The fast path of ``render_email``; None when the message needs the stdlib."""
    lines: list[str] = []
    for name, value, kind in _header_fields(message, date):
        folded = _fold(name, value, kind)
        if folded is None:
            return None
        lines.extend(folded)
    # The body as set_content encodes it (7bit, 8bit, or quoted-printable / base64 when a
    # line is longer than 78 bytes, whichever is shorter), written as the generator writes it.
    cte, payload = _encode_text(message.body, "utf-8", None, _DEFAULT)
    if smtp:
        payload = _FROM_LINE.sub(">From ", payload)
    lines.append('Content-Type: text/plain; charset="utf-8"')
    lines.append(f"Content-Transfer-Encoding: {cte}")
    lines.append("MIME-Version: 1.0")
    lines.append("")
    nl = "\r\n" if smtp else "\n"
    return (nl.join(lines) + nl + nl.join(_LINE_END.split(payload))).encode(
        "ascii", "surrogateescape")


def _header_fields(message: Message, date: datetime) -> list[tuple[str, str, str]]:
    fields = [("From", message.sender, "address"),
              ("To", ", ".join(message.recipients), "address"),
              ("Subject", message.subject, "text"),
              ("Message-ID", message.message_id, "id"),
              ("Date", format_datetime(date), "text")]
    if message.urgent:
        fields += [("X-Priority", "1 (Highest)", "text"), ("Importance", "High", "text")]
    fields += [(name, value, "text") for name, value in message.headers]
    return fields


def _fold(name: str, value: str, kind: str) -> list[str] | None:
    """``Name: value`` folded as the stdlib folds plain ASCII (email._header_value_parser's
    _refold_parse_tree: the whole value on the first line, else alone on the next, else token
    by token, a token that does not fit starting a new line), or None when the stdlib would do
    something else (encode, quote, overflow a line)."""
    if not (value.isascii() and value.isprintable()) or "=?" in value:
        return None
    if kind == "id":
        return [f"{name}: {value}"] if _SIMPLE_ID.match(value) \
            and len(name) + 2 + len(value) <= _MAX_LINE else None
    tokens: list[str] = []
    if kind == "address":
        for k, address in enumerate(value.split(", ")):
            if _PLAIN_ADDRESS.match(address) is None or (
                    "<" in address and _PLAIN_NAMED.match(address) is None):
                return None
            tokens += [",", f" {address}"] if k else [address]
    else:
        if value[0] == " " or value[-1] == " " or "  " in value:
            return None
        for k, word in enumerate(value.split(" ")):
            tokens += [" ", word] if k else [word]
    lines = [f"{name}: "]
    if len(value) <= _MAX_LINE - len(lines[-1]):
        return [lines[0] + value]
    if len(value) + 1 <= _MAX_LINE:
        return [f"{name}:", f" {value}"]
    for token in tokens:
        if len(token) <= _MAX_LINE - len(lines[-1]):
            lines[-1] += token
        elif token == "," or len(token) + 1 > _MAX_LINE:
            return None  # the stdlib lets the line overflow, or encodes the word to split it
        elif lines[-1].endswith(" "):
            lines[-1] = lines[-1][:-1]
            lines.append(f" {token}")
        elif token.startswith(" "):
            lines.append(token)
        else:
            return None
    return lines
