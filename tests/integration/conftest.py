"""Fixtures shared by the integration tests' modules (``engine_support`` holds the rest)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_support import Backend, sql_backends
from sqlalchemy import Engine

from icsflow.storage.db import create_db_engine, ensure_schema


@pytest.fixture(params=sql_backends())
def sql(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh, migrated database as a SQLAlchemy engine (SQLite, and PostgreSQL when
    ICSFLOW_TEST_PG is set), for the storage classes on their own (``SqlOutbox``)."""
    backend = Backend(request.param, tmp_path)
    engine = create_db_engine(backend.url)
    ensure_schema(engine, migrate=True)
    try:
        yield engine
    finally:
        engine.dispose()
        backend.drop()
