"""The report as the terminal table, tidy CSV, the JSON contract, or a self-contained page."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

from icsflow.workflow.csv_cells import safe_row
from icsflow.workflow.labels import Labels
from icsflow.workflow.reports.figures import ORDINALS
from icsflow.workflow.reports.html import to_html
from icsflow.workflow.reports.report import Report
from icsflow.workflow.reports.sections import (
    SECTION_TITLES,
    SECTIONS,
    breakdown_label,
    figure_rows,
    label,
)

FORMATS = ("table", "json", "csv", "html")

def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "measure", "breakdown", "value"])
    for section, measure, breakdown, value in figure_rows(report.to_json()):
        writer.writerow(safe_row([section, measure, breakdown,
                                  "" if value is None else value]))
    return out.getvalue()


def to_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2) + "\n"


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def to_table(report: Report, labels: Labels | None = None) -> str:
    """Plain text that reads like the annual report's own tables, breakdowns in the
    processes' labels (``labels``: the shipped processes' unless given)."""
    labels = labels if labels is not None else Labels.load()
    data = report.to_json()
    lines = [f"Independent Chair Service report {data['period']['from']} to "
             f"{data['period']['to']}, as at {data['as_at']}"
             + (f" (as known at {data['known_at']})" if data.get("known_at") else "")]
    for section in SECTIONS:
        lines += ["", SECTION_TITLES[section], "-" * len(SECTION_TITLES[section])]
        for measure, value in data[section].items():
            if measure in ORDINALS and isinstance(value, dict):
                lines.append(f"  {label(measure) + ' reviews':<36} held {value['held']:>5}   "
                             f"in timescale {value['in_timescale']:>5}   "
                             f"{_fmt(value['percent_in_timescale']):>5} %")
            elif isinstance(value, dict):
                lines.append(f"  {label(measure)}")
                if not value:
                    lines.append("    (none)")
                lines += [f"    {breakdown_label(section, measure, k, labels):<34} "
                          f"{_fmt(v):>6}" for k, v in value.items()]
            elif isinstance(value, list):
                lines.append(f"  {label(measure):<36} {', '.join(value) or '(none)'}")
            else:
                lines.append(f"  {label(measure):<36} {_fmt(value):>6}")
    return "\n".join(lines) + "\n"


def list_items(report: Report, path: str) -> str:
    """The cases behind one figure, one line each, oldest first (``report --list PATH``)."""
    items = sorted(report.items(path), key=lambda i: (i.on, i.ref))
    lines = [f"{path}: {len(items)}"]
    lines += [f"  {i.on.isoformat()}  {i.ref:<16} child {i.child or '-':<12} {i.case_id}"
              + (f"  {i.detail}" if i.detail else "") for i in items]
    return "\n".join(lines) + "\n"


_RENDERERS: dict[str, Callable[[Report], str]] = {"json": to_json, "csv": to_csv}


def render(report: Report, fmt: str, labels: Labels | None = None) -> str:
    """The report in ``fmt`` (one of ``FORMATS``); the table and the page show ``labels``
    (the shipped processes' unless given), JSON and CSV keep the names."""
    if fmt == "table":
        return to_table(report, labels)
    if fmt == "html":
        return to_html(report, labels)
    return _RENDERERS[fmt](report)


__all__ = ["FORMATS", "SECTIONS", "SECTION_TITLES", "figure_rows", "list_items", "render"]
