"""SMTP delivery with the standard library.

One connection for a run of messages (a dispatcher's batch, and the next batch within
``keep_alive``), dropped after any failure so a half-broken connection never wedges later
sends. Each message goes as the bytes ``smtplib``'s ``send_message`` would send, rendered by
``render_email`` (the stdlib's ``email`` package only where it would write something else).
"""

from __future__ import annotations

import smtplib
import ssl
import time
from email.message import EmailMessage
from typing import Literal, Protocol
from urllib.parse import unquote, urlsplit

from icsflow.notifiers._logging import get_logger
from icsflow.notifiers.base import DeliveryError, unsendable_fails_permanently
from icsflow.notifiers.message import Message, build_email, render_email
from icsflow.notifiers.message import envelope_address as _envelope

__all__ = ["SmtpNotifier"]

Security = Literal["plain", "starttls", "ssl"]

_SCHEMES: dict[str, tuple[Security, int]] = {
    "smtp": ("plain", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("ssl", 465),
}
_ACCEPTED = "smtp://host[:25], smtp+starttls://[user@]host[:587], smtps://[user@]host[:465]"

_log = get_logger("icsflow.notifiers.smtp")


class _Fail(Protocol):
    """``send``'s closure that builds the ``DeliveryError`` for this message and channel."""

    def __call__(self, reason: str, permanent: bool, down: bool = False) -> DeliveryError: ...


def _permanent_code(code: int) -> bool:
    return 500 <= code < 600


class SmtpNotifier:
    """Send messages over SMTP (plain, STARTTLS or implicit TLS), one connection for a run of
    messages: it is kept between sends for ``keep_alive`` seconds of idleness, dropped after
    any failure, and opened again once if the server closed it while idle (a reused
    connection's ``SMTPServerDisconnected``); ``close`` quits it."""

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: Security = "plain",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        local_hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if security not in ("plain", "starttls", "ssl"):
            raise ValueError(f"security must be 'plain', 'starttls' or 'ssl', not {security!r}")
        if not host:
            raise ValueError("SMTP host must not be empty")
        if not 0 < port < 65536:
            raise ValueError(f"SMTP port {port} is out of range 1-65535")
        if password is not None and username is None:
            raise ValueError(
                "an SMTP password was given without a username; put the user in the URL, "
                "e.g. smtp+starttls://user@host:587"
            )
        self.host = host
        self.port = port
        self.security: Security = security
        self.username = username
        self._password = password
        self.timeout = timeout
        self.local_hostname = local_hostname
        self._ssl_context = ssl_context
        self.keep_alive = 10.0
        self._conn: smtplib.SMTP | None = None
        self._last_used = 0.0

    @classmethod
    def from_url(
        cls,
        url: str,
        password: str | None = None,
        timeout: float = 30.0,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> SmtpNotifier:
        """Build from ``smtp://host:port``, ``smtp+starttls://user@host:587`` or
        ``smtps://user@host:465``. The password comes separately (``ICSFLOW_SMTP_PASSWORD``)
        so it stays out of URLs that end up in process lists and logs.
        """
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise ValueError(
                f"unsupported SMTP URL scheme {parts.scheme!r} in {_redact(url)!r}; "
                f"accepted forms: {_ACCEPTED}"
            )
        security, default_port = _SCHEMES[scheme]
        try:
            port = parts.port
        except ValueError:
            raise ValueError(
                f"invalid port in SMTP URL {_redact(url)!r}; accepted forms: {_ACCEPTED}"
            ) from None
        host = parts.hostname
        if not host:
            raise ValueError(f"SMTP URL {_redact(url)!r} has no host; accepted forms: {_ACCEPTED}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(
                f"SMTP URL {_redact(url)!r} must not have a path, query or fragment; "
                f"accepted forms: {_ACCEPTED}"
            )
        username = unquote(parts.username) if parts.username else None
        if password is None and parts.password is not None:
            password = unquote(parts.password)
        return cls(
            host,
            port if port is not None else default_port,
            security=security,
            username=username,
            password=password,
            timeout=timeout,
            ssl_context=ssl_context,
        )

    def __repr__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"SmtpNotifier({self.security}://{user}{self.host}:{self.port})"

    def _context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            return smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=self._context(),
            )
        conn = smtplib.SMTP(
            self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
        )
        try:
            if self.security == "starttls":
                conn.ehlo()
                conn.starttls(context=self._context())
                conn.ehlo()
        except BaseException:
            conn.close()
            raise
        return conn

    def send(self, message: Message) -> None:
        """Deliver ``message``; raise ``DeliveryError`` saying whether a retry can help."""

        def fail(reason: str, permanent: bool, down: bool = False) -> DeliveryError:
            return DeliveryError(
                reason, permanent=permanent, channel=self.name, message_id=message.message_id,
                endpoint_down=down,
            )

        with unsendable_fails_permanently(self.name, message):
            from_addr = _envelope(message.sender, header="From")
            to_addrs = [_envelope(r, header="To") for r in message.recipients]
            # A non-ASCII envelope needs SMTPUTF8, which send_message negotiates.
            email: bytes | EmailMessage = render_email(message, smtp=True) \
                if from_addr.isascii() and all(a.isascii() for a in to_addrs) \
                else build_email(message)

        if self._conn is not None and time.monotonic() - self._last_used > self.keep_alive:
            self.close()
        for attempt in (1, 2):
            reused = self._conn is not None
            conn = self._conn if self._conn is not None else self._open(fail)
            self._conn = None
            try:
                refused = self._send_on(conn, reused and attempt == 1, email, from_addr,
                                        to_addrs, fail)
            except _Reconnect:
                continue
            break
        self._conn, self._last_used = conn, time.monotonic()
        if refused:
            # Accepted for some recipients: retrying would duplicate it for the others.
            _log.warning("email_recipients_refused", message_id=message.message_id,
                         refused=len(refused), accepted=len(to_addrs) - len(refused))
        _log.info("email_sent", message_id=message.message_id, recipients=len(to_addrs),
                  host=self.host)

    def _open(self, fail: _Fail) -> smtplib.SMTP:
        try:
            conn = self._connect()
        except smtplib.SMTPResponseException as exc:
            raise fail(f"server {self.host}:{self.port} refused the connection: "
                       f"{exc.smtp_code} {_text(exc.smtp_error)}", False, True) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise fail(f"cannot connect to {self.host}:{self.port}: {_describe(exc)}",
                       False, True) from exc
        try:
            if self.username is not None:
                conn.login(self.username, self._password or "")
        except smtplib.SMTPAuthenticationError as exc:
            conn.close()
            # A configuration problem of the channel, not of this message: retry once fixed.
            raise fail(f"authentication as {self.username!r} failed: {exc.smtp_code}",
                       False) from exc
        except (OSError, smtplib.SMTPException) as exc:
            conn.close()
            raise fail(f"SMTP session with {self.host}:{self.port} failed: {_describe(exc)}",
                       False, True) from exc
        return conn

    def _send_on(self, conn: smtplib.SMTP, reused: bool, email: bytes | EmailMessage,
                 from_addr: str, to_addrs: list[str], fail: _Fail) -> dict[str, tuple[int, bytes]]:
        """One message on ``conn``; the connection is closed on any failure."""
        try:
            try:
                if isinstance(email, bytes):
                    return dict(conn.sendmail(from_addr, to_addrs, email))
                return dict(conn.send_message(email, from_addr=from_addr, to_addrs=to_addrs))
            except smtplib.SMTPServerDisconnected as exc:
                if reused:  # closed by the server while idle: open a new one, once
                    raise _Reconnect() from None
                raise fail(f"SMTP session with {self.host}:{self.port} failed: {_describe(exc)}",
                           False, True) from exc
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [code for code, _ in exc.recipients.values()]
                permanent = bool(codes) and all(_permanent_code(c) for c in codes)
                raise fail(f"all {len(codes)} recipients refused (codes {sorted(set(codes))})",
                           permanent) from exc
            except smtplib.SMTPResponseException as exc:
                raise fail(f"server replied {exc.smtp_code} {_text(exc.smtp_error)}",
                           _permanent_code(exc.smtp_code)) from exc
            except (OSError, smtplib.SMTPException) as exc:
                # A timeout or a dropped connection mid-session: the server, not the message.
                raise fail(f"SMTP session with {self.host}:{self.port} failed: {_describe(exc)}",
                           False, True) from exc
        except BaseException:
            conn.close()  # no QUIT after a failure: the server may be what hangs
            raise

    def close(self) -> None:
        """Quit the kept connection, if any (idempotent)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            _quit_quietly(conn)


class _Reconnect(Exception):
    """A kept connection the server had closed: send again on a new one."""


def _quit_quietly(conn: smtplib.SMTP) -> None:
    # Once DATA is accepted the message is sent; a failing QUIT must not turn that into an error.
    try:
        conn.quit()
    except (OSError, smtplib.SMTPException):
        pass
    finally:
        conn.close()


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _redact(url: str) -> str:
    """The URL without any password, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
