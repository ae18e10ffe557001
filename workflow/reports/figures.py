"""The figures, as pure functions of the cases' known events: no SQL, no I/O.

Every count is kept as the list of cases behind it (``Item``), so ``report --list PATH`` can show
a manager exactly which children make a number, and the number is only ever ``len`` of that list.
Paths are the JSON keys joined with dots (``lac_reviews.initial.in_timescale``).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from icsflow.workflow.allocation import BAND as HANDBOOK_BAND
from icsflow.workflow.data import stored_date
from icsflow.workflow.durations import add_months
from icsflow.workflow.reports.events import Case, Event
from icsflow.workflow.reports.period import Window, month_ends

ALERTS = "alert_dispute"
REVIEWS = "initial_review"
CONFERENCES = "cp_conference"
TRANSFERS_IN = "cp_transfer_in"
DUAL = "dual_status"
DEFINITIONS = (ALERTS, REVIEWS, CONFERENCES, TRANSFERS_IN, DUAL)
DEADLINES = ("response_due", "minutes_due", "record_due", "review_due", "icpc_due",
             "review_conference_due", "conference_due")
# A review held: booked and held (``hold``), or recorded after the fact (``record_review``,
# initial_review v3: a recorded past such as the SSDA903 return).
REVIEW_HOLDS = ("hold", "record_review")
# What a meeting's due date is, and the events that hold it: a row of these due in the period
# whose due day passed with no meeting held by then is a missed review or conference.
MEETINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "lac_reviews": {"review_due": REVIEW_HOLDS},
    "cp_conferences": {"icpc_due": ("hold_icpc", "record_icpc"),
                       "review_conference_due": ("hold_review", "record_review_conference"),
                       "conference_due": ("hold_conference",)}}
# Each conference held, by kind, with the flag its definition recorded for "in timescale";
# the ``record_*`` events (cp_conference v3) are conferences recorded after the fact.
CONFERENCE_KINDS = {"hold_icpc": ("initial", "icpc_within_timescale"),
                    "record_icpc": ("initial", "icpc_within_timescale"),
                    "hold_review": ("review", "within_timescale"),
                    "record_review_conference": ("review", "within_timescale"),
                    "hold_conference": ("transfer_in", "transfer_within_timescale")}
# initial_review v2: the IRO's decisions (minutes_due) and the full record (record_due)
REVIEW_MINUTES = {"decisions": ("minutes_due", ("distribute_decisions", "distribute_minutes")),
                  "record": ("record_due", ("distribute_minutes",))}

STAGES = ("alert", "stage1", "stage2", "stage3")
OUTCOMES = ("resolved", "withdrawn", "referred_to_cafcass")
PN_CODES = tuple(f"PN{i}" for i in range(8))
DUAL_ENDINGS = ("single_plan_lac", "single_plan_cp", "closed")
IN_ERROR = "closed_in_error"  # dual_status v3: the case that made the child dual was an error
ORDINALS = ("initial", "second", "subsequent")
# each conference held in icsflow makes one minutes deadline (one recorded after it, none)
HOLDS = ("hold_icpc", "hold_review", "hold_conference")
DEFAULT_BAND = HANDBOOK_BAND[1]  # above 70 children a chair is listed


@dataclass(frozen=True, slots=True)
class Item:
    """One case behind a figure: which case, which child, the day that put it there."""

    case_id: str
    ref: str
    child: str | None
    on: date
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"case": self.case_id, "ref": self.ref, "child": self.child,
                "date": self.on.isoformat(), "detail": self.detail}


@dataclass
class Figures:
    """Counts (as their cases) by path, plus the figures that are not counts."""

    cases: dict[str, list[Item]] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def put(self, path: str, items: Iterable[Item] = ()) -> list[Item]:
        bucket = self.cases.setdefault(path, [])
        bucket.extend(items)
        return bucket

    def count(self, path: str) -> int:
        return len(self.cases.get(path, ()))


def _item(case: Case, on: date, detail: str = "") -> Item:
    return Item(case.id, case.ref, case.child, on, detail)


def _local_data_date(w: Window, value: object) -> date | None:
    """A date-time field read as its London date (a bare date as itself)."""
    if isinstance(value, str) and len(value) > 10:
        try:
            return w.local_date(datetime.fromisoformat(value))
        except ValueError:
            return stored_date(value)
    return stored_date(value)


def _own_date(w: Window, e: Event, field_name: str | None = None) -> date:
    """The event's own date: the definition's date field for it when recorded, else when it
    was said to happen (``--at``), so an imported year reports like a lived one."""
    if field_name is not None:
        d = _local_data_date(w, e.data.get(field_name))
        if d is not None:
            return d
    return w.local_date(e.at)


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


# -- Alerts ---------------------------------------------------------------------------------


def _stage_of(state: str) -> int:
    for k in (3, 2, 1):
        if state.startswith(f"stage{k}"):
            return k
    return 0


def alerts(f: Figures, w: Window, cases: Iterable[Case]) -> None:
    """Alerts raised in the period: category, response time, highest stage, how they ended."""
    prev_start, prev_end = w.previous_year()
    for path in ("raised", "raised_previous_year", "responded_in_time", "responded_late"):
        f.put(f"alerts.{path}")
    for s in STAGES:
        f.put(f"alerts.highest_stage.{s}")
    for o in (*OUTCOMES, "open"):
        f.put(f"alerts.outcome.{o}")
    for case in cases:
        start = case.events[0]
        raised = w.local_date(start.at)
        if prev_start <= raised <= prev_end:
            f.put("alerts.raised_previous_year", [_item(case, raised)])
        if not w.in_period(raised):
            continue
        f.put("alerts.raised", [_item(case, raised)])
        category = str(start.data.get("category") or "uncategorised")
        f.put(f"alerts.by_category.{category}", [_item(case, raised)])
        response = next((e for e in case.events
                         if e.event == "respond" and _stage_of(e.from_state or "") == 0), None)
        if response is not None:
            answered = _own_date(w, response, "responded_on")
            due = case.latest("response_due", response.recorded_at)
            late = response.data.get("responded_late")  # v2 records it; v1 cases do not
            if late is None and due is not None:
                late = answered > due.due
            if late is not None:
                detail = f"due {due.due.isoformat()}" if due is not None else ""
                f.put(f"alerts.responded_{'late' if late else 'in_time'}",
                      [_item(case, answered, detail)])
        top = max(_stage_of(e.to_state) for e in case.events)
        f.put(f"alerts.highest_stage.{STAGES[top]}", [_item(case, raised)])
        state = case.state_at() or ""
        outcome = state if state in OUTCOMES else "open"
        f.put(f"alerts.outcome.{outcome}", [_item(case, raised, state)])


# -- Looked-after reviews -------------------------------------------------------------------


def _ordinal(reviews_held: int | None) -> str:
    n = int(reviews_held or 1)
    return ORDINALS[min(n, 3) - 1]


def lac_reviews(f: Figures, w: Window, cases: Iterable[Case]) -> None:
    """Reviews held in the period and in timescale, by ordinal; initial-review requests;
    participation codes."""
    for path in ("held", "in_timescale", "late", "requests", "late_requests", "missed"):
        f.put(f"lac_reviews.{path}")
    for o in ORDINALS:
        f.put(f"lac_reviews.{o}.held")
        f.put(f"lac_reviews.{o}.in_timescale")
    for code in PN_CODES:
        f.put(f"lac_reviews.participation.{code}")
    for kind in REVIEW_MINUTES:
        f.put(f"lac_reviews.{kind}_due")
        f.put(f"lac_reviews.{kind}_on_time")
    leads: list[int] = []
    for case in cases:
        for e in case.events:
            if e.event in REVIEW_HOLDS:
                held = _own_date(w, e, "held_on")
                if not w.in_period(held):
                    continue
                ordinal = _ordinal(e.data.get("reviews_held"))
                item = _item(case, held, ordinal)
                f.put("lac_reviews.held", [item])
                f.put(f"lac_reviews.{ordinal}.held", [item])
                if e.data.get("within_timescale"):
                    f.put("lac_reviews.in_timescale", [item])
                    f.put(f"lac_reviews.{ordinal}.in_timescale", [item])
                else:
                    f.put("lac_reviews.late", [item])
                participation = e.data.get("participation")
                if participation:
                    f.put(f"lac_reviews.participation.{participation}", [item])
            elif e.event == "request_review":
                asked = _own_date(w, e, "requested_on")
                if not w.in_period(asked):
                    continue
                lead = e.data.get("lead_time_working_days")
                item = _item(case, asked, f"lead time {lead} working days")
                f.put("lac_reviews.requests", [item])
                if e.data.get("late_request"):
                    f.put("lac_reviews.late_requests", [item])
                if isinstance(lead, int | float):
                    leads.append(int(lead))
        _review_minutes(f, w, case)
        if not _in_error(case):
            _missed(f, w, case, "lac_reviews")
    f.values["lac_reviews.median_lead_time_working_days"] = (
        statistics.median(leads) if leads else None)
    f.values["lac_reviews.percent_in_timescale"] = _percent(
        f.count("lac_reviews.in_timescale"), f.count("lac_reviews.held"))
    for o in ORDINALS:
        f.values[f"lac_reviews.{o}.percent_in_timescale"] = _percent(
            f.count(f"lac_reviews.{o}.in_timescale"), f.count(f"lac_reviews.{o}.held"))


def _review_minutes(f: Figures, w: Window, case: Case) -> None:
    """A review's decisions and full record: each deadline row due in the period counts once
    its date passed or it was met by as-at; on time when the event that met it came before the
    breach instant. A deadline cancelled (the case ended) is neither; an event recorded after
    ``known_at`` has not met it."""
    closed = bool(case.events) and case.events[-1].to_state == "cancelled"
    for kind, (name, met_by) in REVIEW_MINUTES.items():
        for row in case.deadlines:
            if row.name != name or not w.in_period(row.due):
                continue
            if row.status == "cancelled" and closed:
                continue
            met = row.met_at is not None and any(
                e.at == row.met_at and e.event in met_by for e in case.events)
            item = _item(case, row.due, f"{kind} due {row.due.isoformat()}")
            if met:
                f.put(f"lac_reviews.{kind}_due", [item])
                if row.met_at is not None and row.met_at < row.due_at:
                    f.put(f"lac_reviews.{kind}_on_time", [item])
            elif row.due_at <= w.cutoff:
                f.put(f"lac_reviews.{kind}_due", [item])


def _in_error(case: Case) -> bool:
    """A case opened in error (a review case cancelled, or a plan ended, as
    ``opened_in_error``): nothing was ever due, so nothing of it was missed."""
    last = case.known[-1] if case.known else None
    return last is not None and "opened_in_error" in (last.data.get("cancel_reason"),
                                                      last.data.get("end_reason"))


def _missed(f: Figures, w: Window, case: Case, section: str) -> None:
    """Meetings (reviews, conferences) due in the period whose due day passed by as-at with
    none held by then, whatever happened to the case afterwards: held late, the case closed or
    cancelled, or still waiting. A due date cancelled while still in the future was never due
    (a child who stopped being looked after first); an event recorded after ``known_at`` had
    not held it."""
    for name, holds in MEETINGS[section].items():
        for row in case.deadlines:
            if row.name != name or not w.in_period(row.due) or row.due_at > w.cutoff:
                continue
            if row.status == "cancelled":
                continue
            held = next((e for e in case.known if e.event in holds and row.met_at is not None
                         and e.at == row.met_at), None)
            if held is not None and held.at < row.due_at:
                continue  # held by the due day
            if held is not None:
                what = f"held late {w.local_date(held.at).isoformat()}"
            elif row.met_at is not None and row.met_at < w.cutoff:
                ended = next((e for e in case.known if e.at == row.met_at), None)
                what = f"not held: {ended.event if ended else 'closed'} " \
                       f"{w.local_date(row.met_at).isoformat()}"
            else:
                what = "not held yet"
            f.put(f"{section}.missed", [_item(case, row.due,
                                              f"{name} {row.due.isoformat()}; {what}")])


# -- Child protection conferences -----------------------------------------------------------


def _minutes(f: Figures, w: Window, case: Case, held: Event, on: date,
             ends: Callable[[Event], bool]) -> None:
    """Minutes of one conference: due once their deadline came (or they went out) by as-at;
    on time if distributed before the breach instant; a cancelled deadline is neither."""
    due = case.made_by(held, "minutes_due", HOLDS)
    if due is None:
        return
    after = [e for e in case.events if e.seq > held.seq]
    end = next((e for e in after if ends(e)), None)
    if end is not None and due.status == "cancelled":
        return
    item = _item(case, on, f"minutes due {due.due.isoformat()}")
    if end is not None:
        f.put("cp_conferences.minutes_due", [item])
        if end.at < due.due_at:
            f.put("cp_conferences.minutes_on_time", [item])
    elif due.due_at <= w.cutoff:
        f.put("cp_conferences.minutes_due", [item])


def _leaves(state: str) -> Callable[[Event], bool]:
    """Whether an event moves a case out of ``state`` (how minutes end)."""
    def test(e: Event) -> bool:
        return e.from_state == state and e.to_state != state
    return test


def cp_conferences(f: Figures, w: Window, cases: Iterable[Case]) -> None:
    """Initial and review conferences held in the period, in timescale, and their minutes."""
    for path in ("initial_held", "initial_in_timescale", "review_held", "review_in_timescale",
                 "transfer_in_held", "transfer_in_in_timescale", "minutes_due",
                 "minutes_on_time", "missed"):
        f.put(f"cp_conferences.{path}")
    for case in cases:
        if not _in_error(case):
            _missed(f, w, case, "cp_conferences")
        for e in case.events:
            if e.event not in CONFERENCE_KINDS:
                continue
            held = _own_date(w, e, "held_at")
            if not w.in_period(held):
                continue
            kind, flag = CONFERENCE_KINDS[e.event]
            item = _item(case, held)
            f.put(f"cp_conferences.{kind}_held", [item])
            if e.data.get(flag):
                f.put(f"cp_conferences.{kind}_in_timescale", [item])
            if e.event in HOLDS:
                _minutes(f, w, case, e, held, _leaves(e.to_state))


# -- Dual status ----------------------------------------------------------------------------


def _dual_span(w: Window, case: Case, endings: frozenset[str],
               ) -> tuple[date, date | None, str | None]:
    """When the child became dual status and when (and how) it ended, by the cases' own dates."""
    first = case.events[0]
    began = stored_date(first.data.get("became_dual_on")) or w.local_date(first.at)
    last = case.events[-1]
    if last.to_state in endings:
        return began, w.local_date(last.at), last.to_state
    return began, None, None


def dual_status(f: Figures, w: Window, cases: Iterable[Case],
                endings: frozenset[str] = frozenset(DUAL_ENDINGS)) -> None:
    """Children dual status at each month end and at as-at; those dual 3 months or more; how
    dual status ended in the period. A child is counted once however many cases it has. A
    case closed as opened in error (dual_status v3, ``closed_in_error``) was never dual."""
    spans = [(case, *_dual_span(w, case, endings)) for case in cases
             if not case.known or case.known[-1].to_state != IN_ERROR]

    def dual_on(day: date) -> list[Item]:
        seen: dict[str, Item] = {}
        for case, began, ended, _ in spans:
            if began <= day and (ended is None or ended > day):
                seen.setdefault(case.who, _item(case, began, f"dual since {began.isoformat()}"))
        return sorted(seen.values(), key=lambda i: (i.on, i.ref))

    month_end: dict[str, int] = {}
    for end in month_ends(w.start, min(w.end, w.as_at)):
        key = end.strftime("%Y-%m")
        month_end[key] = len(f.put(f"dual_status.month_end.{key}", dual_on(end)))
    f.values["dual_status.month_end"] = month_end
    now = f.put("dual_status.at_as_at", dual_on(w.as_at))
    f.put("dual_status.three_months_or_more_at_as_at",
          [i for i in now if add_months(i.on, 3) <= w.as_at])
    for ending in DUAL_ENDINGS:
        f.put(f"dual_status.ended.{ending}")
    for case, _, ended, how in spans:
        if ended is not None and how is not None and w.in_period(ended):
            f.put(f"dual_status.ended.{how}", [_item(case, ended)])


# -- Caseloads ------------------------------------------------------------------------------


def caseloads(f: Figures, w: Window, reviews: Iterable[Case], conferences: Iterable[Case],
              band: int, finals: Mapping[str, frozenset[str]]) -> None:
    """Children allocated to each chair at as-at (IROs from open review cases, CPCs from open
    conference cases), and the chairs above the band."""
    per_chair: dict[str, dict[str, Item]] = {}
    for cases, field_name in ((reviews, "iro_id"), (conferences, "cpc_id")):
        for case in cases:
            last = case.events[-1]
            chair = last.data.get(field_name)
            if not chair or last.to_state in finals.get(case.definition, _FINAL):
                continue
            per_chair.setdefault(str(chair), {}).setdefault(
                case.who, _item(case, w.local_date(last.at), case.definition))
    for chair in sorted(per_chair):
        f.put(f"caseloads.chairs.{chair}", sorted(per_chair[chair].values(),
                                                  key=lambda i: i.ref))
    f.values["caseloads.band"] = band
    f.values["caseloads.above_band"] = sorted(
        c for c in per_chair if len(per_chair[c]) > band)


# The shipped definitions' final states, for callers that do not pass the loaded definitions.
_FINAL = frozenset({"cancelled", "no_plan", "plan_ended", "resolved", "withdrawn",
                    "referred_to_cafcass", "left_care", IN_ERROR, *DUAL_ENDINGS})


def compute(w: Window, cases: Mapping[str, list[Case]], *, band: int = DEFAULT_BAND,
            finals: Mapping[str, frozenset[str]] | None = None) -> Figures:
    """All the figures for ``w`` from the cases loaded for it; ``finals`` are each
    definition's final states (a case in one is closed)."""
    f = Figures()
    alerts(f, w, cases.get(ALERTS, []))
    lac_reviews(f, w, cases.get(REVIEWS, []))
    cp_conferences(f, w, [*cases.get(CONFERENCES, []), *cases.get(TRANSFERS_IN, [])])
    dual_status(f, w, cases.get(DUAL, []), (finals or {}).get(DUAL, frozenset(DUAL_ENDINGS)))
    caseloads(f, w, cases.get(REVIEWS, []),
              [*cases.get(CONFERENCES, []), *cases.get(TRANSFERS_IN, [])], band, finals or {})
    return f


__all__ = ["DEFINITIONS", "DEADLINES", "Figures", "Item", "compute"]
