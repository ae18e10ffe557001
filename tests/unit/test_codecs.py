"""storage.codecs gives exactly what SQLAlchemy's own processors give, on SQLite and PostgreSQL
(both dialects compiled offline: no server needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import JSON, Dialect
from sqlalchemy.dialects import postgresql, sqlite

from icsflow.storage import codecs
from icsflow.storage.tables import UTCDateTime

LONDON = ZoneInfo("Europe/London")
MOMENTS = [
    datetime(2011, 12, 25, 0, 0, tzinfo=UTC),
    datetime(2012, 3, 25, 0, 59, 59, 999999, tzinfo=UTC),   # the hour before BST begins
    datetime(2012, 3, 25, 2, 30, tzinfo=LONDON),             # a time in BST
    datetime(2011, 10, 30, 1, 30, tzinfo=LONDON, fold=1),    # the repeated hour
    datetime(1990, 1, 1, tzinfo=timezone(timedelta(hours=-11, minutes=-30))),
    datetime(2100, 12, 31, 23, 59, 59, 1, tzinfo=timezone(timedelta(hours=14))),
]
DOCUMENTS: list[Any] = [{}, [], {"a": 1, "b": [1, 2.5, None, True], "c": "é ☃ \u2028"},
                        ["x", {"y": {"z": []}}], {"n": 10**20, "f": 0.1}]
DIALECTS = [sqlite.dialect(), postgresql.psycopg.dialect()]  # type: ignore[attr-defined]


def _slow_bind(type_: Any, dialect: Dialect) -> Any:
    return type_.dialect_impl(dialect).bind_processor(dialect)


def _slow_result(type_: Any, dialect: Dialect) -> Any:
    return type_.dialect_impl(dialect).result_processor(dialect, None)


def _apply(process: Any, value: Any) -> Any:
    return process(value) if process is not None else value


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_utc_datetimes_bind_and_read_as_sqlalchemy_does(dialect: Dialect) -> None:
    type_ = UTCDateTime()
    fast, slow = codecs.bind_processor(type_, dialect), _slow_bind(type_, dialect)
    fast_read, slow_read = (codecs.result_processor(type_, dialect),
                            _slow_result(type_, dialect))
    for moment in [*MOMENTS, None]:
        stored = _apply(slow, moment)
        assert _apply(fast, moment) == stored
        assert type(_apply(fast, moment)) is type(stored)
        if dialect.name == "postgresql" and stored is not None:
            stored = stored.astimezone(LONDON)  # the driver gives the session's zone
        read = _apply(fast_read, stored)
        assert read == _apply(slow_read, stored)
        if read is not None:
            assert read.tzinfo is UTC and read == moment.astimezone(UTC)


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_naive_datetimes_are_refused_with_the_same_message(dialect: Dialect) -> None:
    type_ = UTCDateTime()
    naive = datetime(2012, 1, 1, 9)
    with pytest.raises(ValueError) as slow_error:
        _apply(_slow_bind(type_, dialect), naive)
    with pytest.raises(ValueError) as fast_error:
        _apply(codecs.bind_processor(type_, dialect), naive)
    assert str(fast_error.value) == str(slow_error.value)


def test_sqlite_text_without_microseconds_or_with_an_offset_reads_as_utc() -> None:
    read = codecs.result_processor(UTCDateTime(), sqlite.dialect())
    assert read is not None
    assert read("2012-06-04 09:00:00") == datetime(2012, 6, 4, 9, tzinfo=UTC)
    assert read("2012-06-04 10:00:00+01:00") == datetime(2012, 6, 4, 9, tzinfo=UTC)


@pytest.mark.parametrize("none_as_null", [False, True])
@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_json_binds_and_reads_as_sqlalchemy_does(dialect: Dialect, none_as_null: bool) -> None:
    type_ = JSON(none_as_null=none_as_null)
    fast, slow = codecs.bind_processor(type_, dialect), _slow_bind(type_, dialect)
    fast_read, slow_read = (codecs.result_processor(type_, dialect),
                            _slow_result(type_, dialect))
    for document in [*DOCUMENTS, None, JSON.NULL]:
        stored = _apply(slow, document)
        if dialect.name == "postgresql":
            assert (fast is None) == (slow is None)
            continue
        assert _apply(fast, document) == stored
        if stored is not None:
            assert _apply(fast_read, stored) == _apply(slow_read, stored)


def test_other_types_keep_sqlalchemys_processor() -> None:
    from sqlalchemy import Boolean, Date, Integer, String

    for type_ in (Boolean(), Date(), Integer(), String(10)):
        for dialect in DIALECTS:
            assert codecs.bind_processor(type_, dialect) == _slow_bind(type_, dialect) or (
                codecs.bind_processor(type_, dialect).__qualname__  # type: ignore[union-attr]
                == _slow_bind(type_, dialect).__qualname__)


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_the_repeated_hour_is_two_instants_even_when_remembered(dialect: Dialect) -> None:
    """01:30 on 30 October 2011 in London happened twice (BST, then GMT): the two compare
    equal as datetimes, so a cache keyed on the datetime alone would give one for the other."""
    bind = codecs.bind_processor(UTCDateTime(), dialect)
    assert bind is not None
    first = datetime(2011, 10, 30, 1, 30, tzinfo=LONDON, fold=0)
    second = datetime(2011, 10, 30, 1, 30, tzinfo=LONDON, fold=1)
    for _ in range(2):  # the second round is answered from what was remembered
        one, two = bind(first), bind(second)
        assert one != two
        if dialect.name == "sqlite":
            assert (one, two) == ("2011-10-30 00:30:00.000000", "2011-10-30 01:30:00.000000")
        else:
            assert two - one == timedelta(hours=1)
    read = codecs.result_processor(UTCDateTime(), dialect)
    if dialect.name == "postgresql" and read is not None:
        assert read(second) - read(first) == timedelta(hours=1)


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_a_datetime_subclass_or_a_wrong_type_is_handled_as_sqlalchemy_does(
        dialect: Dialect) -> None:
    class Moment(datetime):
        pass

    type_ = UTCDateTime()
    fast, slow = codecs.bind_processor(type_, dialect), _slow_bind(type_, dialect)
    moment = Moment(2012, 6, 4, 9, 30, tzinfo=UTC)
    assert _apply(fast, moment) == _apply(slow, moment)
    for wrong in ("2012-06-04", 20120604):
        with pytest.raises((TypeError, AttributeError)) as slow_error:
            _apply(slow, wrong)
        with pytest.raises((TypeError, AttributeError)) as fast_error:
            _apply(fast, wrong)
        assert type(fast_error.value) is type(slow_error.value)
