"""Reconcile lists exactly the planted disagreements between a return and icsflow; the export
commands refuse what they cannot do honestly (no DOB, no year) and name why."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from conftest import SMALL_EPISODES, SMALL_HEADER, SMALL_REVIEWS, write_903

from icsflow.workflow import Engine
from icsflow.workflow.cli import cli
from icsflow.workflow.transfer.returns.importing import import_returns, read_return
from icsflow.workflow.transfer.returns.reconcile import reconcile_returns

BENCH = Path(__file__).resolve().parents[2] / "bench" / "returns.py"


def test_reconcile_lists_a_missing_review_a_different_code_and_an_open_closed_period(
        tmp_path: Path, small_903: Path, engine: Engine) -> None:
    assert import_returns(engine, [("ssda903", small_903)]).ok
    other = write_903(tmp_path / "other", SMALL_HEADER,
                      SMALL_EPISODES.replace("14/01/2013,E4A", ","),  # still looked after
                      SMALL_REVIEWS.replace("20/07/2012,PN3", "20/07/2012,PN5")
                      .replace("1001,01/06/2005,10/01/2013,PN4\n", "")
                      + "1002,01/02/2011,20/08/2012,PN0\n")
    found = {(d.kind, d.child, d.what, d.in_return, d.in_icsflow)
             for d in reconcile_returns(engine, read_return("ssda903", other))}
    assert found == {
        ("different_code", "1001", "review 2012-07-20", "PN5", "PN3"),
        ("missing_in_return", "1001", "review", "", "2013-01-10 PN4"),
        ("open_in_return", "1001", "period of care from 2012-04-02", "open", "2013-01-14"),
        ("missing_in_icsflow", "1002", "review", "2012-08-20 PN0", ""),
    }


def test_reconcile_prints_a_table_and_json(tmp_path: Path, small_903: Path) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", db, "import", str(small_903), "--format", "ssda903",
                               "--until", "2013-04-05"]).exit_code == 0
    table = runner.invoke(cli, ["--db", db, "reconcile", str(small_903), "--format", "ssda903"])
    assert table.exit_code == 0 and table.stdout.strip() == "no differences"
    as_json = runner.invoke(cli, ["--db", db, "reconcile", str(small_903), "--format",
                                  "ssda903", "--json"])
    assert json.loads(as_json.stdout) == {"file": str(small_903), "differences": []}


def test_the_903_export_refuses_children_without_a_dob_naming_them(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    runner = CliRunner()
    for child, held in (("1001", "2012-05-14"), ("1002", "2012-06-11")):
        started = runner.invoke(cli, [
            "--db", db, "start", "initial_review", "--ref", f"R-{child}", "--child", child,
            "--actor", "sw-1", "--role", "social_worker", "--at", "2012-04-16",
            "--set", "looked_after_on=2012-04-16", "--set", "team_manager_email=tm@c.example",
            "--json"])
        assert started.exit_code == 0, started.output
        case = json.loads(started.stdout)["id"]
        assert runner.invoke(cli, ["--db", db, "fire", case, "record_review", "--actor",
                                   "iro-1", "--role", "iro", "--at", held, "--set",
                                   f"held_on={held}", "--set", "participation=PN1"]
                             ).exit_code == 0
    done = runner.invoke(cli, ["--db", db, "export", str(tmp_path / "out"), "--format",
                               "ssda903", "--year", "2012-13"])
    assert done.exit_code == 1
    assert "no date of birth for 2 child(ren) with reviews in 2012-13 (first: 1001, 1002)" \
        in done.stderr
    assert not (tmp_path / "out" / "reviews.csv").exists()


def test_the_903_export_reads_the_dob_an_import_stored(tmp_path: Path,
                                                       small_903: Path) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", db, "import", str(small_903), "--format", "ssda903",
                               "--until", "2013-04-05"]).exit_code == 0
    done = runner.invoke(cli, ["--db", db, "export", str(tmp_path / "out"), "--format",
                               "ssda903", "--year", "2012-13"])
    assert done.exit_code == 0, done.output
    rows = (tmp_path / "out" / "reviews.csv").read_text().splitlines()
    assert "1002,01/02/2011,29/05/2012,PN0" in rows


def test_a_return_export_needs_a_collection_year(tmp_path: Path) -> None:
    done = CliRunner().invoke(cli, ["--db", f"sqlite:///{tmp_path / 'r.db'}", "export",
                                    str(tmp_path / "x.xml"), "--format", "cin-census"])
    assert done.exit_code == 2 and "needs --year" in done.stderr
    bad = CliRunner().invoke(cli, ["--db", f"sqlite:///{tmp_path / 'r.db'}", "export",
                                   str(tmp_path / "x.xml"), "--format", "cin-census",
                                   "--year", "2012-14"])
    assert bad.exit_code == 2 and "not a collection year like 2012-13" in bad.stderr


def test_the_returns_bench_runs_a_tiny_county_on_both_paths() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--lac", "8", "--cin", "4", "--only",
                           "sqlite"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    for path in ("returns", "canonical"):
        assert re.search(rf"^SQLite +{path} +[\d,]+ +[\d.]+ +\d+", done.stdout, re.M), done.stdout
