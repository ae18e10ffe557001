"""Fixtures for the returns' tests: engines on a fixed clock, a small hand-made 903 extract and
census, and a generated county (built once per session)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from icsflow.workflow import Engine, FakeClock
from icsflow.workflow.transfer.returns.generate import County, generate_county

NOW = datetime(2013, 4, 5, 12, 0, tzinfo=UTC)

HEADER = "CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\n"
EPISODES = ("CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,"
            "PL_POST,URN\n")
REVIEWS = "CHILD,DOB,REVIEW,REVIEW_CODE\n"


def write_903(folder: Path, header: str, episodes: str, reviews: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "header.csv").write_text(HEADER + header)
    (folder / "episodes.csv").write_text(EPISODES + episodes)
    (folder / "reviews.csv").write_text(REVIEWS + reviews)
    return folder


SMALL_HEADER = "1001,1,01/06/2005,WBRI,,,\n1002,2,01/02/2011,WBRI,,,\n"
SMALL_EPISODES = ("1001,02/04/2012,S,C2,N1,U1,PR1,01/06/2012,X1,,,,\n"
                  "1001,01/06/2012,P,C2,N1,U4,PR1,14/01/2013,E4A,CARPL,,,\n"
                  "1002,02/05/2012,S,C2,N1,U1,PR1,,,,,,\n")
SMALL_REVIEWS = ("1001,01/06/2005,27/04/2012,PN1\n1001,01/06/2005,20/07/2012,PN3\n"
                 "1001,01/06/2005,10/01/2013,PN4\n1002,01/02/2011,29/05/2012,PN0\n")


@pytest.fixture
def small_903(tmp_path: Path) -> Path:
    """Two children: one period of care with a placement change, ended; one still open."""
    return write_903(tmp_path / "903", SMALL_HEADER, SMALL_EPISODES, SMALL_REVIEWS)


def open_engine(folder: Path, name: str = "icsflow.db", definitions: Path | None = None,
                ) -> Engine:
    return Engine.open(db=f"sqlite:///{folder / name}", clock=FakeClock(NOW),
                       definitions=definitions)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    opened = open_engine(tmp_path)
    try:
        yield opened
    finally:
        opened.close()


def counts(engine: Engine) -> dict[str, int]:
    sql = engine.store.engine  # type: ignore[attr-defined]
    with sql.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("instances", "history", "deadlines", "timers", "outbox",
                          "import_ledger")}


@pytest.fixture(scope="session")
def county(tmp_path_factory: pytest.TempPathFactory) -> County:
    """A small generated county: 40 looked-after children over four years, 20 census
    children, half of them also looked after."""
    return generate_county(tmp_path_factory.mktemp("county"), lac_children=40, cin_children=20,
                           seed=26, dual_share=0.5)
