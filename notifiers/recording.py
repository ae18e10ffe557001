"""An in-memory channel for tests: records what was sent and can be told to fail."""

from __future__ import annotations

import threading

from icsflow.notifiers.base import DeliveryError, unsendable_fails_permanently
from icsflow.notifiers.message import Message, validate_message

__all__ = ["RecordingNotifier"]


class RecordingNotifier:
    """Keep every delivered message in ``.messages`` (duplicates included, so tests see them).

    Messages are validated like on a real channel; ``fail_next(n)`` makes the next ``n`` sends
    raise ``DeliveryError`` without recording. Safe to use from several threads.
    """

    name = "recording"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: list[Message] = []
        self.attempts = 0
        self.closed = False
        self._failures: list[bool] = []

    def fail_next(self, n: int = 1, permanent: bool = False) -> None:
        """Make the next ``n`` sends fail (temporarily unless ``permanent``)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            self._failures.extend([permanent] * n)

    def send(self, message: Message) -> None:
        with self._lock:
            self.attempts += 1
            if self._failures:
                permanent = self._failures.pop(0)
                raise DeliveryError("simulated failure", permanent=permanent,
                                    channel=self.name, message_id=message.message_id)
            with unsendable_fails_permanently(self.name, message):
                validate_message(message)
            self.messages.append(message)

    @property
    def message_ids(self) -> list[str]:
        with self._lock:
            return [m.message_id for m in self.messages]

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self._failures.clear()
            self.attempts = 0

    def close(self) -> None:
        self.closed = True
