"""Value converters for the statements run on every firing, equal to SQLAlchemy's own.

The hot statements (``repository._Direct``, ``repository._DirectQuery``) are compiled by
SQLAlchemy and run on the driver's cursor. SQLAlchemy's processors for a UTC datetime on SQLite
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

from icsflow.storage.tables import UTCDateTime

Processor = Callable[[Any], Any]

_dumps = json.dumps
_loads = json.loads
_fromisoformat = datetime.fromisoformat


def _naive(value: datetime) -> ValueError:
    return ValueError(f"naive datetime {value.isoformat()} cannot be stored")


def _sqlite_utc_bind(value: Any) -> Any:
    """Aware datetime -> SQLAlchemy's SQLite text (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC)."""
    if value is None:
        return None
    if type(value) is not datetime:
        raise TypeError("SQLite DateTime type only accepts Python datetime and date objects "
                        "as input.")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise _naive(value)
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_utc_result(value: Any) -> Any:
    """SQLite text -> aware UTC datetime."""
    if value is None:
        return None
    parsed = _fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _pg_utc_bind(value: Any) -> Any:
    if value is None:
        return None
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise _naive(value)
    return value.astimezone(UTC)


def _pg_utc_result(value: Any) -> Any:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _json_bind(slow: Processor) -> Processor:
    """Plain dicts and lists straight to ``json.dumps``; anything else (None, SQLAlchemy's
    ``JSON.NULL``) through SQLAlchemy, which knows its ``none_as_null`` rules."""
    def process(value: Any) -> Any:
        if type(value) is dict or type(value) is list:
            return _dumps(value)
        return slow(value)
    return process


def _json_result(value: Any) -> Any:
    return None if value is None else _loads(value)


def bind_processor(type_: TypeEngine[Any], dialect: Dialect) -> Processor | None:
    """The converter for a value bound to a ``type_`` parameter on ``dialect``."""
    slow = type_.dialect_impl(dialect).bind_processor(dialect)
    if isinstance(type_, UTCDateTime):
        if dialect.name == "sqlite":
            return _sqlite_utc_bind
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
