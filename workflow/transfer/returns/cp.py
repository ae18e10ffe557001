"""CIN census enquiries and plans -> ``cp_conference`` events, by the process's own events.

A Section 47 start opens the initial-conference clock (``start`` with
``strategy_discussion_on`` = ``S47ActualStartDate``: due the 15th working day after);
``DateOfInitialCPC`` holds it, recorded as a conference already held (``record_icpc``,
``plan_made`` when a plan starts that day in the same CINdetails: the plan it made); each
``CPPreviewDate`` is a review conference already held (``record_review_conference``; 3 months,
then 6); ``CPPendDate`` ends the plan: at a review conference held that day
(``plan_continues: false``), otherwise ``end_plan`` (``end_reason: other``: the census gives no
reason). The census carries no minutes dates and no core groups: a conference recorded after the
fact starts no minutes or core-group deadline, and nothing is invented. Dual status is left to
the processes' own signals (``cp_plan_started``, ``cp_plan_ended``).

A plan whose conference is in an earlier census continues the case icsflow holds for it (found
by the child and the plan's start); icsflow holding none is a problem (import that census
first). Facts icsflow already holds are compared first: nothing held is applied twice, a date
that changed is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from icsflow.workflow.transfer.returns._rows import ENDING, ONGOING, Derived, Maker
from icsflow.workflow.transfer.returns.held import CP_CASE, Held, HeldConference
from icsflow.workflow.transfer.returns.records import (
    CinChild,
    CinReturn,
    CpReview,
    Plan,
    Section47,
)

ACTOR = "cin-census-import"
ROLES = {"start": "admin", "record_icpc": "cpc", "record_review_conference": "cpc",
         "end_plan": "cpc"}
NEEDED_EVENTS = ("record_icpc", "record_review_conference")


def derive_cin(ret: CinReturn, held: Held, maker: Maker, *,
               skip: set[str] | None = None) -> Derived:
    """Rows for every child of the census not in ``skip``."""
    out = Derived()
    window = ret.year
    missing = [e for e in NEEDED_EVENTS if not maker.has_event(CP_CASE, e)]
    if missing and ret.children:
        first = next(iter(ret.children.values()))
        out.problem(first.where, f"the loaded {CP_CASE} has no {' or '.join(missing)} event: "
                    "the CIN census import needs version 3 or later", first.child)
        return out
    for child, cin in ret.children.items():
        if skip and child in skip:
            continue
        _child(out, maker, cin, held.conferences.get(child, []), window)
    return out


def match_enquiry(enquiry: Section47, held: Sequence[HeldConference]) -> HeldConference | None:
    return next((c for c in held if c.enquiry == enquiry.start), None)


def match_plan(plan: Plan, held: Sequence[HeldConference]) -> HeldConference | None:
    if plan.icpc is not None:
        return match_enquiry(plan.icpc, held)
    return next((c for c in held if c.plan_start == plan.start), None)


def _child(out: Derived, maker: Maker, cin: CinChild, held: Sequence[HeldConference],
           window: tuple[date, date] | None) -> None:
    plans = {p.icpc.start: p for p in cin.plans if p.icpc is not None}
    for enquiry in cin.enquiries:
        if enquiry.not_required:
            continue  # reported as ignored by the reader
        _enquiry(out, maker, enquiry, plans.get(enquiry.start), held, window)
    for plan in cin.plans:
        if plan.icpc is not None:
            continue
        case = match_plan(plan, held)
        if case is None:
            out.problem(plan.where, f"the plan starting {plan.start.isoformat()} has no initial "
                        "conference in this census (it was held in an earlier one) and icsflow "
                        "holds no case for it: import the census of the year it started first",
                        cin.child)
            continue
        _plan_rows(out, maker, plan, case, _key(cin.child, case.enquiry), case.ref, window)


def _key(child: str, enquiry: date) -> str:
    return f"cin:{child}:{enquiry.isoformat()}"


def _enquiry(out: Derived, maker: Maker, enquiry: Section47, plan: Plan | None,
             held: Sequence[HeldConference], window: tuple[date, date] | None) -> None:
    child = enquiry.child
    case = match_enquiry(enquiry, held)
    key = _key(child, enquiry.start)
    ref = case.ref if case else f"CIN-{child}-{enquiry.start.isoformat()}"
    if case is None:
        maker.add(out, definition=CP_CASE, ref=ref, child=child, event="start",
                  day=enquiry.start, role=ROLES["start"], where=enquiry.where,
                  row_id=f"{key}:start", data={"strategy_discussion_on": enquiry.start,
                                               "team_manager_email": maker.contact})
    if enquiry.icpc is None:
        return
    if case is not None and case.icpc is not None:
        if case.icpc != enquiry.icpc or case.plan_made != (plan is not None):
            out.notice(enquiry.where, child, f"the initial conference is "
                       f"{enquiry.icpc.isoformat()} {'with' if plan else 'without'} a plan "
                       f"here, {case.icpc.isoformat()} {'with' if case.plan_made else 'without'}"
                       f" in icsflow ({ref}): left alone")
            return
    else:
        if case is not None and case.state not in ("awaiting_icpc", "icpc_scheduled"):
            out.problem(enquiry.where, f"icsflow's case {ref} is in state {case.state}: the "
                        "initial conference cannot be recorded from there", child)
            return
        maker.add(out, definition=CP_CASE, ref=ref, child=child, event="record_icpc",
                  day=enquiry.icpc, role=ROLES["record_icpc"], where=enquiry.where,
                  row_id=f"{key}:icpc", data={"held_at": _at(enquiry.icpc),
                                              "plan_made": plan is not None})
    if plan is not None:
        _plan_rows(out, maker, plan, case, key, ref, window)


def _at(day: date) -> str:
    return f"{day.isoformat()}T00:00:00"


def _plan_rows(out: Derived, maker: Maker, plan: Plan, case: HeldConference | None, key: str,
               ref: str, window: tuple[date, date] | None) -> None:
    child = plan.child
    held = case.reviews if case is not None else ()
    new: list[CpReview] = []
    lacking = [d for d in held if d not in {r.held_on for r in plan.reviews}
               and (window is None or window[0] <= d <= window[1])]
    unmatched = [r for r in plan.reviews if r.held_on not in held]
    for review, day in zip(unmatched, lacking, strict=False):
        out.notice(review.where, child, f"the review conference of {review.held_on.isoformat()}"
                   f" is not in icsflow, which holds one of {day.isoformat()} the census lacks "
                   f"({ref}): a changed date? left alone")
    new = unmatched[len(lacking):]
    ended = case.plan_end if case is not None else None
    if ended is not None:
        if new or plan.end != ended:
            out.notice(plan.where, child, f"the plan from {plan.start.isoformat()} ended on "
                       f"{ended.isoformat()} in icsflow ({ref}); the census says "
                       f"{plan.end.isoformat() if plan.end else 'open'}: left alone")
        return
    for review in new:
        last = plan.end is not None and review.held_on == plan.end
        base = f"{key}:review:{review.held_on.isoformat()}"
        phase = ENDING if last else ONGOING
        maker.add(out, definition=CP_CASE, ref=ref, child=child,
                  event="record_review_conference", day=review.held_on,
                  role=ROLES["record_review_conference"], where=review.where, row_id=base,
                  data={"held_at": _at(review.held_on), "plan_continues": not last},
                  phase=phase)
    if plan.end is not None and all(r.held_on != plan.end for r in plan.reviews):
        maker.add(out, definition=CP_CASE, ref=ref, child=child, event="end_plan",
                  day=plan.end, role=ROLES["end_plan"], where=plan.where, row_id=f"{key}:end",
                  data={"end_reason": "other"}, phase=ENDING,
                  note="CIN census: the plan ended outside a review conference; the census "
                       "gives no reason")


__all__ = ["derive_cin", "match_enquiry", "match_plan", "ACTOR"]
