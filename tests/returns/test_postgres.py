"""On PostgreSQL a return imports to the same cases and the same report as on SQLite, and a
second import changes nothing."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from conftest import NOW, counts
from sqlalchemy import create_engine, text

from icsflow.workflow import Engine, FakeClock
from icsflow.workflow.transfer.returns.generate import generate_county
from icsflow.workflow.transfer.returns.importing import import_returns

PG_URL = os.environ.get("ICSFLOW_TEST_PG")
pytestmark = [pytest.mark.postgres, pytest.mark.slow,
              pytest.mark.skipif(not PG_URL, reason="ICSFLOW_TEST_PG not set")]


def picture(engine: Engine) -> list[tuple[object, ...]]:
    return sorted((i.definition, i.ref, i.child, i.state,
                   tuple((h.event, h.at, h.actor, h.role) for h in i.history))
                  for i in engine.list_cases())


def test_a_county_imports_the_same_on_postgresql_as_on_sqlite(tmp_path: Path) -> None:
    assert PG_URL
    county = generate_county(tmp_path / "county", lac_children=12, cin_children=6, seed=27,
                             dual_share=0.5)  # small: PostgreSQL replays a few rows a second
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sources = [("ssda903", county.ssda903), *(("cin-census", p) for p in county.censuses)]
    sep = "&" if "?" in PG_URL else "?"
    pg = Engine.open(f"{PG_URL}{sep}options=-csearch_path%3D{schema}", clock=FakeClock(NOW),
                     migrate=True)
    lite = Engine.open(f"sqlite:///{tmp_path / 'l.db'}", clock=FakeClock(NOW))
    try:
        for engine in (pg, lite):
            assert import_returns(engine, sources).ok
        assert picture(pg) == picture(lite) and counts(pg) == counts(lite)
        before = counts(pg)
        assert import_returns(pg, sources).imported.applied == 0 and counts(pg) == before
    finally:
        pg.close()
        lite.close()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
