"""The report as one self-contained HTML page: a chart and its table per section.

No network: the styles are inline, the charts are inline SVG (no script), the fonts are the
reader's own. Each chart has an accessible name and is followed by a table of the same numbers
(with a caption and header cells), so a screen reader and a printed copy lose nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

from icsflow.workflow.allocation import BAND as HANDBOOK_BAND
from icsflow.workflow.labels import Labels
from icsflow.workflow.reports import charts
from icsflow.workflow.reports.figures import ORDINALS
from icsflow.workflow.reports.period import month_ends
from icsflow.workflow.reports.report import Report
from icsflow.workflow.reports.sections import (
    SECTION_TITLES,
    SECTIONS,
    breakdown_label,
    figure_rows,
    label,
)

HANDBOOK_BAND_LOW = HANDBOOK_BAND[0]

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #111; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.25rem; border-bottom: 2px solid #0072B2; padding-bottom: .2rem;
     margin-top: 2.5rem; }
h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
p.meta { color: #444; margin-top: 0; }
figure { margin: 1rem 0; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: .9rem; color: #333; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .92rem; }
caption { text-align: left; font-weight: 600; padding-bottom: .3rem; white-space: nowrap; }
th, td { border: 1px solid #bbb; padding: .25rem .6rem; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
thead th { background: #eef3f8; }
nav ul { padding-left: 1.2rem; }
@media print {
  body { margin: 0; max-width: none; font-size: 10.5pt; }
  nav { display: none; }
  section { break-inside: avoid-page; }
  figure, table { break-inside: avoid; }
  h2 { break-after: avoid; }
}
"""


def _table(caption: str, headers: Sequence[str], rows: Sequence[Sequence[Any]],
           numeric_from: int = 1) -> str:
    head = "".join(f'<th scope="col"{" class=n" if i >= numeric_from else ""}>{escape(h)}</th>'
                   for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = [f'<th scope="row">{escape(str(row[0]))}</th>']
        cells += [f'<td class="n">{escape(_text(v))}</td>' for v in row[1:]]
        body.append(f"<tr>{''.join(cells)}</tr>")
    if not rows:
        body.append(f'<tr><td colspan="{len(headers)}">None</td></tr>')
    return (f"<table><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def _alerts(data: dict[str, Any], report: Report, labels: Labels) -> str:
    a = data["alerts"]
    stages = a["highest_stage"]
    names = {"alert": "Alert only", "stage1": "Stage 1", "stage2": "Stage 2",
             "stage3": "Stage 3"}
    svg = charts.bars("alerts", "Bar chart: Alerts raised in the period by the highest stage "
                      "they reached", [names[s] for s in stages],
                      [("Alerts", list(stages.values()), charts.BLUE)], "Alerts")
    return (_figure(svg, "Alerts raised in the period, by the highest stage reached")
            + _table("Alerts by highest stage reached", ["Highest stage", "Alerts"],
                     [(names[s], n) for s, n in stages.items()]))


def _reviews(data: dict[str, Any], report: Report, labels: Labels) -> str:
    w = report.window
    held = Counter(i.on.strftime("%Y-%m") for i in report.items("lac_reviews.held"))
    timely = Counter(i.on.strftime("%Y-%m") for i in report.items("lac_reviews.in_timescale"))
    months = [m.strftime("%Y-%m") for m in month_ends(w.start, w.end)]
    months = [m for m in months if m <= w.counted_to.strftime("%Y-%m")]
    svg = charts.bars("reviews", "Bar chart: looked-after reviews held and held in timescale, "
                      "by month", months,
                      [("Held", [held[m] for m in months], charts.BLUE),
                       ("In timescale", [timely[m] for m in months], charts.GREEN)], "Reviews")
    rows = [(m, held[m], timely[m], round(100 * timely[m] / held[m], 1) if held[m] else None)
            for m in months]
    lac = data["lac_reviews"]
    ordinal_rows = [(label(o), lac[o]["held"], lac[o]["in_timescale"],
                     lac[o]["percent_in_timescale"]) for o in ORDINALS]
    return (_figure(svg, "Looked-after reviews held, and held in timescale, by month")
            + _table("Reviews in timescale by month", ["Month", "Held", "In timescale", "%"],
                     rows)
            + _table("Reviews by ordinal", ["Review", "Held", "In timescale", "%"],
                     ordinal_rows)
            + _table("Minutes of reviews", ["Minutes", "Due", "On time"],
                     [("The IRO's decisions", lac["decisions_due"], lac["decisions_on_time"]),
                      ("The full record", lac["record_due"], lac["record_on_time"])])
            + _table("Participation (SSDA903 codes)", ["Participation", "Reviews"],
                     [(breakdown_label("lac_reviews", "participation", code, labels), n)
                      for code, n in lac["participation"].items()]))


def _conferences(data: dict[str, Any], report: Report, labels: Labels) -> str:
    c = data["cp_conferences"]
    cats = ["Initial conferences", "Review conferences", "Minutes"]
    svg = charts.bars("conferences", "Bar chart: child protection conferences held and held in "
                      "timescale, and minutes due and on time", cats,
                      [("Held / due", [c["initial_held"], c["review_held"], c["minutes_due"]],
                        charts.BLUE),
                       ("In timescale / on time", [c["initial_in_timescale"],
                                                   c["review_in_timescale"],
                                                   c["minutes_on_time"]], charts.GREEN)],
                      "Conferences")
    rows = [("Initial conferences", c["initial_held"], c["initial_in_timescale"]),
            ("Review conferences", c["review_held"], c["review_in_timescale"]),
            ("Minutes", c["minutes_due"], c["minutes_on_time"])]
    return (_figure(svg, "Conferences held in timescale and minutes on time")
            + _table("Conferences and minutes",
                     ["Measure", "Held or due", "In timescale or on time"], rows))


def _dual(data: dict[str, Any], report: Report, labels: Labels) -> str:
    d = data["dual_status"]
    months = list(d["month_end"])
    svg = charts.line("dual", "Line chart: children dual status at the end of each month",
                      months, list(d["month_end"].values()), "Children")
    return (_figure(svg, "Children dual status at each month end")
            + _table("Dual status at month end", ["Month", "Children"],
                     list(d["month_end"].items())))


def _caseloads(data: dict[str, Any], report: Report, labels: Labels) -> str:
    c = data["caseloads"]
    band = int(c.get("band") or 70)
    chairs = list(c["chairs"])
    svg = charts.caseload_bars("caseloads", "Bar chart: children allocated to each chair at the "
                               f"as-at date against the {min(HANDBOOK_BAND_LOW, band)}-{band} "
                               "band", chairs, list(c["chairs"].values()),
                               (min(HANDBOOK_BAND_LOW, band), band))
    rows = [(ch, n, "yes" if ch in c["above_band"] else "no") for ch, n in c["chairs"].items()]
    return (_figure(svg, f"Children per chair against the band (top {band})")
            + _table("Caseloads at the as-at date", ["Chair", "Children", "Above band"], rows))


_SECTION_BODY: dict[str, Callable[[dict[str, Any], Report, Labels], str]] = {
    "alerts": _alerts, "lac_reviews": _reviews, "cp_conferences": _conferences,
    "dual_status": _dual, "caseloads": _caseloads}


def to_html(report: Report, labels: Labels | None = None) -> str:
    """The page; breakdowns in the processes' labels (the shipped ones unless given)."""
    labels = labels if labels is not None else Labels.load()
    data = report.to_json()
    title = (f"Independent Chair Service report {data['period']['from']} to "
             f"{data['period']['to']}")
    meta = f"Figures as at {data['as_at']}"
    if data.get("known_at"):
        meta += f", as known at {data['known_at']}"
    rows_by_section: dict[str, list[tuple[str, str, str, Any]]] = {}
    for row in figure_rows(data):
        rows_by_section.setdefault(row[0], []).append(row)
    parts = [f'<!DOCTYPE html><html lang="en-GB"><head><meta charset="utf-8">'
             f'<meta name="viewport" content="width=device-width, initial-scale=1">'
             f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
             f"<header><h1>{escape(title)}</h1><p class=meta>{escape(meta)}</p></header>",
             "<nav aria-label=Sections><ul>"
             + "".join(f'<li><a href="#{s}">{escape(SECTION_TITLES[s])}</a></li>'
                       for s in SECTIONS) + "</ul></nav><main>"]
    for s in SECTIONS:
        figures = [(label(m) + (f": {breakdown_label(s, m, b, labels)}" if b else ""), v)
                   for _, m, b, v in rows_by_section[s]]
        parts.append(f'<section id="{s}" aria-labelledby="{s}-h"><h2 id="{s}-h">'
                     f"{escape(SECTION_TITLES[s])}</h2>{_SECTION_BODY[s](data, report, labels)}"
                     f"<h3>All figures</h3>"
                     + _table(f"{SECTION_TITLES[s]}: every figure", ["Figure", "Value"], figures)
                     + "</section>")
    parts.append("</main></body></html>\n")
    return "".join(parts)


__all__ = ["to_html"]
