"""Logging: a quiet library, JSON lines on stderr for the CLI and the daemon.

Why stdlib underneath: icsflow is embedded in other services. Library code logs through stdlib
loggers under ``icsflow.`` (structlog's stdlib wrapper gives the keyword style), so nothing is
printed unless the host configures logging; a ``NullHandler`` on ``icsflow`` keeps Python's
last-resort handler from printing warnings to a host's stderr. Only ``configure_logging`` (the
CLI and the daemon) installs a handler, rendering every record, ours and APScheduler's alike,
as one JSON line.

Why a scrubber in the library: a log line outlives the case. Addresses, names, concern text,
notes, subjects and bodies are personal data, so the library drops them before a record is
made, whatever handler the host attaches; log ids, case references and counts instead.
"""

from __future__ import annotations

import logging as _stdlib_logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

# Keys whose values are personal data or message content: dropped from every event.
PERSONAL_KEYS = frozenset({
    "recipient", "recipients", "to", "cc", "bcc", "address", "addresses", "email", "sender",
    "mail_from", "subject", "body", "name", "child_name", "password", "secret", "data", "note",
    "notes", "concern", "response", "outcome", "reason_text", "changes",
})
_EMAIL = re.compile(r"[^\s<>@,;\"']+@[^\s<>@,;\"']+")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*):[^@/\s]*@")
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
# The LogRecord attribute that carries a library event's key/value pairs to our formatter.
EVENT_ATTR = "icsflow_event"
_HANDLER_TAG = "_icsflow_handler"

_stdlib_logging.getLogger("icsflow").addHandler(_stdlib_logging.NullHandler())


def scrub_personal_data(_logger: object, _method: str,
                        event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Drop personal keys and mask anything shaped like an email address in the others."""
    for key in [k for k in event if k in PERSONAL_KEYS]:
        del event[key]
    for key, value in list(event.items()):
        if isinstance(value, str) and "@" in value:
            event[key] = _EMAIL.sub(_mask, value)
    return event


def _mask(match: re.Match[str]) -> str:
    # Our own Message-IDs (<outbox-1.ab12@icsflow>) identify rows, not people: keep them.
    # A URL's user@host names a service account: keep it, with any password hidden.
    text = match.group(0)
    if text.endswith("@icsflow"):
        return text
    if "://" in text:
        return _URL_PASSWORD.sub(r"\1:***@", text)
    return "[address]"


def to_stdlib(_logger: object, _method: str,
              event: MutableMapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The last library processor: a readable ``event key=value`` message for any host
    handler, with the event's pairs attached for ``configure_logging``'s JSON formatter."""
    exc_info = event.pop("exc_info", None)
    pairs = {k: v for k, v in event.items() if k != "event"}
    text = " ".join([str(event.get("event", ""))] + [f"{k}={v!r}" for k, v in pairs.items()])
    kwargs: dict[str, Any] = {"extra": {EVENT_ATTR: dict(event)}}
    if exc_info:
        kwargs["exc_info"] = exc_info
    return (text,), kwargs


_LIBRARY_PROCESSORS: list[Any] = [
    structlog.stdlib.filter_by_level,   # a disabled level costs one isEnabledFor call
    scrub_personal_data,
    to_stdlib,
]


class _LibraryLogger(structlog.stdlib.BoundLogger):
    """structlog's stdlib BoundLogger that returns at once for a disabled level (no event
    dict, no processors): the engine logs on every event, and a quiet host pays nothing."""

    def _proxy_to_logger(self, method_name: str, event: str | None = None,
                         *event_args: str, **event_kw: object) -> object:
        level = _LEVELS.get("error" if method_name == "exception" else method_name)
        if level is not None and not self._logger.isEnabledFor(level):
            return None
        return super()._proxy_to_logger(method_name, event, *event_args, **event_kw)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A keyword-style logger over the stdlib logger ``name`` (``icsflow.engine`` ...): silent
    unless the host configures logging, scrubbed of personal data either way."""
    return _LibraryLogger(_stdlib_logging.getLogger(name), _LIBRARY_PROCESSORS, {})


def _adopt_library_event(_logger: object, _method: str,
                         event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A record from one of our loggers: render its own pairs, not the flattened message."""
    record = event.get("_record")
    pairs = getattr(record, EVENT_ATTR, None)
    if isinstance(pairs, dict):
        adopted: MutableMapping[str, Any] = dict(pairs)
        for key in ("_record", "_from_structlog", "exc_info"):
            if key in event:
                adopted[key] = event[key]
        return adopted
    return event


def configure_logging(*, level: str = "info", stream: TextIO | None = None,
                      json: bool | None = None) -> None:
    """Render logs on ``stream`` (stderr): JSON when it is not a TTY (or json=True).

    For the CLI and the daemon only: one handler on the root logger, replaced on each call.
    ``icsflow.*`` logs from ``level`` up; other libraries (APScheduler, SQLAlchemy) from
    warning up, each record one event with its traceback inside, never a bare traceback.
    """
    out = stream if stream is not None else sys.stderr
    if json is None:
        json = not (hasattr(out, "isatty") and out.isatty())
    renderer: Any = (structlog.processors.JSONRenderer(sort_keys=False) if json
                     else structlog.dev.ConsoleRenderer(colors=False))
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            _adopt_library_event,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            scrub_personal_data,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _order_keys,
            *([structlog.processors.format_exc_info] if json else []),
            renderer,
        ],
    )
    handler = _stdlib_logging.StreamHandler(out)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_TAG, True)
    reset_logging()
    root = _stdlib_logging.getLogger()
    root.addHandler(handler)
    root.setLevel(_stdlib_logging.WARNING)
    _stdlib_logging.getLogger("icsflow").setLevel(_LEVELS.get(level.lower(), 20))
    # Code that asks structlog directly for a logger joins the same path.
    structlog.configure(processors=_LIBRARY_PROCESSORS,
                        wrapper_class=structlog.stdlib.BoundLogger,
                        logger_factory=structlog.stdlib.LoggerFactory(),
                        cache_logger_on_first_use=False)


def _order_keys(_logger: object, _method: str,
                event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """``event``, ``level``, ``timestamp`` and ``logger`` first: lines read alike."""
    head = {k: event.pop(k) for k in ("event", "level", "timestamp", "logger") if k in event}
    return {**head, **event}


def reset_logging() -> None:
    """Remove the handler ``configure_logging`` installed (tests; a host taking over)."""
    root = _stdlib_logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _HANDLER_TAG, False)]:
        root.removeHandler(handler)
    _stdlib_logging.getLogger("icsflow").setLevel(_stdlib_logging.NOTSET)


__all__ = ["configure_logging", "get_logger", "reset_logging", "scrub_personal_data",
           "PERSONAL_KEYS", "EVENT_ATTR"]
