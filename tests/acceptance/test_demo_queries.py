"""On the demo's database: find a case by its reference, list what was overdue on a past day,
and check the shipped definitions against the versions the demo's cases use."""

from __future__ import annotations

import csv
import io
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import forked_cli
import pytest

from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.labels import Labels

pytestmark = pytest.mark.slow


def icsflow(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return forked_cli.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def demo(demo_year: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A copy of the folder `icsflow demo` ran in (once per run: conftest's demo_year)."""
    copy = demo_year.copy_to(tmp_path_factory.mktemp("demo"))
    return copy.folder, copy.db


def test_show_finds_a_case_by_its_reference(demo: tuple[Path, str]) -> None:
    where, db = demo
    shown = icsflow(where, "--db", db, "show", "ALERT-03")
    assert shown.returncode == 0, shown.stderr
    assert "ref ALERT-03" in shown.stdout.splitlines()[0]
    assert "history:" in shown.stdout
    missing = icsflow(where, "--db", db, "show", "ALERT-99")
    assert missing.returncode == 1 and "ALERT-99" in missing.stderr


def test_list_overdue_as_at_a_past_day_as_csv(demo: tuple[Path, str]) -> None:
    where, db = demo
    done = icsflow(where, "--db", db, "list", "--overdue", "--as-at", "2012-01-10",
                   "--format", "csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert rows, "the demo's year has deadlines overdue on 10 January 2012"
    dues = [date.fromisoformat(r["due"]) for r in rows]
    assert dues == sorted(dues) and all(d < date(2012, 1, 10) for d in dues)  # worst first
    calendar = WorkingCalendar()
    labels = Labels.load()
    shown: dict[str, str] = {}  # each case shown once, however many of its deadlines are late
    for row, due in zip(rows, dues, strict=True):
        assert int(row["working_days_overdue"]) == \
            calendar.working_days_between(due, date(2012, 1, 10)) > 0
        assert row["closed"] == "false" and row["deadline"]
        # The same deadline, with the same due day, is on the case as stored.
        if row["id"] not in shown:
            shown[row["id"]] = icsflow(where, "--db", db, "show", row["id"]).stdout
        # (show reads the deadline's label, issue 28; the CSV keeps its name)
        label = labels.of(row["definition"], "deadline", row["deadline"])
        assert f"{label:<36} {row['due']}" in shown[row["id"]]
    # Cases started after 10 January 2012 are not there at all.
    later = icsflow(where, "--db", db, "list", "--as-at", "2012-01-10", "--format", "csv")
    now = icsflow(where, "--db", db, "list", "--format", "csv")
    assert len(later.stdout.splitlines()) < len(now.stdout.splitlines())


def test_validate_against_the_demo_database(demo: tuple[Path, str], tmp_path: Path) -> None:
    where, db = demo
    done = icsflow(where, "--db", db, "validate")
    assert done.returncode == 0, done.stderr
    assert "none changed since first used" in done.stdout
    shipped = Path(__file__).resolve().parents[2] / "definitions" / "builtin"
    changed = tmp_path / "defs"
    changed.mkdir()
    for f in shipped.glob("*.yaml"):
        (changed / f.name).write_text(f.read_text())
    alert = changed / "alert_dispute.yaml"
    alert.write_text(alert.read_text() + "\n# edited after cases started\n")
    done = icsflow(where, "--db", db, "validate", str(changed))
    assert done.returncode == 1
    first = done.stderr.splitlines()[0]
    import re

    v = int(re.search(r"^version: (\d+)$", alert.read_text(), re.M).group(1))  # type: ignore[union-attr]
    assert f"alert_dispute v{v} changed since first used: bump version to {v + 1} (" in first
    assert first.endswith(f" on v{v})")
