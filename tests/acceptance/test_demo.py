"""`icsflow demo` on a fresh folder: the README's first command."""

from __future__ import annotations

import email
import subprocess
import sys
from email import policy
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def test_demo_replays_the_year_and_writes_emails_a_person_can_open(demo_run: Any) -> None:
    # demo_run: `icsflow demo` in a fresh folder (once per run: conftest's demo_year) and a
    # copy of that folder here.
    tmp_path: Path = demo_run.folder
    out = demo_run.stdout
    assert "28 cases of 12 children in the service's 2011-12 year" in out
    # Dual status is not typed in: it starts and ends by itself from the children's processes,
    # and is withdrawn by itself when the case that made it was opened in error.
    assert ("Dual status started by itself for 4 of 5 children, and ended by itself for 3 "
            "(closed_in_error, single_plan_cp, single_plan_lac)") in out
    assert "left_care 1" in out and "cp_transfer_in  plan 1" in out
    assert "Cases by state:" in out and "alert_dispute" in out and "dual_status" in out
    assert "Scripted events the engine refused" not in out
    # The closing figures are the report's, and its page is written beside the database.
    assert "The year's report (icsflow report, as at 2012-03-31):" in out
    page = tmp_path / "icsflow-demo" / "report.html"
    assert page.exists() and page.read_text(encoding="utf-8").count("<svg ") == 5
    mails = sorted((tmp_path / "icsflow-demo" / "mail" / "new").iterdir())
    assert len(mails) > 40
    delivered = [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in mails]
    subjects = [m["Subject"] for m in delivered]
    assert any("the IRO is asked to decide" in s for s in subjects)  # escalation is the IRO's
    assert all(m["Message-ID"].startswith("<outbox-") for m in delivered)
    # Dated in the replayed year, as a person would have received them.
    years = {m["Date"].datetime.year for m in delivered}
    assert years <= {2011, 2012}
    body = delivered[0].get_content()
    assert "Independent Chair Service" in body
    # The summary's commands work on what the demo left.
    db = f"sqlite:///{tmp_path / 'icsflow-demo' / 'icsflow.db'}"
    listed = subprocess.run(
        [sys.executable, "-c", "from icsflow.workflow.cli import main; main()", "--db", db, "list"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert listed.returncode == 0, listed.stderr
    assert "ALERT-01" in listed.stdout
