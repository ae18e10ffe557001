"""The report: load the cases (two queries), compute the figures, shape the JSON contract.

The contract is DESIGN section 5 (``report --json``): keys are added, never renamed. Every count
in it is ``len`` of a list of cases in ``Figures``, which ``--list PATH`` prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine as SqlEngine

from icsflow.workflow.reports.events import load_cases
from icsflow.workflow.reports.figures import (
    DEADLINES,
    DEFAULT_BAND,
    DEFINITIONS,
    ORDINALS,
    OUTCOMES,
    PN_CODES,
    STAGES,
    Figures,
    Item,
    compute,
)
from icsflow.workflow.reports.period import Window


@dataclass(frozen=True)
class Report:
    """The figures of one window, with the JSON contract and the drill-down lists."""

    window: Window
    figures: Figures

    def to_json(self) -> dict[str, Any]:
        return to_contract(self.window, self.figures)

    def paths(self) -> list[str]:
        """Every figure that can be listed (``--list``)."""
        return sorted(self.figures.cases)

    def items(self, path: str) -> list[Item]:
        """The cases behind one figure; ``KeyError`` names the known paths near it."""
        if path not in self.figures.cases:
            raise KeyError(path)
        return list(self.figures.cases[path])


def build_report(sql: SqlEngine, window: Window, *, band: int = DEFAULT_BAND,
                 final_states: Mapping[str, frozenset[str]] | None = None) -> Report:
    """The report for ``window`` from the database behind ``sql``."""
    cases = load_cases(sql, window, DEFINITIONS, DEADLINES)
    return Report(window, compute(window, cases, band=band, finals=final_states))


def final_states(definitions: Iterable[Any]) -> dict[str, frozenset[str]]:
    """Each definition name's final states over all its loaded versions."""
    finals: dict[str, set[str]] = {}
    for d in definitions:
        finals.setdefault(d.name, set()).update(s.name for s in d.states if s.final)
    return {k: frozenset(v) for k, v in finals.items()}


def _counts(f: Figures, prefix: str, keys: Iterable[str] | None = None) -> dict[str, int]:
    """``{key: count}`` for the paths under ``prefix`` (fixed keys first, in order)."""
    found = {p[len(prefix) + 1:]: len(v) for p, v in f.cases.items()
             if p.startswith(prefix + ".")}
    ordered = {k: found.pop(k, 0) for k in (keys or ())}
    return {**ordered, **dict(sorted(found.items()))}


def to_contract(w: Window, f: Figures) -> dict[str, Any]:
    """The DESIGN section 5 shape (plus added keys: ``late``, ``band``, ``known_at``...)."""
    c = f.count
    lac: dict[str, Any] = {
        "held": c("lac_reviews.held"), "in_timescale": c("lac_reviews.in_timescale"),
        "percent_in_timescale": f.values["lac_reviews.percent_in_timescale"],
        "late": c("lac_reviews.late")}
    for o in ORDINALS:
        lac[o] = {"held": c(f"lac_reviews.{o}.held"),
                  "in_timescale": c(f"lac_reviews.{o}.in_timescale"),
                  "percent_in_timescale": f.values[f"lac_reviews.{o}.percent_in_timescale"]}
    lac.update({
        "requests": c("lac_reviews.requests"), "late_requests": c("lac_reviews.late_requests"),
        "median_lead_time_working_days": f.values["lac_reviews.median_lead_time_working_days"],
        "participation": _counts(f, "lac_reviews.participation", PN_CODES),
        **{k: c(f"lac_reviews.{k}") for k in ("decisions_due", "decisions_on_time",
                                               "record_due", "record_on_time", "missed")}})
    chairs = _counts(f, "caseloads.chairs")
    return {
        "period": {"from": w.start.isoformat(), "to": w.end.isoformat()},
        "as_at": w.as_at.isoformat(),
        "known_at": w.known_at.isoformat() if w.known_at else None,
        "alerts": {
            "raised": c("alerts.raised"),
            "raised_previous_year": c("alerts.raised_previous_year"),
            "by_category": _counts(f, "alerts.by_category"),
            "responded_in_time": c("alerts.responded_in_time"),
            "responded_late": c("alerts.responded_late"),
            "highest_stage": _counts(f, "alerts.highest_stage", STAGES),
            "outcome": _counts(f, "alerts.outcome", (*OUTCOMES, "open")),
        },
        "lac_reviews": lac,
        "cp_conferences": {k: c(f"cp_conferences.{k}") for k in (
            "initial_held", "initial_in_timescale", "review_held", "review_in_timescale",
            "minutes_due", "minutes_on_time", "missed")},
        "dual_status": {
            "month_end": dict(f.values["dual_status.month_end"]),
            "at_as_at": c("dual_status.at_as_at"),
            "three_months_or_more_at_as_at": c("dual_status.three_months_or_more_at_as_at"),
            "ended": _counts(f, "dual_status.ended"),
        },
        "caseloads": {"chairs": chairs, "above_band": list(f.values["caseloads.above_band"]),
                      "band": f.values["caseloads.band"]},
    }


__all__ = ["Report", "build_report", "final_states", "to_contract"]
