"""``icsflow reconcile DIR --format ssda903`` / ``FILE.xml --format cin-census``: where a return
and icsflow disagree, changing nothing.

For each child of the return, its periods of care (or enquiries and plans) are matched with
icsflow's cases as the import matches them (a period by its start, an enquiry by its Section 47
start, a continuing plan by its start), and listed:

``missing_in_icsflow``  the return has a period, plan, conference or review icsflow lacks
``missing_in_return``   icsflow has one the return lacks (inside the years the return covers)
``different_code``      a review held on the same day with another PN code
``different_date``      a meeting each holds on a different day (paired in date order)
``open_in_return`` / ``open_in_icsflow``  a period or plan open in one, closed in the other
``different_end``       both closed, on different days
``unusable``            a row of the return icsflow cannot read (its FILE:LINE and reason)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from icsflow.workflow.engine import Engine
from icsflow.workflow.transfer.returns.cp import match_enquiry, match_plan
from icsflow.workflow.transfer.returns.held import Held, HeldConference, HeldPeriod, read_held
from icsflow.workflow.transfer.returns.lac import compare_reviews, match_period
from icsflow.workflow.transfer.returns.records import (
    CinChild,
    CinReturn,
    LacChild,
    Period,
    Plan,
    Ssda903Return,
)

KINDS = ("unusable", "missing_in_icsflow", "missing_in_return", "different_code",
         "different_date", "open_in_return", "open_in_icsflow", "different_end")


@dataclass(frozen=True)
class ReturnDifference:
    """One disagreement: what (a period, plan, conference, review), each side's value."""

    kind: str
    child: str
    what: str
    in_return: str
    in_icsflow: str
    where: str = ""
    case: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "child": self.child, "what": self.what,
                "return": self.in_return, "icsflow": self.in_icsflow, "where": self.where,
                "case": self.case}


def _d(day: date | None) -> str:
    return day.isoformat() if day else "open"


def _overlaps(start: date, end: date | None, window: tuple[date, date] | None) -> bool:
    return window is None or (start <= window[1] and (end is None or end >= window[0]))


def reconcile_returns(engine: Engine, ret: Ssda903Return | CinReturn,
                      ) -> list[ReturnDifference]:
    """Every difference between the return and icsflow."""
    found = [ReturnDifference("unusable", p.child or "", p.message, "", "",
                              f"{p.source}:{p.line}") for p in ret.problems]
    held = read_held(engine, ret.children)
    for _child, record in sorted(ret.children.items()):
        if isinstance(record, LacChild) and isinstance(ret, Ssda903Return):
            found += _lac(record, held, ret.review_years)
        elif isinstance(record, CinChild) and isinstance(ret, CinReturn):
            found += _cin(record, held, ret.year)
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(found, key=lambda d: (d.child, order[d.kind], d.what))


def _lac(record: LacChild, held: Held, window: tuple[date, date] | None,
         ) -> list[ReturnDifference]:
    child = record.child
    cases = held.periods.get(child, [])
    found: list[ReturnDifference] = []
    matched: set[str] = set()
    for period in record.periods:
        case = match_period(period, cases)
        what = f"period of care from {period.start.isoformat()}"
        if case is None:
            found.append(ReturnDifference("missing_in_icsflow", child, what,
                                          f"{_d(period.start)} to {_d(period.end)}", "",
                                          str(period.episodes[0].where)))
            continue
        matched.add(case.id)
        found += _period(child, period, case, window)
    for case in cases:
        if case.id not in matched and _overlaps(case.start, case.end, window):
            found.append(ReturnDifference("missing_in_return", child,
                                          f"period of care from {case.start.isoformat()}", "",
                                          f"{_d(case.start)} to {_d(case.end)}", "", case.ref))
    return found


def _period(child: str, period: Period, case: HeldPeriod,
            window: tuple[date, date] | None) -> list[ReturnDifference]:
    found: list[ReturnDifference] = []
    compared = compare_reviews(period.reviews, case.reviews, window)
    for review in compared.new:
        found.append(ReturnDifference("missing_in_icsflow", child, "review",
                                      f"{review.held_on.isoformat()} {review.code}", "",
                                      str(review.where), case.ref))
    for review, code in compared.code_changed:
        found.append(ReturnDifference("different_code", child,
                                      f"review {review.held_on.isoformat()}", review.code,
                                      code or "", str(review.where), case.ref))
    for review, day in compared.date_changed:
        found.append(ReturnDifference("different_date", child, "review",
                                      review.held_on.isoformat(), day.isoformat(),
                                      str(review.where), case.ref))
    for day, code in compared.only_icsflow:
        if day >= period.start and (period.end is None or day <= period.end):
            found.append(ReturnDifference("missing_in_return", child, "review", "",
                                          f"{day.isoformat()} {code or ''}".strip(), "",
                                          case.ref))
    found += _ends(child, f"period of care from {period.start.isoformat()}", period.end,
                   case.end, str(period.last.where), case.ref)
    return found


def _ends(child: str, what: str, theirs: date | None, ours: date | None, where: str,
          ref: str) -> list[ReturnDifference]:
    if theirs == ours:
        return []
    kind = ("open_in_return" if theirs is None else "open_in_icsflow" if ours is None
            else "different_end")
    return [ReturnDifference(kind, child, what, _d(theirs), _d(ours), where, ref)]


def _cin(record: CinChild, held: Held, window: tuple[date, date] | None,
         ) -> list[ReturnDifference]:
    child = record.child
    cases = held.conferences.get(child, [])
    found: list[ReturnDifference] = []
    matched: set[str] = set()
    for enquiry in record.enquiries:
        if enquiry.not_required:
            continue
        case = match_enquiry(enquiry, cases)
        what = f"enquiry from {enquiry.start.isoformat()}"
        if case is None:
            found.append(ReturnDifference("missing_in_icsflow", child, what,
                                          enquiry.start.isoformat(), "", str(enquiry.where)))
            continue
        matched.add(case.id)
        if enquiry.icpc != case.icpc:
            kind = ("missing_in_icsflow" if case.icpc is None else "missing_in_return"
                    if enquiry.icpc is None else "different_date")
            found.append(ReturnDifference(kind, child, f"initial conference ({what})",
                                          _d(enquiry.icpc).replace("open", ""),
                                          _d(case.icpc).replace("open", ""),
                                          str(enquiry.where), case.ref))
    for plan in record.plans:
        case = match_plan(plan, cases)
        if case is None or case.plan_start is None:
            found.append(ReturnDifference("missing_in_icsflow", child,
                                          f"plan from {plan.start.isoformat()}",
                                          f"{_d(plan.start)} to {_d(plan.end)}", "",
                                          str(plan.where)))
            continue
        matched.add(case.id)
        found += _plan(child, plan, case, window)
    for case in cases:
        if case.id not in matched and (window is None or case.enquiry_in(*window)
                                       or case.plan_in(*window)):
            found.append(ReturnDifference("missing_in_return", child,
                                          f"enquiry from {case.enquiry.isoformat()}", "",
                                          case.enquiry.isoformat(), "", case.ref))
    return found


def _plan(child: str, plan: Plan, case: HeldConference,
          window: tuple[date, date] | None) -> list[ReturnDifference]:
    theirs = {r.held_on: r for r in plan.reviews}
    ours = [d for d in case.reviews if window is None or window[0] <= d <= window[1]]
    found = [ReturnDifference("missing_in_icsflow", child, "review conference",
                              day.isoformat(), "", str(r.where), case.ref)
             for day, r in sorted(theirs.items()) if day not in case.reviews]
    found += [ReturnDifference("missing_in_return", child, "review conference", "",
                               day.isoformat(), "", case.ref) for day in ours
              if day not in theirs]
    return found + _ends(child, f"plan from {plan.start.isoformat()}", plan.end,
                         case.plan_end, str(plan.where), case.ref)


def render_table(differences: Sequence[ReturnDifference]) -> str:
    """The text table, one aligned line per difference."""
    if not differences:
        return "no differences"
    rows = [("KIND", "CHILD", "WHAT", "RETURN", "ICSFLOW", "CASE", "WHERE")]
    rows += [(d.kind, d.child, d.what, d.in_return or "-", d.in_icsflow or "-",
              d.case or "-", d.where or "-") for d in differences]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    return "\n".join(lines) + f"\n{len(differences)} difference(s)"


def to_json(source: str, differences: Sequence[ReturnDifference]) -> str:
    return json.dumps({"file": source, "differences": [d.to_json() for d in differences]},
                      indent=2)


__all__ = ["ReturnDifference", "reconcile_returns", "render_table", "to_json", "KINDS"]
