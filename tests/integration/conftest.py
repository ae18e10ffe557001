"""Fixtures shared by the integration tests' modules (``engine_support`` holds the rest)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_support import Backend, backends
from sqlalchemy import Engine

from icsflow.storage.db import create_db_engine, ensure_schema


@pytest.fixture(params=backends())
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


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real OpenID provider on loopback (``oidc_support``), its client allowed to send
    browsers back to a loopback icsflow address (``provider.base``) the browser test serves
    on; skipped, saying why, when Node.js or the npm package cannot be had."""
    import oidc_support

    try:
        oidc_support.install()
    except oidc_support.Unavailable as why:
        pytest.skip(str(why))
    base = f"http://127.0.0.1:{oidc_support.free_port()}"
    provider = oidc_support.start(tmp_path_factory.mktemp("oidc"), base)
    yield provider
    provider.stop()
