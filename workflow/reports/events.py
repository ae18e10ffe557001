"""What the report reads: each case's history as known at a moment, with the data after every
event, in two set-based queries (history joined to its cases; the deadlines the figures need).

Why the data is folded here: a history row keeps only the fields its event *changed* (a review
held in time after another held in time records no new ``within_timescale``), so the value an
event left is the fold of every earlier row of its case, in the order they were recorded.
Events recorded after ``known_at`` are left out before folding: they were not known then.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, cast

from sqlalchemy import Engine as SqlEngine
from sqlalchemy import Table, or_, select

from icsflow.storage.tables import DeadlineRow, HistoryRow, InstanceRow
from icsflow.workflow.reports.period import Window

I = cast(Table, InstanceRow.__table__)  # noqa: E741
H = cast(Table, HistoryRow.__table__)
D = cast(Table, DeadlineRow.__table__)


@dataclass(frozen=True, slots=True)
class Event:
    """One history row of a case, with the case's data as that event left it."""

    seq: int
    event: str
    from_state: str | None
    to_state: str
    at: datetime
    recorded_at: datetime
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DeadlineFact:
    """A deadline row as stored: ``created_at`` equals the ``recorded_at`` of the event that
    made it (one transaction, one timestamp)."""

    name: str
    due: date
    due_at: datetime
    status: str
    created_at: datetime
    met_at: datetime | None = None  # when the event that met (or closed) it happened


@dataclass(frozen=True)
class Case:
    """One case's known events up to the as-at day (recording order), every known event
    (``known``, also those after as-at: deadline rows pair with them) and its deadlines."""

    id: str
    definition: str
    version: int
    ref: str
    child: str | None
    events: tuple[Event, ...]
    deadlines: tuple[DeadlineFact, ...] = ()
    known: tuple[Event, ...] = ()

    @property
    def who(self) -> str:
        """The child the service counts (the case itself when no child was given)."""
        return self.child or f"case {self.ref}"

    def state_at(self) -> str | None:
        return self.events[-1].to_state if self.events else None

    def first(self, event: str) -> Event | None:
        return next((e for e in self.events if e.event == event), None)

    def made_by(self, event: Event, deadline: str, makers: Collection[str]) -> DeadlineFact | None:
        """The ``deadline`` row ``event`` made, when each event named in ``makers`` makes one
        new row: the k-th such event pairs with the k-th row (rows and history are written in
        one transaction, so their orders agree even when a clock stood still)."""
        k = [e.seq for e in self.known if e.event in makers].index(event.seq)
        rows = [d for d in self.deadlines if d.name == deadline]
        return rows[k] if k < len(rows) else None

    def latest(self, deadline: str, recorded_by: datetime) -> DeadlineFact | None:
        """The newest row of ``deadline`` made by ``recorded_by``."""
        rows = [d for d in self.deadlines if d.name == deadline and d.created_at <= recorded_by]
        return rows[-1] if rows else None


def _parse_moment(value: datetime | str) -> datetime:
    from datetime import UTC

    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def load_cases(sql: SqlEngine, window: Window, definitions: Iterable[str],
               deadline_names: Sequence[str] = ()) -> dict[str, list[Case]]:
    """Every case of ``definitions`` started by the as-at day, as known at ``known_at``,
    grouped by definition: one query for history, one for the named deadlines."""
    names = list(definitions)
    child = I.c.child if "child" in I.c else None
    cols: list[Any] = [H.c.instance_id, H.c.id, H.c.event, H.c.from_state, H.c.to_state,
            H.c.happened_at, H.c.recorded_at, H.c.changes, I.c.definition,
            I.c.definition_version, I.c.ref]
    if child is not None:
        cols.append(child.label("child"))
    stmt = (select(*cols).select_from(H.join(I, I.c.id == H.c.instance_id))
            .where(I.c.definition.in_(names)).order_by(H.c.instance_id, H.c.id))
    dstmt = (select(D.c.instance_id, D.c.name, D.c.due_date, D.c.due_at, D.c.status,
                    D.c.created_at, D.c.met_at)
             .select_from(D.join(I, I.c.id == D.c.instance_id))
             .where(I.c.definition.in_(names), D.c.name.in_(list(deadline_names)))
             .order_by(D.c.instance_id, D.c.id))
    # Only cases that matter to the window: started by the as-at day and not closed before
    # the earliest day a figure looks at (so a report reads the years it reports, not all).
    stmt = stmt.where(I.c.started_at < window.cutoff)
    dstmt = dstmt.where(I.c.started_at < window.cutoff)
    if window.known_at is not None:
        stmt = stmt.where(H.c.recorded_at <= window.known_at)
        dstmt = dstmt.where(D.c.created_at <= window.known_at)
    else:  # as known now: a case's closed_at is when it really closed (known-at may not know)
        since = datetime.combine(window.earliest, time(0), tzinfo=window.tz)
        stmt = stmt.where(or_(I.c.closed_at.is_(None), I.c.closed_at >= since))
        dstmt = dstmt.where(or_(I.c.closed_at.is_(None), I.c.closed_at >= since))
    with sql.connect() as conn:
        rows = conn.execute(stmt).all()
        drows = conn.execute(dstmt).all() if deadline_names else []
        conn.rollback()
    deadlines: dict[str, list[DeadlineFact]] = {}
    for r in drows:
        deadlines.setdefault(r.instance_id, []).append(DeadlineFact(
            r.name, r.due_date, _parse_moment(r.due_at), r.status, _parse_moment(r.created_at),
            _parse_moment(r.met_at) if r.met_at is not None else None))
    cutoff = window.cutoff
    grouped: dict[str, list[Case]] = {n: [] for n in names}
    current: str | None = None
    data: dict[str, Any] = {}
    kept: list[Event] = []
    known: list[Event] = []
    head: Any = None

    def close() -> None:
        if head is not None and kept:
            grouped[head.definition].append(Case(
                head.instance_id, head.definition, head.definition_version, head.ref,
                getattr(head, "child", None), tuple(kept),
                tuple(deadlines.get(head.instance_id, ())), tuple(known)))

    for r in rows:
        if r.instance_id != current:
            close()
            current, head, data, kept, known = r.instance_id, r, {}, [], []
        data = {**data, **(r.changes or {})}
        event = Event(r.id, r.event, r.from_state, r.to_state, _parse_moment(r.happened_at),
                      _parse_moment(r.recorded_at), data)
        known.append(event)
        if event.at < cutoff:
            kept.append(event)
    close()
    return grouped


__all__ = ["Case", "DeadlineFact", "Event", "load_cases"]
