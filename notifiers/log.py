"""A channel that only logs that a message would have been sent.

Only the Message-ID and the number of recipients are logged: subjects and bodies may carry a
child's personal data, which must never reach log lines.
"""

from __future__ import annotations

from icsflow.notifiers._logging import KeywordLogger, get_logger
from icsflow.notifiers.base import unsendable_fails_permanently
from icsflow.notifiers.message import Message, validate_message

__all__ = ["LogNotifier"]


class LogNotifier:
    """Write one ``email_logged`` line per message to a structlog logger."""

    name = "log"

    def __init__(self, logger: KeywordLogger | None = None) -> None:
        self._log = logger if logger is not None else get_logger("icsflow.notifiers.log")

    def send(self, message: Message) -> None:
        """Log ``message``; invalid messages fail as they would on a real channel."""
        with unsendable_fails_permanently(self.name, message):
            validate_message(message)
        self._log.info("email_logged", message_id=message.message_id,
                       recipients=len(message.recipients), urgent=message.urgent)

    def close(self) -> None:
        """Nothing to release."""
