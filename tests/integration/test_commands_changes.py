"""``commands.migrate`` and ``commands.reproject``: the changes to running cases as commands over
a configuration (issue 24's command layer), which ``icsflow migrate`` and ``icsflow calendar
reproject`` call; the CLI's own tests cover their printing."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from icsflow.definitions.registry import builtin_dir
from icsflow.workflow import Actor, FakeClock, commands
from icsflow.workflow.commands import Mode
from icsflow.workflow.config import Config, load_config


@pytest.fixture
def config_and_versions(tmp_path: Path) -> tuple[Config, int]:
    text = (builtin_dir() / "alert_dispute.yaml").read_text(encoding="utf-8")
    found = re.search(r"^version: (\d+)$", text, re.M)
    assert found
    old = int(found.group(1))
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "alert_dispute.yaml").write_text(text, encoding="utf-8")
    (defs / "alert_dispute_next.yaml").write_text(
        text.replace(f"version: {old}", f"version: {old + 1}", 1)
        .replace("after: 10 working days", "after: 5 working days"), encoding="utf-8")
    config = load_config(None, env={}, overrides={
        "database_url": ("--db", f"sqlite:///{tmp_path / 'changes.db'}"),
        "definitions_dir": ("--definitions", str(defs))})
    engine = commands.open_engine(config, mode=Mode.CREATE,
                                  clock=FakeClock(datetime(2012, 3, 19, 10, tzinfo=UTC)))
    try:
        engine.start("alert_dispute", ref="ALERT-1", actor=Actor("iro-1", "iro"),
                     version=old, data={"team_manager_email": "tm@example.org",
                                        "concern": "Plan drift", "iro_email": "iro@example.org"})
    finally:
        engine.close()
    return config, old


def test_migrate_plans_then_moves_the_open_cases(config_and_versions: tuple[Config, int],
                                                 ) -> None:
    config, old = config_and_versions
    now = datetime(2012, 3, 20, 18, tzinfo=UTC)
    dry = commands.migrate(config, "alert_dispute", old + 1, dry_run=True,
                           now=now)
    assert dry.dry_run and [c.ref for c in dry.cases] == ["ALERT-1"]
    assert [c.outcome for c in dry.cases] == ["planned"]
    done = commands.migrate(config, "alert_dispute", old + 1, now=now,
                            actor=Actor("manager", "system"))
    assert not done.dry_run and [(c.ref, c.outcome) for c in done.cases] == \
        [("ALERT-1", "migrated")]
    again = commands.migrate(config, "alert_dispute", old + 1, now=now)
    assert again.cases == []  # nothing left on the old version


def test_reproject_moves_nothing_when_the_calendar_did_not_change(
        config_and_versions: tuple[Config, int]) -> None:
    config, _ = config_and_versions
    plan = commands.reproject(config, dry_run=True,
                              now=datetime(2012, 3, 20, 18, tzinfo=UTC))
    assert plan.dry_run and plan.shifts == []
