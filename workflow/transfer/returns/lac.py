"""SSDA903 periods of care -> ``initial_review`` events, by the process's own events.

A period of care is a looked-after review case from its DECOM: ``start`` (``looked_after_on``
= DECOM, so the first review falls due 20 working days later; a period of short breaks only,
LS V3/V4, starts with ``short_breaks`` and runs on the reg. 48 cadence). Each REVIEW is a
review held with its PN code: the process reaches ``hold`` only from ``scheduled``, so the
importer also records, on the review's own day, the steps the return does not carry (the
request, the allocation, the booking: ``request_review``, ``allocate``, ``schedule``); the
review cycle then runs from the meeting held, as the definition says. The period's end (the DEC
of its last episode when REC is not X1) is ``cancel`` with ``no_longer_looked_after``. Placement
and legal-status changes have no event of their own in the shipped process: each episode's
line goes into the note of the first derived row on or after its DECOM (``icsflow child`` shows
them on the child's timeline).

Facts icsflow already holds are compared first (``compare_reviews``): the same review on the
same date is left alone; a review whose PN code or date changed is reported, never doubled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

from icsflow.workflow.transfer.returns._rows import ENDING, ONGOING, Derived, Maker
from icsflow.workflow.transfer.returns.held import REVIEW_CASE, Held, HeldPeriod
from icsflow.workflow.transfer.returns.records import (
    LacChild,
    LacReview,
    Period,
    Ssda903Return,
    to_dmy,
)

ACTOR = "ssda903-import"
IRO_ID = "ssda903-import"
NEXT_STEP = {"awaiting_request": "request_review", "request_overdue": "request_review",
             "awaiting_allocation": "allocate", "allocated": "schedule", "held": "schedule",
             "next_review": "schedule", "scheduled": "hold"}
AFTER = {"request_review": "awaiting_allocation", "allocate": "allocated",
         "schedule": "scheduled", "hold": "held"}
ROLES = {"start": "admin", "request_review": "social_worker", "allocate": "admin",
         "schedule": "admin", "hold": "iro", "cancel": "admin"}


@dataclass
class ReviewsCompared:
    """A period's reviews in the return against those icsflow holds."""

    new: list[LacReview]
    same: list[LacReview]
    code_changed: list[tuple[LacReview, str | None]]
    date_changed: list[tuple[LacReview, date]]
    only_icsflow: list[tuple[date, str | None]]


def compare_reviews(theirs: Sequence[LacReview], ours: Sequence[tuple[date, str | None]],
                    window: tuple[date, date] | None) -> ReviewsCompared:
    """Match by date; unmatched reviews on both sides inside the return's years are paired in
    date order as a changed date (a return and icsflow that each hold one review the other
    lacks hold the same meeting differently)."""
    held = {d: code for d, code in ours}
    result = ReviewsCompared([], [], [], [], [])
    unmatched: list[LacReview] = []
    for review in theirs:
        if review.held_on not in held:
            unmatched.append(review)
        elif held[review.held_on] != review.code:
            result.code_changed.append((review, held[review.held_on]))
        else:
            result.same.append(review)
    dates = {r.held_on for r in theirs}
    lacking = [(d, c) for d, c in ours if d not in dates
               and (window is None or window[0] <= d <= window[1])]
    for review, (day, _code) in zip(unmatched, lacking, strict=False):
        result.date_changed.append((review, day))
    result.new = unmatched[len(lacking):]
    result.only_icsflow = lacking[len(unmatched):]
    return result


def match_period(period: Period, held: Sequence[HeldPeriod]) -> HeldPeriod | None:
    """The case holding ``period``: the one from the same day; for a period the extract holds
    only part of, the case it continues (open, or closed on or after its first episode)."""
    for case in held:
        if case.start == period.start:
            return case
    if not period.opened:
        for case in held:
            if case.start <= period.start and (case.end is None or case.end >= period.start):
                return case
    return None


def derive_903(ret: Ssda903Return, held: Held, maker: Maker, *,
               skip: set[str] | None = None) -> Derived:
    """Rows for every child of the return not in ``skip``."""
    out = Derived()
    for child, lac in ret.children.items():
        if skip and child in skip:
            continue
        for period in lac.periods:
            _period(out, maker, lac, period, held.periods.get(child, []), ret.review_years)
    return out


def _period(out: Derived, maker: Maker, lac: LacChild, period: Period,
            held: Sequence[HeldPeriod], window: tuple[date, date] | None) -> None:
    child = lac.child
    first = period.episodes[0]
    case = match_period(period, held)
    if case is None and not period.opened:
        out.problem(first.where, f"the period of care of child {child} began before this "
                    f"extract (its first episode here, {to_dmy(first.decom)}, has RNE "
                    f"{first.rne}, not S) and icsflow holds no case for it: include the "
                    "years back to its start", child)
        return
    if case is None:
        clash = next((c for c in held if c.start <= (period.end or date.max)
                      and (c.end is None or c.end >= period.start)), None)
        if clash is not None:
            out.notice(first.where, child, f"the period of care from {to_dmy(period.start)} "
                       f"overlaps icsflow's case {clash.ref} from {to_dmy(clash.start)} "
                       "(DECOM changed between extracts?): left alone")
            return
    local = Derived()
    start = case.start if case else period.start
    ref = case.ref if case else f"903-{child}-{start.isoformat()}"
    key = f"903:{child}:{start.isoformat()}"
    state = case.state if case else "awaiting_request"
    if case is None:
        data: dict[str, object] = {"looked_after_on": period.start,
                                   "team_manager_email": maker.contact}
        if period.short_breaks:
            data["short_breaks"] = True
        if lac.dob is not None and maker.has_field(REVIEW_CASE, "date_of_birth"):
            data["date_of_birth"] = lac.dob
        maker.add(local, definition=REVIEW_CASE, ref=ref, child=child, event="start",
                  day=period.start, role=ROLES["start"], where=first.where,
                  row_id=f"{key}:start", data=data)
    compared = compare_reviews(period.reviews, case.reviews if case else (), window)
    for review, code in compared.code_changed:
        out.notice(review.where, child, f"the review of {to_dmy(review.held_on)} has "
                   f"{review.code} here but {code} in icsflow ({ref}): left alone")
    for review, day in compared.date_changed:
        out.notice(review.where, child, f"the review of {to_dmy(review.held_on)} is not in "
                   f"icsflow, which holds one of {to_dmy(day)} the return lacks ({ref}): a "
                   "changed date? left alone")
    if case is not None and case.closed and compared.new:
        out.problem(compared.new[0].where, f"icsflow's case {ref} is closed ({case.state}): "
                    "a review cannot be added to it", child)
        return
    for review in compared.new:  # one held the day care ended comes before the ending
        phase = ENDING if review.held_on == period.end else ONGOING
        state = _review(local, maker, ref, key, child, review, state, phase)
    _end(out, local, maker, period, case, ref, key)
    _notes(local, period, case)
    out.extend(local)


def _review(out: Derived, maker: Maker, ref: str, key: str, child: str, review: LacReview,
            state: str, phase: int) -> str:
    """The steps from ``state`` to the review held; returns the state after it."""
    base = f"{key}:review:{review.held_on.isoformat()}"
    while True:
        event = NEXT_STEP.get(state)
        if event is None:
            out.problem(review.where, f"icsflow's case {ref} is in state {state}: a review "
                        "cannot be recorded from there", child)
            return state
        data: dict[str, object] = {}
        if event == "allocate":
            data = {"iro_id": IRO_ID, "iro_email": maker.contact,
                    "above_band_reason": "the SSDA903 return names no IRO"}
        elif event == "schedule":
            data = {"review_date": review.held_on}
        elif event == "hold":
            data = {"held_on": review.held_on, "participation": review.code}
        maker.add(out, definition=REVIEW_CASE, ref=ref, child=child, event=event,
                  day=review.held_on, role=ROLES[event], where=review.where,
                  row_id=f"{base}:{event}", data=data, phase=phase)
        state = AFTER[event]
        if event == "hold":
            return state


def _end(out: Derived, local: Derived, maker: Maker, period: Period, case: HeldPeriod | None,
         ref: str, key: str) -> None:
    last = period.last
    if period.end is None:
        if case is not None and case.end is not None:
            out.notice(last.where, period.child, f"the period of care from "
                       f"{to_dmy(period.start)} is open in the return but icsflow's case {ref} "
                       f"ended on {to_dmy(case.end)}: left alone")
        return
    if case is not None and case.end is not None:
        if case.end != period.end:
            out.notice(last.where, period.child, f"the period of care ends on "
                       f"{to_dmy(period.end)} here but on {to_dmy(case.end)} in icsflow "
                       f"({ref}): left alone")
        return
    maker.add(local, definition=REVIEW_CASE, ref=ref, child=period.child, event="cancel",
              day=period.end, role=ROLES["cancel"], where=last.where, row_id=f"{key}:cancel",
              data={"cancel_reason": "no_longer_looked_after"}, phase=ENDING,
              note=f"SSDA903: the period of care ended on {period.end.isoformat()} "
                   f"(REC {last.rec})")


def _notes(local: Derived, period: Period, case: HeldPeriod | None) -> None:
    """Each episode's line on the first derived row on or after its DECOM."""
    after = case.last_event.date() if case is not None and case.last_event else None
    pending = [e for e in period.episodes if after is None or e.decom > after]
    rows = sorted(range(len(local.rows)), key=lambda i: local.rows[i][0])
    for index in rows:
        sort_key, row = local.rows[index]
        day = row.at.date()
        lines = [e.describe() for e in pending if e.decom <= day]
        if not lines:
            continue
        pending = [e for e in pending if e.decom > day]
        note = "; ".join([*lines, *([row.note] if row.note else [])])
        local.rows[index] = (sort_key, replace(row, note=note))
    local.unplaced_notes += len(pending)


__all__ = ["derive_903", "compare_reviews", "match_period", "ReviewsCompared", "ACTOR",
           "IRO_ID"]
