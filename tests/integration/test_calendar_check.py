"""The daemon notices a changed calendar at start-up, says how many open deadlines it would
move and asks for ``icsflow calendar reproject``; it never moves them itself."""

from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from engine_support import IRO, START_DATA, alert_definition

from icsflow.workflow import Engine, FakeClock, WorkingCalendar
from icsflow.workflow.changes.reproject import warn_if_calendar_changed
from icsflow.workflow.clock import LONDON
from icsflow.workflow.config import load_config
from icsflow.workflow.daemon.runner import Daemon


def _engine(db: str, calendar: WorkingCalendar | None = None) -> Engine:
    clock = FakeClock(datetime(2012, 6, 1, 9, tzinfo=LONDON))
    return Engine.open(db=db, definitions=alert_definition(), clock=clock, calendar=calendar)


class _Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **kw: Any) -> None:
        self.lines.append((event, kw))


def test_a_changed_calendar_is_reported_not_applied(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    with _engine(db) as engine:
        first = engine.start("alert", "C-1", START_DATA, IRO,
                             at=datetime(2012, 5, 30, 10, tzinfo=LONDON)).id
        log = _Log()
        assert warn_if_calendar_changed(engine, log) == 0 and log.lines == []
    closed = WorkingCalendar(closures={date(2012, 6, 11): "Training day"})
    with _engine(db, closed) as engine:
        log = _Log()
        assert warn_if_calendar_changed(engine, log) == 1
        [(event, fields)] = log.lines
        assert event == "calendar_changed" and fields["open_deadlines_to_move"] == 1
        assert "icsflow calendar reproject" in fields["action"]
        assert engine.get(first).deadlines["response_due"] == date(2012, 6, 15)
        assert warn_if_calendar_changed(engine, _Log()) == 1  # still waiting for the command
        engine.reproject()
        assert warn_if_calendar_changed(engine, _Log()) == 0
        assert engine.get(first).deadlines["response_due"] == date(2012, 6, 18)


def test_the_daemon_runs_the_check_when_it_opens_the_engine(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    with _engine(db) as engine:
        engine.start("alert", "C-1", START_DATA, IRO, at=datetime(2012, 5, 30, 10, tzinfo=LONDON))
    config = load_config(None, env={"ICSFLOW_DB": db, "ICSFLOW_MAILDIR": str(tmp_path / "mail")})
    closed = WorkingCalendar(closures={date(2012, 6, 11): "Training day"})
    daemon = Daemon(config, engine_factory=lambda: _engine(db, closed))
    with caplog.at_level(logging.INFO, logger="icsflow"):
        assert daemon._set_up()
    daemon._close()
    # The daemon logs through stdlib logging under icsflow. (quiet unless configured)
    changed = [r for r in caplog.records if "calendar_changed" in r.getMessage()]
    assert len(changed) == 1 and "open_deadlines_to_move=1" in changed[0].getMessage()
