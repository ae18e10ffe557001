"""Logging: structlog, JSON lines for machines, a readable console for people.

Why a scrubber: a log line outlives the case. Staff addresses, subjects and bodies are personal
data, so they never reach a log line, even if a caller passes them by mistake; log ids, case
references and counts instead.
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
    "mail_from", "subject", "body", "name", "child_name", "password", "secret",
})
_EMAIL = re.compile(r"[^\s<>@,;\"']+@[^\s<>@,;\"']+")
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


def scrub_personal_data(_logger: Any, _method: str,
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
    return match.group(0) if match.group(0).endswith("@icsflow") else "[address]"


def configure_logging(*, level: str = "info", stream: TextIO | None = None,
                      json: bool | None = None) -> None:
    """Configure structlog once per process: JSON when ``stream`` is not a TTY (or json=True)."""
    out = stream if stream is not None else sys.stderr
    if json is None:
        json = not (hasattr(out, "isatty") and out.isatty())
    renderer: Any = (structlog.processors.JSONRenderer(sort_keys=False) if json
                     else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            scrub_personal_data,
            structlog.processors.format_exc_info if json else _passthrough,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level.lower(), 20)),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # Libraries (APScheduler, SQLAlchemy) log through the standard library: warnings only.
    _stdlib_logging.basicConfig(stream=out, level=_stdlib_logging.WARNING,
                                format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _stdlib_logging.getLogger("apscheduler").setLevel(_stdlib_logging.WARNING)


def _passthrough(_logger: Any, _method: str,
                 event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return event


def get_logger(name: str) -> Any:
    """A structlog logger bound to a component name."""
    return structlog.get_logger(name)


__all__ = ["configure_logging", "get_logger", "scrub_personal_data", "PERSONAL_KEYS"]
