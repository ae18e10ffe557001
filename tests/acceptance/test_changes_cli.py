"""Issue 14's "done means", on the demo database through the installed CLI.

``icsflow migrate alert_dispute --to-version 2 --dry-run`` lists each open Alert with its old and
new response_due, and without ``--dry-run`` the cases are on v2 with history saying so; a closure
day added to the configuration, then ``icsflow calendar reproject --dry-run``, lists exactly the
open deadlines it moves, with old and new dates.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import date, datetime
from pathlib import Path
from typing import Any

import forked_cli
import pytest

from icsflow.definitions.registry import builtin_dir
from icsflow.workflow import WorkingCalendar
from icsflow.workflow.clock import LONDON

# Over 10 s: issue 14's walk-through is some twenty commands, each a fresh `icsflow` process.
pytestmark = pytest.mark.slow
# The shipped alert_dispute's version (the demo's Alerts run on it) and the manager's edit.
OLD = int(re.search(r"^version: (\d+)$", (builtin_dir() / "alert_dispute.yaml").read_text(),
                    re.M).group(1))  # type: ignore[union-attr]
NEW = OLD + 1
NOW = "2012-03-27T18:00"  # the moment of the moves: after the new Alerts, before the closure


def run(cwd: Path, *args: str, env: dict[str, str], ok: bool = True,
        ) -> subprocess.CompletedProcess[str]:
    done = forked_cli.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    if ok:
        assert done.returncode == 0, f"icsflow {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def demo(demo_year: Any, tmp_path_factory: pytest.TempPathFactory,
         ) -> tuple[Path, dict[str, str]]:
    """A copy of the folder `icsflow demo` ran in (once per run: conftest's demo_year)."""
    folder = demo_year.copy_to(tmp_path_factory.mktemp("changes")).folder
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICSFLOW_")}
    defs = folder / "defs"
    defs.mkdir()
    text = (builtin_dir() / "alert_dispute.yaml").read_text(encoding="utf-8")
    (defs / f"alert_dispute_v{NEW}.yaml").write_text(
        text.replace(f"version: {OLD}", f"version: {NEW}", 1)
        .replace("after: 10 working days", "after: 5 working days"), encoding="utf-8")
    env.update(ICSFLOW_DB=f"sqlite:///{folder / 'icsflow-demo' / 'icsflow.db'}",
               ICSFLOW_DEFINITIONS=str(defs))
    return folder, env


def _open_alerts(folder: Path, env: dict[str, str]) -> list[dict]:  # type: ignore[type-arg]
    out = run(folder, "list", "--definition", "alert_dispute", "--open", "--json", env=env)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_migrate_the_demo_alerts_to_version_2_then_reproject_a_closure(demo) -> None:  # noqa: ANN001
    folder, env = demo
    cal = WorkingCalendar()
    # The demo's open Alert has moved past its response; two more wait for one.
    starts = {"ALERT-NEW-1": date(2012, 3, 19), "ALERT-NEW-2": date(2012, 3, 26)}
    for ref, day in starts.items():
        run(folder, "start", "alert_dispute", "--ref", ref, "--actor", "iro-1", "--role", "iro",
            "--set", "team_manager_email=tm@example.org", "--set", "concern=Plan drift",
            "--set", "iro_email=iro@example.org",
            "--at", f"{day.isoformat()}T10:00", "--version", str(OLD), env=env)
    diff = run(folder, "diff", "alert_dispute", env=env).stdout
    assert "response_due: " in diff and "10 working days after entry -> " in diff
    assert diff.rstrip().endswith("5 working days after entry")

    open_alerts = _open_alerts(folder, env)
    assert len(open_alerts) >= 3 and all(a["version"] == OLD for a in open_alerts)
    # When the moves happen: the demo year's end, not today (by today every deadline of 2012
    # is long past due, breached by time alone, and does not move).
    dry = run(folder, "migrate", "alert_dispute", "--to-version", str(NEW), "--dry-run",
              "--now", NOW, env=env)
    for alert in open_alerts:
        assert alert["ref"] in dry.stdout and alert["id"] in dry.stdout
    for ref, day in starts.items():
        block = dry.stdout.split(ref, 1)[1].split("\n\n")[0]
        old, new = cal.add_working_days(day, 10), cal.add_working_days(day, 5)
        assert f"response_due: {old.isoformat()} -> {new.isoformat()}" in block.splitlines()[1]
    assert all(a["version"] == OLD for a in _open_alerts(folder, env))  # nothing written

    as_json = json.loads(run(folder, "migrate", "alert_dispute", "--to-version", str(NEW),
                             "--dry-run", "--json", "--now", NOW, env=env).stdout)
    assert {c["ref"] for c in as_json["cases"]} == {a["ref"] for a in open_alerts}

    done = run(folder, "migrate", "alert_dispute", "--to-version", str(NEW), "--now", NOW,
               env=env)
    assert f"Migrated {len(open_alerts)} of {len(open_alerts)}" in done.stdout
    shown_all = [json.loads(run(folder, "show", a["id"], "--json", env=env).stdout)
                 for a in _open_alerts(folder, env)]
    for alert, shown in zip(_open_alerts(folder, env), shown_all, strict=True):
        assert shown["version"] == NEW
        last = shown["history"][-1]
        assert last["event"] == "migrated"
        assert (last["changes"]["from_version"], last["changes"]["to_version"]) == (OLD, NEW)
        if alert["ref"] in starts:
            new = cal.add_working_days(starts[alert["ref"]], 5)
            assert shown["deadlines"]["response_due"] == new.isoformat()
            [detail] = [d for d in shown["deadline_details"] if d["name"] == "response_due"]
            assert detail["explain"]["duration"] == "5 working days after"
            assert detail["explain"]["reprojections"][0]["new"] == new.isoformat()

    # A closure day: exactly the open deadlines whose windows contain it move.
    closure = date(2012, 3, 28)
    config = folder / "icsflow.yaml"
    config.write_text(f"calendar:\n  closures:\n    - {{date: {closure.isoformat()}, "
                      f"name: Staff training day}}\n", encoding="utf-8")
    env_closed = {**env, "ICSFLOW_CONFIG": str(config)}
    closed = WorkingCalendar(closures={closure: "Staff training day"})
    expected = set()
    for alert, shown in zip(_open_alerts(folder, env), shown_all, strict=True):
        for d in shown["deadline_details"]:
            if d["status"] != "live":
                continue
            anchor = datetime.fromisoformat(d["explain"]["anchor"]["at"]).astimezone(
                LONDON).date()
            n = int(d["explain"]["duration"].split()[0])
            if anchor < closure <= date.fromisoformat(d["due"]):
                expected.add((alert["ref"], d["name"], d["due"],
                              closed.add_working_days(anchor, n).isoformat()))
    assert expected  # ALERT-NEW-2's response window (2012-03-26 + 5) contains the closure
    dry = run(folder, "calendar", "reproject", "--dry-run", "--now", NOW, env=env_closed).stdout
    listed = {tuple(line.split()[i] for i in (0, 2, 3, 5)) for line in dry.splitlines()[1:]
              if " -> " in line and not line.startswith("ref ")}
    assert listed == expected
    assert "2012-03-28 Staff training day added" in dry
    moved = run(folder, "calendar", "reproject", "--now", NOW, env=env_closed).stdout
    assert f"Moved {len(expected)} open deadline" in moved
    again = run(folder, "calendar", "reproject", "--dry-run", "--now", NOW, env=env_closed).stdout
    assert again.startswith("Dry run: 0 open deadlines")
