"""`icsflow demo` on a fresh folder: the README's first command."""

from __future__ import annotations

import email
import html
import re
import shlex
import sys
from email import policy
from pathlib import Path
from typing import Any

import forked_cli
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
            "(Closed: opened in error, One plan: child protection, One plan: looked after)"
            ) in out  # states as a person reads them (issue 28)
    assert "Left care at 18 1" in out
    assert "Child protection transfer-in conferences: Child protection plan 1" in out
    assert "Cases by state:" in out and "IRO Alert and dispute resolution: " in out
    assert "Scripted events the engine refused" not in out
    # The closing figures are the report's, and its page is written beside the database.
    assert "The year's report (icsflow report, as at 2012-03-31):" in out
    page = tmp_path / "icsflow-demo" / "report.html"
    assert page.exists() and page.read_text(encoding="utf-8").count("<svg ") == 5
    mails = sorted((tmp_path / "icsflow-demo" / "mail" / "new").iterdir())
    assert len(mails) > 40
    delivered = [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in mails]
    subjects = [m["Subject"] for m in delivered]
    assert any("the Chair is asked to decide" in s for s in subjects)  # escalating is theirs
    assert all(m["Message-ID"].startswith("<outbox-") for m in delivered)
    # Dated in the replayed year, as a person would have received them.
    years = {m["Date"].datetime.year for m in delivered}
    assert years <= {2011, 2012}
    body = delivered[0].get_content()
    assert "Independent Chair Service" in body
    # The summary's commands work on what the demo left.
    db = f"sqlite:///{tmp_path / 'icsflow-demo' / 'icsflow.db'}"
    listed = forked_cli.run(["--db", db, "list"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "ALERT-01" in listed.stdout


SNAKE = re.compile(r"\b[a-z][a-z0-9]*_[a-z0-9_]+\b")  # review_due, stage1_responded


def _visible_text(page: str) -> str:
    """What a reader of the page sees: the text outside tags, styles and attributes."""
    page = re.sub(r"<style>.*?</style>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_every_email_of_the_demo_says_what_to_do_in_labels_and_links_to_its_case(
        demo_run: Any) -> None:
    """Issue 28, item 5: each email names its case by reference, links to its page (the demo
    sets web.base_url to the address its serve hint prints), has a subject on one line, and
    shows no identifier (the commands an administrator's notice gives are the exception)."""
    mails = sorted((demo_run.folder / "icsflow-demo" / "mail" / "new").iterdir())
    assert len(mails) > 100
    for path in mails:
        raw = path.read_bytes()
        header = raw.split(b"\n\n", 1)[0]
        assert re.search(rb"^Subject: \S", header, re.M), path  # starts on its own line
        assert not re.search(rb"^Subject:.*\n[ \t]", header, re.M), path  # and is not folded
        message = email.message_from_bytes(raw, policy=policy.default)
        body = message.get_content()
        ref = message["X-Icsflow-Ref"]
        template = message["X-Icsflow-Template"]
        if ref:
            assert f"Case {ref}" in message["Subject"], (template, message["Subject"])
            assert "http://127.0.0.1:8080/cases/" in body, template
        else:  # the weekly allocation email links to the page it summarises
            assert "http://127.0.0.1:8080/allocation" in body, template
        if template not in ("admin_alert", "allocation_list"):
            assert "Asked of" in body and "Contact:" in body, template
        shown = "\n".join(line for line in (str(message["Subject"]) + "\n" + body).splitlines()
                          if not line.startswith("    icsflow "))
        assert not SNAKE.findall(shown), (template, SNAKE.findall(shown))
        # One paragraph a line: no sentence is broken across lines.
        for line in body.splitlines():
            assert not re.match(r"^[a-z(]", line), (template, line)


def test_the_demo_report_page_shows_no_identifier(demo_run: Any) -> None:
    page = (demo_run.folder / "icsflow-demo" / "report.html").read_text(encoding="utf-8")
    text = _visible_text(page)
    assert "Referred to Cafcass" in text and "Stage 1: service manager" in text
    assert not SNAKE.findall(text), sorted(set(SNAKE.findall(text)))


def test_every_hint_the_demo_prints_runs_on_the_demo_year(demo_run: Any) -> None:
    """Issue 28, item 7: each "look further" hint carries the demo year's --as-at/--now, so
    that run as printed it shows that year (the issue saw a 2011 case "3,783 working days
    over" and a report of zeros for today's year)."""
    out = demo_run.stdout
    hints = [line.strip() for line in out[out.index("Look further"):].splitlines()[1:]
             if line.strip().startswith("icsflow ")]
    assert len(hints) >= 7 and any("serve --now 2012-03-30T17:00" in h for h in hints)
    for hint in hints:
        if " serve " in hint:
            continue
        args = shlex.split(hint.split("#", 1)[0])[1:]
        if "--db" in args:  # the demo's database, copied into this test's folder
            args[args.index("--db") + 1] = demo_run.db
        done = forked_cli.run(args, cwd=demo_run.folder, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, (hint, done.stderr)
        shown = done.stdout
        spans = [int(n) for n in re.findall(r"(\d+) working days? (?:over|left)", shown)]
        spans += [int(n) for n in re.findall(r" \((\d+)\)$", shown, re.M)]
        assert all(n < 300 for n in spans), (hint, sorted(spans)[-3:])
        if " report " in f" {' '.join(args)} " and "--list" not in args:
            assert "2011-04-01 to 2012-03-31" in shown and re.search(r"Raised +7\n", shown)
    assert any("--as-at 2012-03-31" in h for h in hints)
    assert any("--now 2012-03-30T17:00" in h and " child " in h for h in hints)


def test_the_hints_are_spelled_as_the_demo_was_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the README's install, ``.venv/bin/icsflow demo`` prints hints that paste as they
    are; ``icsflow`` on PATH stays ``icsflow``."""
    from icsflow.workflow.cli import demo

    monkeypatch.setattr(sys, "argv", [".venv/bin/icsflow", "demo"])
    monkeypatch.setenv("PATH", "/nonexistent")
    assert demo.command_name() == ".venv/bin/icsflow"
    monkeypatch.setattr(sys, "argv", ["-c", "demo"])
    assert demo.command_name() == "icsflow"
