"""The schema revision written in storage/db.py is the head of the shipped migrations."""

from __future__ import annotations

from sqlalchemy import create_engine

from icsflow.storage.db import HEAD_REVISION, scripts_head


def test_the_written_head_is_alembics_head() -> None:
    engine = create_engine("sqlite://")
    try:
        assert scripts_head(engine) == HEAD_REVISION, (
            "a migration was added: set storage/db.py's HEAD_REVISION to its revision")
    finally:
        engine.dispose()
