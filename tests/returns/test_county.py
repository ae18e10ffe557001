"""A generated county's returns (four years of 903 and CIN census) imported: icsflow's report
for 2012-13 equals the figures computed here from the files alone; the exports give back the
year's reviews and child protection module exactly and pass the DfE's rules; reconcile finds
nothing; and the canonical CSV and the Python API give the same report."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import validators
from click.testing import CliRunner
from conftest import NOW, open_engine

from icsflow.workflow import Actor, Engine, WorkingCalendar
from icsflow.workflow.cli import cli
from icsflow.workflow.transfer.returns.generate import County
from icsflow.workflow.transfer.returns.held import read_held
from icsflow.workflow.transfer.returns.importing import derive, import_returns, read_return

YEAR = (date(2012, 4, 1), date(2013, 3, 31))
CAL = WorkingCalendar()


# -- the figures, from the files alone ---------------------------------------------------

def _dmy(text: str) -> date:
    return datetime.strptime(text, "%d/%m/%Y").date()


def _months(day: date, n: int) -> date:
    """n calendar months later, clipped to the month's end, back to a working day."""
    y, m = divmod(day.year * 12 + day.month - 1 + n, 12)
    for d in range(day.day, 27, -1):
        try:
            due = date(y, m + 1, d)
            break
        except ValueError:
            continue
    else:
        due = date(y, m + 1, day.day)
    while not CAL.is_working_day(due):
        due -= timedelta(days=1)
    return due


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def lac_periods(folder: Path) -> dict[str, list[tuple[date, date | None, bool, list[Any]]]]:
    """Per child: (start, end, short breaks, [(review day, code)]) of each period of care."""
    episodes: dict[tuple[str, date], dict[str, str]] = {}
    for row in _rows(folder / "episodes.csv"):
        key = (row["CHILD"], _dmy(row["DECOM"]))
        if key not in episodes or row["DEC"]:
            episodes[key] = row
    periods: dict[str, list[Any]] = {}
    for (child, decom), row in sorted(episodes.items()):
        mine = periods.setdefault(child, [])
        if row["RNE"] == "S":
            mine.append([decom, None, True, []])
        mine[-1][2] = mine[-1][2] and row["LS"] in ("V3", "V4")
        if row["DEC"] and row["REC"] != "X1":
            mine[-1][1] = _dmy(row["DEC"])
    for row in _rows(folder / "reviews.csv"):
        held = _dmy(row["REVIEW"])
        for p in periods[row["CHILD"]]:
            if p[0] <= held and (p[1] is None or held <= p[1]) and \
                    (held, row["REVIEW_CODE"]) not in p[3]:
                p[3].append((held, row["REVIEW_CODE"]))
    return {c: [(p[0], p[1], p[2], sorted(p[3])) for p in ps] for c, ps in periods.items()}


def cin_plans(censuses: list[Path]) -> tuple[dict[tuple[str, date], date], dict[Any, Any]]:
    """Enquiries with a conference {(child, S47 start): ICPC} and plans {(child, start):
    (end, [reviews])}, over every year's census."""
    conferences: dict[tuple[str, date], date] = {}
    plans: dict[tuple[str, date], list[Any]] = {}
    for path in censuses:
        for child in ET.parse(path).getroot().iter("Child"):
            who = child.findtext("ChildIdentifiers/LAchildID") or ""
            for s47 in child.iter("Section47"):
                if s47.findtext("DateOfInitialCPC"):
                    conferences[(who, date.fromisoformat(s47.findtext("S47ActualStartDate")
                                                         or ""))] = date.fromisoformat(
                        s47.findtext("DateOfInitialCPC") or "")
            for cpp in child.iter("ChildProtectionPlans"):
                key = (who, date.fromisoformat(cpp.findtext("CPPstartDate") or ""))
                plan = plans.setdefault(key, [None, set()])
                end = cpp.findtext("CPPendDate")
                plan[0] = date.fromisoformat(end) if end else plan[0]
                plan[1] |= {date.fromisoformat(r.text or "") for r in cpp.iter("CPPreviewDate")}
    return conferences, {k: (v[0], sorted(v[1])) for k, v in plans.items()}


def expected_figures(county: County) -> dict[str, Any]:
    first, last = YEAR
    lac: dict[str, Any] = {"held": 0, "in_timescale": 0, "participation": Counter()}
    for name in ("initial", "second", "subsequent"):
        lac[name] = {"held": 0, "in_timescale": 0}
    for periods in lac_periods(county.ssda903).values():
        for start, _end, _short, reviews in periods:
            due = CAL.add_working_days(start, 20)
            for n, (held, code) in enumerate(reviews, start=1):
                if first <= held <= last:
                    name = ("initial", "second", "subsequent")[min(n, 3) - 1]
                    ok = held <= due
                    for bucket in (lac, lac[name]):
                        bucket["held"] += 1
                        bucket["in_timescale"] += ok
                    lac["participation"][code] += 1
                due = _months(held, 3 if n == 1 else 6)
    conferences, plans = cin_plans(county.censuses)
    cp = Counter()
    for (_child, s47), icpc in conferences.items():
        if first <= icpc <= last:
            cp["initial_held"] += 1
            cp["initial_in_timescale"] += icpc <= CAL.add_working_days(s47, 15)
    for (_child, start), (_end, reviews) in plans.items():
        due = _months(start, 3)
        for held in reviews:
            if first <= held <= last:
                cp["review_held"] += 1
                cp["review_in_timescale"] += held <= due
            due = _months(held, 6)
    dual = {}
    lac_spans = {c: [(s, e) for s, e, _sb, _r in ps] for c, ps in
                 lac_periods(county.ssda903).items()}
    month = first
    while month <= last:
        end = (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        dual[end.strftime("%Y-%m")] = sum(
            1 for child in lac_spans if any(
                max(s, ps) <= end and min(e or date.max, pe or date.max) > end
                for s, e in lac_spans[child]
                for (c, ps), (pe, _r) in plans.items() if c == child))
        month = end + timedelta(days=1)
    return {"lac": lac, "cp": dict(cp), "dual": dual}


# -- icsflow ------------------------------------------------------------------------------

def report(db: Path) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{db}", "report", "--from",
                                      "2012-04-01", "--to", "2013-03-31", "--as-at",
                                      "2013-03-31", "--json"])
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def sources(county: County) -> list[tuple[str, str | Path]]:
    return [("ssda903", county.ssda903), *(("cin-census", p) for p in county.censuses)]


# A generated county's four years, imported and exported: built once, on one worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("returns_county")]


@pytest.fixture(scope="module")
def imported(county: County, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("imported")
    engine = open_engine(folder)
    try:
        result = import_returns(engine, sources(county))
        assert result.ok, result.imported.problems[:5]
        assert result.skipped_children == [] and result.rejected == []
    finally:
        engine.close()
    yield folder / "icsflow.db"


def test_the_years_figures_equal_those_computed_from_the_files(county: County,
                                                               imported: Path) -> None:
    want = expected_figures(county)
    got = report(imported)
    lac = got["lac_reviews"]
    assert (lac["held"], lac["in_timescale"]) == (want["lac"]["held"],
                                                  want["lac"]["in_timescale"])
    for name in ("initial", "second", "subsequent"):
        assert (lac[name]["held"], lac[name]["in_timescale"]) == (
            want["lac"][name]["held"], want["lac"][name]["in_timescale"]), name
    assert {k: v for k, v in lac["participation"].items() if v} == dict(
        want["lac"]["participation"])
    cp = got["cp_conferences"]
    assert {k: cp[k] for k in want["cp"]} == want["cp"]
    assert got["dual_status"]["month_end"] == want["dual"]
    # the county is big enough to mean something
    assert lac["held"] > 20 and cp["initial_held"] > 3 and max(want["dual"].values()) > 0
    assert lac["held"] > lac["in_timescale"] and cp["initial_held"] > cp["initial_in_timescale"]


def test_the_903_export_gives_back_the_years_reviews_and_passes_the_dfe_rules(
        county: County, imported: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{imported}", "export", str(out),
                                      "--format", "ssda903", "--year", "2012-13", "--header",
                                      str(county.ssda903 / "header.csv")])
    assert result.exit_code == 0, result.output
    first, last = YEAR
    given = sorted((r["CHILD"], r["DOB"], r["REVIEW"], r["REVIEW_CODE"])
                   for r in _rows(county.ssda903 / "reviews.csv")
                   if first <= _dmy(r["REVIEW"]) <= last)
    exported = [tuple(r.values()) for r in _rows(out / "reviews.csv")]
    assert sorted(exported) == given and len(given) > 20
    verdict = validators.run_903([county.ssda903 / "header.csv",
                                  county.ssda903 / "episodes.csv", out / "reviews.csv"],
                                 "2012-13")
    assert verdict.failing() == {} and verdict.failed == []
    assert set(verdict.ran) == set(validators.RULES_903)


def _module(path: Path) -> tuple[set[Any], set[Any]]:
    """(Section47 tuples, plan tuples) of a census file, enquiries needing no conference out."""
    s47s, plans = set(), set()
    for child in ET.parse(path).getroot().iter("Child"):
        who = child.findtext("ChildIdentifiers/LAchildID")
        for s in child.iter("Section47"):
            if s.findtext("ICPCnotRequired") != "1":
                s47s.add((who, s.findtext("S47ActualStartDate"), s.findtext("InitialCPCtarget"),
                          s.findtext("DateOfInitialCPC")))
        for p in child.iter("ChildProtectionPlans"):
            plans.add((who, p.findtext("CPPstartDate"), p.findtext("CPPendDate"),
                       tuple(r.text for r in p.iter("CPPreviewDate"))))
    return s47s, plans


def test_the_census_export_gives_back_the_years_module_and_passes_the_dfe_rules(
        county: County, imported: Path, tmp_path: Path) -> None:
    out = tmp_path / "cp.xml"
    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{imported}", "export", str(out),
                                      "--format", "cin-census", "--year", "2012-13"])
    assert result.exit_code == 0, result.output
    assert _module(out) == _module(county.censuses[-1])
    for who, start, target, _icpc in _module(out)[0]:
        due = CAL.add_working_days(date.fromisoformat(start), 15)
        assert target == due.isoformat() and due.weekday() < 5, who
    verdict = validators.run_cin(out)
    assert verdict.failing() == {} and verdict.failed == [] and verdict.unknown == []


def test_after_the_import_reconcile_finds_no_difference(county: County,
                                                        imported: Path) -> None:
    for fmt, path in [("ssda903", county.ssda903), ("cin-census", county.censuses[-1])]:
        result = CliRunner().invoke(cli, ["--db", f"sqlite:///{imported}", "reconcile",
                                          str(path), "--format", fmt, "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["differences"] == [], fmt


def test_the_canonical_csv_and_the_api_give_the_same_report_as_the_returns(
        county: County, imported: Path, tmp_path: Path) -> None:
    canonical = tmp_path / "year.csv"
    runner = CliRunner()
    done = runner.invoke(cli, ["--db", f"sqlite:///{imported}", "export", str(canonical)])
    assert done.exit_code == 0, done.output
    by_csv = open_engine(tmp_path, "csv.db")
    try:
        from icsflow.workflow.transfer import import_file

        assert import_file(by_csv, canonical).ok
    finally:
        by_csv.close()
    by_api = open_engine(tmp_path, "api.db")
    try:
        fire_returns_through_the_api(by_api, county)
    finally:
        by_api.close()
    want = report(imported)
    assert report(tmp_path / "csv.db") == want
    assert report(tmp_path / "api.db") == want


def fire_returns_through_the_api(engine: Engine, county: County) -> None:
    """The same events, each through Engine.start/fire with the timers ticked before it."""
    from icsflow.workflow.transfer.returns.cin_census import merge_censuses

    returns = [read_return("ssda903", county.ssda903),
               merge_censuses([read_return("cin-census", p)  # type: ignore[misc]
                               for p in county.censuses])]
    rows = derive(engine, returns, read_held(engine), contact="returns-import@icsflow.invalid",
                  skip=set()).ordered()
    ids: dict[tuple[str, str], str] = {}
    for row in sorted(rows, key=lambda r: r.at):
        engine.tick(now=row.at)
        actor = Actor(row.actor, row.role)
        if row.event == "start":
            ids[row.case] = engine.start(row.definition, row.ref, dict(row.data), actor,
                                         at=row.at, child=row.child).id
        else:
            engine.fire(ids[row.case], row.event, actor, data=dict(row.data) or None,
                        note=row.note, at=row.at)
    engine.tick(now=NOW)
