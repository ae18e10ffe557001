"""The channels' loggers: stdlib loggers under ``icsflow.notifiers`` (quiet unless the host
configures logging), keyword-style through structlog's stdlib wrapper.

The same shape as ``icsflow.workflow.logging.get_logger`` (this room imports nothing of ours):
records carry their pairs in the ``icsflow_event`` attribute, which the CLI's formatter renders
as JSON. Channels log ids and counts only, never addresses, subjects or bodies.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any, Protocol

import structlog

EVENT_ATTR = "icsflow_event"

logging.getLogger("icsflow").addHandler(logging.NullHandler())


def _to_stdlib(_logger: object, _method: str,
               event: MutableMapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    exc_info = event.pop("exc_info", None)
    text = " ".join([str(event.get("event", ""))] +
                    [f"{k}={v!r}" for k, v in event.items() if k != "event"])
    kwargs: dict[str, Any] = {"extra": {EVENT_ATTR: dict(event)}}
    if exc_info:
        kwargs["exc_info"] = exc_info
    return (text,), kwargs


class KeywordLogger(Protocol):
    """What a channel logs through: structlog's keyword-style methods (``event``, then pairs).

    A Protocol rather than ``structlog.stdlib.BoundLogger``: ``wrap_logger`` returns a lazy
    proxy that binds one on first use, and ``LogNotifier`` takes any logger with ``info``.
    """

    def info(self, event: str, **kw: object) -> object: ...

    def warning(self, event: str, **kw: object) -> object: ...


def get_logger(name: str) -> KeywordLogger:
    """A keyword-style logger over the stdlib logger ``name``."""
    logger: KeywordLogger = structlog.wrap_logger(
        logging.getLogger(name), processors=[structlog.stdlib.filter_by_level, _to_stdlib],
        wrapper_class=structlog.stdlib.BoundLogger, cache_logger_on_first_use=True)
    return logger
