"""The one protocol every delivery channel implements, and its one error.

The outbox dispatcher only needs to know two things about a failed send: what went wrong,
and whether trying again later can help. ``DeliveryError.permanent`` carries the second.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

from icsflow.notifiers.message import Message

__all__ = ["BatchNotifier", "DeliveryError", "Notifier", "unsendable_fails_permanently"]


class DeliveryError(Exception):
    """A message could not be delivered.

    ``permanent`` is True when retrying the same message cannot succeed (the server refused
    every recipient with a 5xx, an address is invalid, a header would be injected); it is
    False for failures of the channel itself (connection refused, timeouts, 4xx replies,
    authentication or TLS problems an operator can fix), which the dispatcher retries.

    ``endpoint_down`` is True when the endpoint itself failed rather than this message (no
    connection, a timeout, an HTTP 5xx): the next message would fail the same way, so the
    dispatcher stops trying that endpoint for a while (its circuit breaker) instead of paying
    the timeout once per message.
    """

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool,
        channel: str | None = None,
        message_id: str | None = None,
        endpoint_down: bool = False,
    ) -> None:
        self.reason = reason
        self.permanent = permanent
        self.endpoint_down = endpoint_down and not permanent
        self.channel = channel
        self.message_id = message_id
        kind = "permanent, will not retry" if permanent else "temporary, may retry"
        where = f"{channel}: " if channel else ""
        which = f" [{message_id}]" if message_id else ""
        super().__init__(f"{where}{reason}{which} ({kind})")


@runtime_checkable
class Notifier(Protocol):
    """A delivery channel. ``send`` either delivers the message or raises ``DeliveryError``.

    Implementations must be safe to call from one dispatcher thread at a time and must not
    be wedged by an earlier failure; ``close`` releases any held connection and is idempotent.
    """

    name: str

    def send(self, message: Message) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class BatchNotifier(Notifier, Protocol):
    """A channel that can take a batch at once (``send_many``: one answer per message, None
    for delivered). ``idempotent`` True means it stores each Message-ID once (a Maildir), so a
    batch sent again after a crash delivers nothing new: the dispatcher may then write a
    batch and settle it as one."""

    idempotent: bool

    def send_many(self, messages: Sequence[Message]) -> list[DeliveryError | None]: ...


@contextmanager
def unsendable_fails_permanently(channel: str, message: Message) -> Iterator[None]:
    """Building or checking ``message`` inside this block: a message that cannot be sent as it
    is (an invalid address, a header injection, a malformed Message-ID, all ``ValueError``)
    becomes a permanent ``DeliveryError``, the same on every channel."""
    try:
        yield
    except ValueError as exc:
        raise DeliveryError(str(exc), permanent=True, channel=channel,
                            message_id=message.message_id) from exc
