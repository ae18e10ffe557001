"""The weekly allocation list: reviews waiting for an IRO, and each IRO's caseload.

Pure: built from open cases and a date, for the allocation meeting (report: "weekly allocation
meetings"). Each waiting case carries its review due date, working days left, whether the
placement is out of county and the IROs who already know the family (continuity: report,
"previously been the allocated IRO for other children in the same family"); each IRO's open
caseload is shown against the IRO Handbook's band of 50-70 children.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.context import days_left
from icsflow.workflow.instance import Instance

BAND = (50, 70)  # IRO Handbook 2010: 50-70 children per IRO


@dataclass(frozen=True)
class AllocationRow:
    instance_id: str
    ref: str
    child: str | None
    family: str | None
    requested_on: str | None
    review_due: date | None
    working_days_left: int | None
    out_of_county: bool
    family_iros: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"instance_id": self.instance_id, "ref": self.ref, "child": self.child,
                "family": self.family, "requested_on": self.requested_on,
                "review_due": self.review_due.isoformat() if self.review_due else None,
                "working_days_left": self.working_days_left,
                "out_of_county": self.out_of_county, "family_iros": list(self.family_iros)}


@dataclass(frozen=True)
class AllocationList:
    today: date
    rows: tuple[AllocationRow, ...]
    caseloads: dict[str, int]
    band: tuple[int, int] = BAND

    @property
    def above_band(self) -> list[str]:
        return sorted(i for i, n in self.caseloads.items() if n > self.band[1])

    def to_json(self) -> dict[str, Any]:
        return {"as_of": self.today.isoformat(), "band": list(self.band),
                "waiting": [r.to_json() for r in self.rows],
                "caseloads": dict(sorted(self.caseloads.items())),
                "above_band": self.above_band}

    def text(self) -> str:
        lines = [f"Reviews waiting for IRO allocation ({self.today.isoformat()}): "
                 f"{len(self.rows)}"]
        for r in self.rows:
            due = r.review_due.isoformat() if r.review_due else "-"
            knows = ", ".join(r.family_iros) or "-"
            lines.append(f"  {r.ref:<14} review due {due} ({r.working_days_left} working days)"
                         f"{'  out of county' if r.out_of_county else ''}  family IRO: {knows}")
        lines.append(f"IRO caseloads (band {self.band[0]}-{self.band[1]}):")
        for iro, n in sorted(self.caseloads.items()):
            flag = " ABOVE BAND" if n > self.band[1] else (" below band" if n < self.band[0]
                                                          else "")
            lines.append(f"  {iro:<20} {n}{flag}")
        return "\n".join(lines)


def allocation_list(cases: Sequence[Instance], today: date, calendar: WorkingCalendar, *,
                    definition: str = "initial_review", waiting_state: str = "awaiting_allocation",
                    iro_field: str = "iro_id", band: tuple[int, int] = BAND) -> AllocationList:
    """``cases``: the open cases (any definition); waiting ones are ``definition`` cases in
    ``waiting_state``, soonest review first; caseloads count open ``definition`` cases per IRO."""
    open_cases = [c for c in cases if not c.closed]
    caseloads = Counter(str(c.data[iro_field]) for c in open_cases
                        if c.definition == definition and c.data.get(iro_field))
    by_family: dict[str, set[str]] = {}
    for c in open_cases:
        if c.family and c.data.get(iro_field):
            by_family.setdefault(c.family, set()).add(str(c.data[iro_field]))
    rows = []
    for c in open_cases:
        if c.definition != definition or c.state != waiting_state:
            continue
        due = c.deadlines.get("review_due")
        rows.append(AllocationRow(
            c.id, c.ref, c.child, c.family, c.data.get("requested_on"), due,
            days_left(calendar, today, due) if due else None, bool(c.data.get("out_of_county")),
            tuple(sorted(by_family.get(c.family or "", set())))))
    rows.sort(key=lambda r: (r.review_due or date.max, r.ref))
    return AllocationList(today, tuple(rows), dict(caseloads), band)


__all__ = ["AllocationList", "AllocationRow", "BAND", "allocation_list"]
