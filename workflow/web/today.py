"""The *Today* view: deadlines overdue or due in the next few working days, worst first.

One query joins open cases with their counting deadline rows due by the horizon (the partial
index on ``deadlines.due_at WHERE met_at IS NULL`` serves it), so the page costs what is due,
not every case and its history. A counting deadline is the one ``Instance.deadline_list``
calls ``active``: live, or breached and not yet met.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import cast

from sqlalchemy import Engine as SqlEngine
from sqlalchemy import Table, select

from icsflow.storage.tables import DeadlineRow, InstanceRow
from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.context import days_left
from icsflow.workflow.csv_cells import safe_row
from icsflow.workflow.instance import JsonValue

I = cast(Table, InstanceRow.__table__)  # noqa: E741
D = cast(Table, DeadlineRow.__table__)

HORIZON_WORKING_DAYS = 5
CHAIR_FIELDS = ("iro_id", "cpc_id", "chair", "iro_email")
TEAM_FIELDS = ("team", "team_id", "team_manager_email")
FILTERS = ("process", "team", "chair", "state")
CSV_COLUMNS = ("case", "ref", "child", "process", "state", "deadline", "due",
               "working_days", "overdue", "team", "chair")


def _first(data: Mapping[str, object], names: Iterable[str]) -> str:
    for n in names:
        value = data.get(n)
        if value not in (None, ""):
            return str(value)
    return ""


@dataclass(frozen=True)
class DueRow:
    """One counting deadline of one open case."""

    case: str
    ref: str
    child: str
    process: str
    state: str
    deadline: str
    due: date
    working_days: int  # negative: working days overdue
    team: str
    chair: str

    @property
    def overdue(self) -> bool:
        return self.working_days < 0

    @property
    def days_overdue(self) -> int:
        return max(-self.working_days, 0)

    def to_json(self) -> dict[str, JsonValue]:
        return {"case": self.case, "ref": self.ref, "child": self.child or None,
                "process": self.process, "state": self.state, "deadline": self.deadline,
                "due": self.due.isoformat(), "working_days": self.working_days,
                "working_days_overdue": self.days_overdue, "overdue": self.overdue,
                "team": self.team or None, "chair": self.chair or None}


@dataclass(frozen=True)
class TodayView:
    today: date
    horizon: date
    rows: tuple[DueRow, ...]
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def overdue(self) -> int:
        return sum(1 for r in self.rows if r.overdue)

    @property
    def due_soon(self) -> int:
        return sum(1 for r in self.rows if not r.overdue)

    def by_process(self) -> list[tuple[str, int, int]]:
        late = Counter(r.process for r in self.rows if r.overdue)
        soon = Counter(r.process for r in self.rows if not r.overdue)
        return [(p, late[p], soon[p]) for p in sorted(set(late) | set(soon))]

    def to_json(self) -> dict[str, JsonValue]:
        return {"today": self.today.isoformat(), "horizon": self.horizon.isoformat(),
                "overdue": self.overdue, "due_soon": self.due_soon,
                "deadlines": [r.to_json() for r in self.rows]}

    def csv_text(self) -> str:
        """The rows as CSV for a spreadsheet: cells that would run as formulas are neutralised
        (``workflow/csv_cells.py``)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in self.rows:
            writer.writerow(safe_row([r.case, r.ref, r.child, r.process, r.state, r.deadline,
                                      r.due.isoformat(), r.working_days,
                                      str(r.overdue).lower(), r.team, r.chair]))
        return buffer.getvalue()

    def only(self, rows: Iterable[DueRow]) -> TodayView:
        """The view of some of its rows (those a user may read), the filter choices drawn
        from them alone (a choice must not name another team's child's chair)."""
        kept = tuple(rows)
        return TodayView(self.today, self.horizon, kept, _choices(kept))

    def filtered(self, filters: Mapping[str, str | None] | None) -> TodayView:
        """The rows matching every given filter (exact matches; empty means any); the
        choices stay those of the whole view, so another value can be picked."""
        wanted = {k: v for k, v in (filters or {}).items() if k in FILTERS and v}
        rows = tuple(r for r in self.rows if all(getattr(r, k) == v for k, v in wanted.items()))
        return TodayView(self.today, self.horizon, rows, self.choices)


def _choices(rows: Sequence[DueRow]) -> dict[str, tuple[str, ...]]:
    return {
        "process": tuple(sorted({r.process for r in rows})),
        "team": tuple(sorted({r.team for r in rows if r.team})),
        "chair": tuple(sorted({r.chair for r in rows if r.chair})),
        "state": tuple(sorted({r.state for r in rows})),
    }


def today_view(sql: SqlEngine, now: datetime, calendar: WorkingCalendar,
               filters: Mapping[str, str | None] | None = None,
               horizon_days: int = HORIZON_WORKING_DAYS) -> TodayView:
    """Overdue and due-within-``horizon_days`` deadlines of open cases, worst first, filtered by
    process, team, chair and state (exact matches; empty means any)."""
    today = calendar.local_date(now)
    horizon = calendar.add_working_days(today, horizon_days)
    # A date deadline's breach instant is the midnight after its due date.
    limit = datetime.combine(horizon + timedelta(days=1), time(0), calendar.tz).astimezone(UTC)
    stmt = (select(I.c.id, I.c.ref, I.c.child, I.c.definition, I.c.state, I.c.data,
                   D.c.name, D.c.due_date)
            .join(D, D.c.instance_id == I.c.id)
            .where(I.c.closed_at.is_(None), D.c.met_at.is_(None),
                   D.c.status.in_(("live", "breached")), D.c.due_at <= limit))
    with sql.connect() as conn:
        found = conn.execute(stmt).all()
    rows = []
    for r in found:
        data = r.data or {}
        rows.append(DueRow(r.id, r.ref, r.child or "", r.definition, r.state, r.name,
                           r.due_date, days_left(calendar, today, r.due_date),
                           _first(data, TEAM_FIELDS), _first(data, CHAIR_FIELDS)))
    rows.sort(key=lambda r: (r.working_days, r.due, r.ref, r.deadline))
    return TodayView(today, horizon, tuple(rows), _choices(rows)).filtered(filters)


def filtered_query(filters: Mapping[str, str | None]) -> Sequence[tuple[str, str]]:
    """The filters as query parameters (for the CSV link of the same view)."""
    return [(k, v) for k, v in filters.items() if k in FILTERS and v]


__all__ = ["DueRow", "TodayView", "today_view", "filtered_query", "HORIZON_WORKING_DAYS"]
