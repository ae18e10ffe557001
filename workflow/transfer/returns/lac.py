"""SSDA903 periods of care -> ``initial_review`` events, by the process's own events.

A period of care is a looked-after review case from its DECOM: ``start`` (``looked_after_on``
= DECOM, so the first review falls due 20 working days later; a period of short breaks only,
LS V3/V4, starts with ``short_breaks`` and runs on the reg. 48 cadence; the header's DOB is
the case's ``date_of_birth``). Each REVIEW is a review already held, recorded as such
(``record_review`` with ``held_on`` and the PN code, from whatever state the case is in: the
return carries no request, allocation or booking, and none is invented); the review cycle then
runs from the meeting held, as the definition says. Each later episode (RNE P, L, T, B, U) is a
change of placement or legal status on its DECOM (``record_change``, its line in the note), on
the child's timeline where a change no review considered first is flagged (reg. 32(2)). The
period's end (the DEC of its last episode when REC is not X1) is ``cancel`` with
``no_longer_looked_after``, unless it is the child's 18th birthday or later: the case then
ends by itself on that birthday (``left_care``).

Facts icsflow already holds are compared first (``compare_reviews``): the same review on the
same date is left alone; a review whose PN code or date changed is reported, never doubled; a
change icsflow holds on the same day is not recorded twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from icsflow.workflow.data import stored_date
from icsflow.workflow.timeline import birthday
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
IRO_ID = "ssda903-import"  # the IRO id cases imported by earlier versions were allocated to
ROLES = {"start": "admin", "record_review": "admin", "record_change": "admin",
         "cancel": "admin"}
# What each episode's reason for new episode (RNE) changed: a placement move is the
# significant change reg. 32(2) is about, also when the legal status changed with it.
CHANGE_KIND = {"P": "placement_move", "L": "legal_status_change", "T": "placement_move",
               "B": "placement_move", "U": "placement_move"}
NEEDED_EVENTS = ("record_review", "record_change")


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
    missing = [e for e in NEEDED_EVENTS if not maker.has_event(REVIEW_CASE, e)]
    if missing and ret.children:
        first = next(iter(ret.children.values()))
        where = first.where or (first.periods[0].episodes[0].where if first.periods else None)
        if where is not None:
            out.problem(where, f"the loaded {REVIEW_CASE} has no {' or '.join(missing)} "
                        "event: the SSDA903 import needs version 3 or later", first.child)
        return out
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
    dob = lac.dob if lac.dob is not None and maker.has_field(REVIEW_CASE, "date_of_birth") \
        else None
    if case is None:
        data: dict[str, object] = {"looked_after_on": period.start,
                                   "team_manager_email": maker.contact}
        if period.short_breaks:
            data["short_breaks"] = True
        if dob is not None:
            data["date_of_birth"] = dob
        maker.add(local, definition=REVIEW_CASE, ref=ref, child=child, event="start",
                  day=period.start, role=ROLES["start"], where=first.where,
                  row_id=f"{key}:start", data=data, note=first.describe())
    elif dob is None:
        held_dob = case.data.get("date_of_birth")
        dob = stored_date(held_dob) if held_dob else None
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
        maker.add(local, definition=REVIEW_CASE, ref=ref, child=child, event="record_review",
                  day=review.held_on, role=ROLES["record_review"], where=review.where,
                  row_id=f"{key}:review:{review.held_on.isoformat()}:record",
                  data={"held_on": review.held_on, "participation": review.code}, phase=phase)
    _changes(local, maker, period, case, ref, key)
    _end(out, local, maker, period, case, ref, key, dob)
    out.extend(local)


def _changes(out: Derived, maker: Maker, period: Period, case: HeldPeriod | None, ref: str,
             key: str) -> None:
    """Each episode after the first: a change of placement or legal status on its DECOM,
    unless icsflow already holds a change on that day, or the episode is older than the last
    event icsflow holds for the case (an earlier extract's, recorded then)."""
    done = set(case.changes) if case is not None else set()
    after = case.last_event.date() if case is not None and case.last_event else None
    for episode in period.episodes[1:] if period.opened else period.episodes:
        kind = CHANGE_KIND.get(episode.rne)
        if kind is None or episode.decom in done or (after is not None
                                                      and episode.decom <= after):
            continue
        maker.add(out, definition=REVIEW_CASE, ref=ref, child=period.child,
                  event="record_change", day=episode.decom, role=ROLES["record_change"],
                  where=episode.where, row_id=f"{key}:change:{episode.decom.isoformat()}",
                  data={"change_kind": kind, "changed_on": episode.decom},
                  note=episode.describe())


def _end(out: Derived, local: Derived, maker: Maker, period: Period, case: HeldPeriod | None,
         ref: str, key: str, dob: date | None) -> None:
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
    if dob is not None and maker.has_event(REVIEW_CASE, "reach_eighteen") \
            and period.end >= birthday(dob, 18):
        return  # the case ends by itself on the 18th birthday (left_care)
    maker.add(local, definition=REVIEW_CASE, ref=ref, child=period.child, event="cancel",
              day=period.end, role=ROLES["cancel"], where=last.where, row_id=f"{key}:cancel",
              data={"cancel_reason": "no_longer_looked_after"}, phase=ENDING,
              note=f"SSDA903: the period of care ended on {period.end.isoformat()} "
                   f"(REC {last.rec})")


__all__ = ["derive_903", "compare_reviews", "match_period", "ReviewsCompared", "ACTOR",
           "IRO_ID"]
