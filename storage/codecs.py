"""Value converters for the statements run on every firing, equal to SQLAlchemy's own.

The hot statements (``storage.compiled``) are compiled by SQLAlchemy and run on the driver's
cursor. SQLAlchemy's processors for a UTC datetime on SQLite
go through the ``UTCDateTime`` decorator and then format the text field by field with ``%``,
about 2 us a value, several values a row, thousands of rows a tick. These do the same work with
``datetime.isoformat``/``fromisoformat`` and ``json`` directly. They are used only where they
are known to give the same value as SQLAlchemy (``tests/unit/test_codecs.py`` compares both
over many values); anything else keeps SQLAlchemy's processor.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Dialect
from sqlalchemy.types import TypeEngine

from icsflow.definitions.memo import memoized
from icsflow.storage.tables import UTCDateTime
from icsflow.workflow.instance import JsonValue

Processor = Callable[[Any], Any]

_dumps = json.dumps
_loads = json.loads
_fromisoformat = datetime.fromisoformat


def _naive(value: datetime) -> ValueError:
    return ValueError(f"naive datetime {value.isoformat()} cannot be stored")


# A tick binds the same few instants (its "now", the day's due times) thousands of times, and
# reads back the same due times: both conversions are remembered. Equal aware datetimes are
# the same instant whatever their zone, so they share one UTC text, except in a zone's
# repeated hour, where two datetimes differing only by ``fold`` compare (and hash) equal but
# are an hour apart: ``fold`` is part of the key. Datetimes are immutable, so a remembered one
# can be handed out again.
_REMEMBERED = 4096


@memoized("codecs.utc_text", _REMEMBERED)
def _utc_text(value: datetime, _fold: int) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


@memoized("codecs.utc_from_text", _REMEMBERED)
def _utc_from_text(value: str) -> datetime:
    parsed = _fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _sqlite_utc_result(value: str | None) -> datetime | None:
    """SQLite text -> aware UTC datetime."""
    return None if value is None else _utc_from_text(value)


def _sqlite_utc_bind(slow: Processor) -> Processor:
    """Aware datetime -> SQLAlchemy's SQLite text (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC);
    anything but a plain ``datetime`` (a subclass, a wrong type) through SQLAlchemy."""
    def process(value: object) -> object:
        if type(value) is not datetime:
            return slow(value)
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise _naive(value)
        return _utc_text(value, value.fold)
    return process


def _pg_utc_bind(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise _naive(value)
    return _in_utc(value, value.fold)


@memoized("codecs.in_utc", _REMEMBERED)
def _in_utc(value: datetime, _fold: int) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _pg_utc_result(value: datetime | None) -> datetime | None:
    """The driver's datetime (in the session's zone) -> aware UTC."""
    return None if value is None else _in_utc(value, value.fold)


def _json_bind(slow: Processor) -> Processor:
    """Plain dicts and lists straight to ``json.dumps``; anything else (None, SQLAlchemy's
    ``JSON.NULL``) through SQLAlchemy, which knows its ``none_as_null`` rules."""
    none = slow(None)  # what SQLAlchemy stores for None: asked once

    def process(value: object) -> object:
        if type(value) is dict or type(value) is list:
            return _dumps(value) if value else ("{}" if type(value) is dict else "[]")
        if value is None:
            return none
        return slow(value)
    return process


def _json_result(value: str | None) -> JsonValue:
    if value == "{}":  # most changes and much case data: a new dict each time
        return {}
    return None if value is None else _loads(value)


def bind_processor(type_: TypeEngine[Any], dialect: Dialect) -> Processor | None:
    """The converter for a value bound to a ``type_`` parameter on ``dialect``."""
    slow = type_.dialect_impl(dialect).bind_processor(dialect)
    if isinstance(type_, UTCDateTime):
        if dialect.name == "sqlite" and slow is not None:
            return _sqlite_utc_bind(slow)
        if dialect.name == "postgresql" and type_.impl_instance.dialect_impl(
                dialect).bind_processor(dialect) is None:
            return _pg_utc_bind
    elif (isinstance(type_, JSON) and slow is not None and dialect.name == "sqlite"
          and getattr(dialect, "_json_serializer", None) is None):
        return _json_bind(slow)
    return slow


def result_processor(type_: TypeEngine[Any], dialect: Dialect) -> Processor | None:
    """The converter for a ``type_`` column read from ``dialect``'s driver."""
    slow = type_.dialect_impl(dialect).result_processor(dialect, None)
    if isinstance(type_, UTCDateTime):
        if dialect.name == "sqlite":
            return _sqlite_utc_result
        if dialect.name == "postgresql" and type_.impl_instance.dialect_impl(
                dialect).result_processor(dialect, None) is None:
            return _pg_utc_result
    elif (isinstance(type_, JSON) and slow is not None and dialect.name == "sqlite"
          and getattr(dialect, "_json_deserializer", None) is None):
        return _json_result
    return slow
