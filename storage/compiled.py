"""Statements compiled once by SQLAlchemy and run on the driver's cursor.

SQLAlchemy compiles each hot statement (its SQL text for the dialect, its bind and result
types); running it through ``Connection.execute`` then costs an execution context per call,
about 0.2 ms, several times what SQLite takes to run a one-row write. These run the compiled
text on the DBAPI cursor inside the connection's transaction, every value through
``storage.codecs`` (equal to SQLAlchemy's own processors), so rows are written and read exactly
as through SQLAlchemy.
"""

from __future__ import annotations

import operator
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import ARRAY, Connection, Dialect, any_, bindparam
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import BindParameter, ClauseElement, ColumnElement
from sqlalchemy.sql.selectable import ExecutableReturnsRows

from icsflow.storage import codecs

__all__ = ["IN_SIZES", "Binder", "CompiledIn", "CompiledQuery", "CompiledWrite", "Match",
           "binds_of", "driver_cursor"]


# ``build``'s argument for ``CompiledIn``: the id condition on a column.
Match = Callable[[ColumnElement[Any]], ColumnElement[bool]]


def _compile(stmt: ClauseElement, dialect: Dialect, *, column_keys: list[str] | None = None,
             for_executemany: bool = False) -> SQLCompiler:
    """``stmt.compile(...)``: the statement compiler SQLAlchemy gives for a query or a write
    (typed ``Compiled``, which lacks the bind names read here)."""
    compiled = stmt.compile(dialect=dialect, column_keys=column_keys,
                            for_executemany=for_executemany)
    if not isinstance(compiled, SQLCompiler):
        raise TypeError(f"storage.compiled: {type(stmt).__name__} compiled to "
                        f"{type(compiled).__name__}, not a statement compiler")
    return compiled


def binds_of(compiled: SQLCompiler) -> list[tuple[str, BindParameter[Any]]]:
    """(name, bind parameter) in the order the driver takes them (qmark) or by name."""
    if compiled.positional:
        return [(n, compiled.binds[n]) for n in compiled.positiontup or ()]
    return [(name, bp) for bp, name in compiled.bind_names.items()]


class Binder:
    """One compiled write: its SQL and how to turn a row (a dict by column key) into the
    driver's parameters, each value through its converter (``storage.codecs``)."""

    def __init__(self, sql: str, positional: bool,
                 binds: list[tuple[str, Any, codecs.Processor | None]],
                 keys: tuple[str, ...]) -> None:
        self.sql = sql
        self.positional = positional
        self.taken = [(name, default) for name, default, _ in binds]
        self.names = [name for name, _ in self.taken]
        self.convert = [(k, process) for k, (_, _, process) in enumerate(binds)
                        if process is not None]
        # Rows carry the keys this was compiled for: when they hold every bound name (no
        # default to fill in), one itemgetter takes them all.
        self.getter = (operator.itemgetter(*self.names)
                       if len(self.names) > 1 and set(self.names) <= set(keys) else None)

    def values(self, row: dict[str, Any]) -> tuple[object, ...] | dict[str, object]:
        out = (list(self.getter(row)) if self.getter is not None
               else [row.get(name, default) for name, default in self.taken])
        for k, process in self.convert:
            out[k] = process(out[k])
        return tuple(out) if self.positional else dict(zip(self.names, out, strict=True))


class CompiledWrite:
    """A write compiled once per dialect and parameter keys with SQLAlchemy (its SQL text and
    its bind processors, so values are stored exactly as through ``Connection.execute``) and
    sent straight to the driver's cursor in the connection's transaction. SQLAlchemy's
    execution context costs about 0.2 ms a call, several times what SQLite takes to run a
    one-row write, and CPU a loaded machine does not have to spare beside PostgreSQL."""

    def __init__(self, stmt: UpdateBase) -> None:
        self.stmt = stmt
        self._compiled: dict[tuple[str, tuple[str, ...]], Binder] = {}

    def _compile(self, dialect: Dialect, keys: tuple[str, ...]) -> Binder:
        found = self._compiled.get((dialect.name, keys))
        if found is None:
            compiled = _compile(self.stmt, dialect, column_keys=list(keys),
                                for_executemany=True)  # no implicit RETURNING
            table = getattr(self.stmt, "table", None)
            # Python-side column defaults (``default="email"``) are filled in by SQLAlchemy's
            # execution context, which this path skips: take them from the table.
            defaults = {c.key: c.default.arg for c in (table.columns if table is not None
                                                         else ())
                        if c.default is not None and c.default.is_scalar}
            binds = []
            for name, bp in binds_of(compiled):
                default = defaults.get(name, bp.value) if name not in keys else bp.value
                binds.append((name, default, codecs.bind_processor(bp.type, dialect)))
            found = Binder(compiled.string, bool(compiled.positional), binds, keys)
            self._compiled[(dialect.name, keys)] = found
        return found

    def run(self, conn: Connection, cursor: DBAPICursor, rows: list[dict[str, Any]]) -> int:
        """Execute for ``rows`` (one call, ``executemany`` for several); rows touched."""
        binder = self._compile(conn.dialect, tuple(rows[0]))
        if len(rows) == 1:
            cursor.execute(binder.sql, binder.values(rows[0]))
        else:
            values = binder.values
            batch = [values(r) for r in rows]
            # one kind a batch: every row a tuple (qmark) or every row a dict (pyformat)
            cursor.executemany(binder.sql, cast(
                "Sequence[Sequence[object]] | Sequence[Mapping[str, object]]", batch))
        return int(cursor.rowcount)


class CompiledQuery:
    """A read (or a write with RETURNING) compiled once per dialect with SQLAlchemy and run on
    the driver's cursor: values converted by SQLAlchemy's own result processors, rows as
    named tuples."""

    def __init__(self, stmt: ExecutableReturnsRows) -> None:
        self.stmt = stmt
        self.names = [c.key for c in stmt.exported_columns]
        self.row_type: Any = namedtuple("row", self.names)  # type: ignore[misc]  # noqa: PYI024
        self._compiled: dict[str, tuple[str, bool, list[tuple[str, Any, Any]], list[Any]]] = {}

    def run(self, conn: Connection, cursor: DBAPICursor, params: dict[str, Any]) -> list[Any]:
        dialect = conn.dialect
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = _compile(self.stmt, dialect)
            binds = [(name, bp.value, codecs.bind_processor(bp.type, dialect))
                     for name, bp in binds_of(compiled)]
            processors = [(k, p) for k, c in enumerate(self.stmt.exported_columns)
                          if (p := codecs.result_processor(c.type, dialect)) is not None]
            found = self._compiled[dialect.name] = (compiled.string,
                                                    bool(compiled.positional), binds,
                                                    processors)
        sql, positional, binds, processors = found
        given = []
        for name, default, process in binds:
            value = params[name] if name in params else default
            given.append(value if process is None else process(value))
        cursor.execute(sql, tuple(given) if positional
                       else dict(zip([n for n, _, _ in binds], given, strict=True)))
        make = self.row_type._make
        if not processors:
            return [make(row) for row in cursor.fetchall()]
        out = []
        for row in cursor.fetchall():
            values = list(row)
            for k, process in processors:
                value = values[k]
                if value is not None:
                    values[k] = process(value)
            out.append(make(values))
        return out


# A read of many rows by id. PostgreSQL takes the ids as one array (``= ANY(:ids)``): one
# statement the server and the driver prepare once. SQLite has no arrays: IN lists are compiled
# for a few sizes and a shorter list is padded with its last id (a repeated value in IN changes
# nothing), so a tick's reads use a handful of prepared statements.
IN_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 500)


class CompiledIn:
    """A read of many rows by ``column IN (ids)`` (at most 500), run as ``CompiledQuery``;
    ``build(match)`` makes the statement from ``match(column)``, the id condition."""

    def __init__(self, build: Callable[[Match], ExecutableReturnsRows]) -> None:
        self.build = build
        self._by_size: dict[tuple[str, int], tuple[CompiledQuery, list[str]]] = {}

    def run(self, conn: Connection, cursor: DBAPICursor, ids: Sequence[Any],
            params: dict[str, Any] | None = None) -> list[Any]:
        """The rows for ``ids``; ``params`` binds the statement's other parameters."""
        if conn.dialect.name == "postgresql":
            found = self._by_size.get(("postgresql", 0))
            if found is None:
                found = self._by_size[("postgresql", 0)] = (CompiledQuery(self.build(
                    lambda col: col == any_(bindparam("ids", type_=ARRAY(col.type))))), [])
            return found[0].run(conn, cursor, {**(params or {}), "ids": list(ids)})
        size = next(n for n in IN_SIZES if n >= len(ids))
        found = self._by_size.get((conn.dialect.name, size))
        if found is None:
            names = [f"in{k}" for k in range(size)]
            binds: list[Any] = [bindparam(n) for n in names]
            found = self._by_size[(conn.dialect.name, size)] = (
                CompiledQuery(self.build(lambda col: col.in_(binds))), names)
        query, names = found
        return query.run(conn, cursor, {**(params or {}), **dict(zip(
            names, [*ids, *[ids[-1]] * (size - len(ids))], strict=True))})


def driver_cursor(conn: Connection) -> DBAPICursor | None:
    """The driver's cursor when the hot paths may bypass SQLAlchemy's execution (the two
    drivers whose parameter styles ``CompiledWrite`` knows), else None."""
    if (conn.dialect.name, conn.dialect.paramstyle) in (("sqlite", "qmark"),
                                                         ("postgresql", "pyformat")):
        return conn.connection.cursor()
    return None
