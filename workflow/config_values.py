"""Parsing one configuration value: a time, a date, a positive number, an address, a URL, a
list. Each parser raises ``BadValue`` with words a council's administrator can act on; the
key table (``config.KEYS``) names where the value came from."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time
from typing import TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class BadSetting(ValueError):
    """A value is wrong; the caller adds where it came from."""


_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$|^[^@\s<>,;\"]+@localhost$")


def shown(value: object) -> str:
    return repr(value) if isinstance(value, str) else repr(text_value(value)) if isinstance(
        value, date | time) else repr(value)


def parse_time(value: object) -> time:
    """'08:00' -> time(8, 0); anything else is refused (YAML may also hand us a time)."""
    if isinstance(value, time):
        return value
    m = _TIME.match(text_value(value).strip()) if isinstance(value, str) else None
    if not m:
        raise BadSetting(f"{shown(value)} is not a time (HH:MM)")
    return time(int(m.group(1)), int(m.group(2)))


def date_value(value: object) -> date:
    if isinstance(value, datetime):
        raise BadSetting(f"{shown(value)} is not a date (YYYY-MM-DD)")
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(text_value(value).strip())
    except ValueError:
        raise BadSetting(f"{shown(value)} is not a date (YYYY-MM-DD)") from None


def text_value(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadSetting(f"{shown(value)} is not a non-empty string")
    return value.strip()


_Number = TypeVar("_Number", int, float)
_T = TypeVar("_T")


def _numeric(value: object) -> str | bytes | int | float:
    """``value`` if ``int()``/``float()`` may take it (a number or its text, as a file, the
    environment or the command line gives it), else the ``TypeError`` they would raise."""
    if isinstance(value, str | bytes | int | float):
        return value
    raise TypeError(f"{type(value).__name__} is not a number")


_LARGEST = 10**9  # no interval, batch or timeout is longer: inf, nan or 1e300 are mistakes


def at_least(minimum: float) -> Callable[[object], float]:
    """A positive number of seconds no smaller than ``minimum`` (a lease renewed every third
    of itself means nothing below a second)."""
    seconds = positive(float)

    def parse(value: object) -> float:
        number = seconds(value)
        if number < minimum:
            raise BadSetting(f"{shown(value)} is below the smallest allowed ({minimum:g} s)")
        return number
    return parse


def positive(kind: type[_Number]) -> Callable[[object], _Number]:
    def parse(value: object) -> _Number:
        if isinstance(value, bool):
            raise BadSetting(f"{value!r} is not a positive number")
        try:
            number = kind(_numeric(value))
        except (TypeError, ValueError):
            what = "whole number" if kind is int else "number"
            raise BadSetting(f"{shown(value)} is not a positive {what}") from None
        if kind is int and isinstance(value, float) and value != number:
            raise BadSetting(f"{value!r} is not a positive whole number")
        if not 0 < number <= _LARGEST:  # also refuses nan and inf
            raise BadSetting(f"{shown(value)} is not a positive number (at most {_LARGEST:,})")
        return number
    return parse


def offset_seconds(value: object) -> float:
    """Seconds, positive or negative, finite and at most ``_LARGEST`` either way."""
    if isinstance(value, bool):
        raise BadSetting(f"{value!r} is not a number of seconds")
    try:
        number = float(_numeric(value))
    except (TypeError, ValueError):
        raise BadSetting(f"{shown(value)} is not a number of seconds") from None
    if not -_LARGEST <= number <= _LARGEST:  # also refuses nan and inf
        raise BadSetting(f"{shown(value)} is not a number of seconds (at most {_LARGEST:,} "
                         "either way)")
    return number


def bool_value(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = text_value(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise BadSetting(f"{shown(value)} is not true or false")


def recipient(value: object) -> str:
    """An address mail is sent to: the same rule the outbox applies when it queues."""
    from icsflow.workflow.data import is_email

    text = text_value(value)
    if not is_email(text.strip()):
        raise BadSetting(f"{shown(value)} is not an email address (name@example.org)")
    return text.strip()


def address(value: object) -> str:
    text = text_value(value)
    if any(ord(ch) < 32 for ch in text) or not _ADDRESS.match(text):
        raise BadSetting(f"{shown(value)} is not an email address (name@example.org)")
    return text


def timezone_name(value: object) -> str:
    text = text_value(value)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadSetting(f"{shown(value)} is not a timezone (e.g. Europe/London)") from None
    return text


def url_of(schemes: tuple[str, ...]) -> Callable[[object], str]:
    def parse(value: object) -> str:
        text = text_value(value)
        scheme = urlsplit(text).scheme.lower()
        if scheme not in schemes and not any(scheme.startswith(s + "+") for s in schemes):
            raise BadSetting(f"{redacted(text)!r} is not a URL starting {' or '.join(schemes)}://")
        return text
    return parse


def database_url(value: object) -> str:
    text = text_value(value)
    if "://" not in text:
        raise BadSetting(f"{redacted(text)!r} is not a database URL (e.g. sqlite:///icsflow.db or "
                   "postgresql+psycopg://user@host/db)")
    return text


def redacted(url: str) -> str:
    """Keep passwords out of error messages."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def list_of(item: Callable[[object], _T]) -> Callable[[object], tuple[_T, ...]]:
    def parse(value: object) -> tuple[_T, ...]:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise BadSetting(f"{shown(value)} is not a list")
        return tuple(item(v) for v in value)
    return parse


__all__ = ["BadSetting", "address", "at_least", "bool_value", "database_url", "date_value",
           "list_of", "offset_seconds", "parse_time", "positive", "recipient", "redacted",
           "shown", "text_value", "timezone_name", "url_of"]
