"""The service's own report: figures as at any date, as known at any moment.

``build_report(sql, window)`` reads history in two queries and returns a ``Report`` whose
``to_json()`` is the DESIGN section 5 contract; ``render`` turns it into a table, CSV or a
self-contained HTML page with charts.
"""

from __future__ import annotations

from icsflow.workflow.reports.period import Window, financial_year
from icsflow.workflow.reports.render import FORMATS, render
from icsflow.workflow.reports.report import Report, build_report, final_states

__all__ = ["FORMATS", "Report", "Window", "build_report", "final_states", "financial_year",
           "render"]
