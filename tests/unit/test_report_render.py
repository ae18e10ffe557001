"""The report's formats: tidy CSV rows, the plain table, the drill-down list."""

from __future__ import annotations

import csv
import io
from datetime import date

from icsflow.workflow.reports.figures import Item, compute
from icsflow.workflow.reports.period import Window
from icsflow.workflow.reports.render import list_items, render
from icsflow.workflow.reports.report import Report

WINDOW = Window.resolve(start=None, end=None, as_at=date(2011, 12, 31), known_at=None,
                        today=date(2011, 12, 31))


def empty_report() -> Report:
    return Report(WINDOW, compute(WINDOW, {}))


def test_an_empty_year_has_every_contract_key_with_zeros() -> None:
    data = empty_report().to_json()
    assert data["alerts"]["highest_stage"] == {"alert": 0, "stage1": 0, "stage2": 0,
                                               "stage3": 0}
    assert data["lac_reviews"]["percent_in_timescale"] is None
    assert data["lac_reviews"]["participation"] == {f"PN{i}": 0 for i in range(8)}
    assert list(data["dual_status"]["month_end"]) == [
        "2011-04", "2011-05", "2011-06", "2011-07", "2011-08", "2011-09", "2011-10",
        "2011-11", "2011-12"]
    assert data["caseloads"] == {"chairs": {}, "above_band": [], "band": 70}


def test_csv_is_one_row_per_figure_with_section_measure_breakdown_value() -> None:
    rows = list(csv.DictReader(io.StringIO(render(empty_report(), "csv"))))
    assert set(rows[0]) == {"section", "measure", "breakdown", "value"}
    got = {(r["section"], r["measure"], r["breakdown"]): r["value"] for r in rows}
    assert got[("report", "as_at", "")] == "2011-12-31"
    assert got[("lac_reviews", "held", "initial")] == "0"
    assert got[("dual_status", "month_end", "2011-09")] == "0"
    assert len(got) == len(rows)  # no figure twice


def test_the_table_names_every_section() -> None:
    text = render(empty_report(), "table")
    for title in ("IRO Alerts", "Looked-after reviews", "Child protection conferences",
                  "Dual status", "caseloads"):
        assert title in text


def test_list_prints_one_line_per_case() -> None:
    report = empty_report()
    report.figures.put("alerts.raised", [Item("id-1", "A1", "C1", date(2011, 5, 10))])
    assert list_items(report, "alerts.raised").splitlines() == [
        "alerts.raised: 1", "  2011-05-10  A1               child C1           id-1"]
