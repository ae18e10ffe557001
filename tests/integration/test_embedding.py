"""Embedded in a host service, the engine is quiet and never logs a case's personal data."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from icsflow.workflow.logging import configure_logging, get_logger

PERSONAL = ("Amelia Hartley-Fenwick", "tm.private@council.example", "iro.private@council.example",
            "Visited Zebedee", "phoned Grandma Quibble")

SCRIPT = textwrap.dedent("""
    import logging, sys
    from datetime import UTC, date, datetime
    if sys.argv[2] == "debug":
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    from icsflow.workflow import Actor, Engine
    engine = Engine.open(db=f"sqlite:///{sys.argv[1]}",
                         directory={"iro_service_manager": ["ism@council.example"]})
    data = {"team_manager_email": "tm.private@council.example",
            "iro_email": "iro.private@council.example",
            "concern": "Amelia Hartley-Fenwick is not seen", "category": "plan_progress"}
    case = engine.start("alert_dispute", "A-1", data, Actor("iro-1", "iro"),
                        at=date(2011, 12, 19))
    engine.fire(case.id, "respond", Actor("tm-1", "team_manager"),
                data={"response": "Visited Zebedee"}, note="phoned Grandma Quibble",
                at=date(2012, 1, 4))
    try:
        engine.fire(case.id, "respond", Actor("tm-1", "team_manager"),
                    note="phoned Grandma Quibble", at=date(2012, 1, 5))
    except Exception:
        pass
    engine.tick(datetime(2012, 3, 1, tzinfo=UTC))
    engine.close()
""")


def _embed(tmp_path: Path, mode: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "host.py"
    script.write_text(SCRIPT, encoding="utf-8")
    return subprocess.run([sys.executable, str(script), str(tmp_path / "host.db"), mode],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)


def test_an_embedded_engine_prints_nothing_unless_the_host_configures_logging(
        tmp_path: Path) -> None:
    done = _embed(tmp_path, "quiet")
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")


def test_at_debug_the_engine_logs_its_events_but_no_personal_data(tmp_path: Path) -> None:
    done = _embed(tmp_path, "debug")
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "icsflow.engine:instance_started" in output
    assert "icsflow.engine:event_fired" in output
    for secret in PERSONAL:
        assert secret not in output


def test_the_library_scrubs_before_a_host_handler_sees_the_record(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="icsflow"):
        get_logger("icsflow.engine").warning(
            "case_noted", instance_id="i-1", note="phoned Grandma Quibble",
            data={"concern": "x"}, reason="bounced tm.private@council.example")
    [record] = caplog.records
    assert "Quibble" not in record.getMessage() and "tm.private" not in record.getMessage()
    assert record.icsflow_event == {  # type: ignore[attr-defined]
        "event": "case_noted", "instance_id": "i-1", "reason": "bounced [address]"}


def test_other_libraries_errors_render_as_one_json_event_with_the_traceback_inside() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream, json=True)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("apscheduler.executors.default").exception(
            'Job "timer_sweep" raised an exception')
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["event"] == 'Job "timer_sweep" raised an exception'
    assert event["level"] == "error" and event["logger"] == "apscheduler.executors.default"
    assert "RuntimeError: boom" in event["exception"]


def test_the_cli_level_applies_to_icsflow_and_other_libraries_stay_at_warning() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream, json=True, level="debug")
    get_logger("icsflow.daemon").debug("sweep_started", batch=3)
    logging.getLogger("apscheduler.scheduler").info("Added job")
    [line] = stream.getvalue().splitlines()
    assert json.loads(line)["event"] == "sweep_started"


def test_urls_keep_their_host_but_never_a_password() -> None:
    from icsflow.workflow.logging import scrub_personal_data

    event = scrub_personal_data(None, "info", {
        "event": "daemon_started", "database": "postgresql://icsflow:hunter2@db.example.org/x",
        "reason": "mailto:someone@example.org refused"})
    assert event["database"] == "postgresql://icsflow:***@db.example.org/x"
    assert event["reason"] == "[address] refused"
