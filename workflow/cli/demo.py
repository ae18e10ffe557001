"""``icsflow demo``: the service's 2011-12 year, replayed day by day on embedded defaults.

About thirty synthetic cases of a dozen children across the shipped processes, started on
dates of the service's year (the royal wedding, Christmas 2011 and the moved Spring bank
holiday all fall inside), with scripted events: some responses on time, some late, escalations
at the IRO's decision, core groups, an early review after a placement move, a young person who
reaches 18 in care, a short-break child moved to the reg. 33 cycle, a transfer-in conference.
Dual status is not typed in: it starts by itself when a child has a plan and is looked after,
and ends by itself when either ends, or is withdrawn when the case that made it was opened in
error (one child is started by hand, as for a child whose other processes are not in icsflow).
The real engine runs on SQLite with a fake clock that moves one day at a time; timers fire as
they would live, and the real dispatcher delivers every email into a Maildir a person can open.
"""

from __future__ import annotations

import shutil
import time as wallclock
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from icsflow.definitions.model import humanize
from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.clock import LONDON, FakeClock
from icsflow.workflow.instance import Actor
from icsflow.workflow.labels import Labels

if TYPE_CHECKING:
    from sqlalchemy import Engine as SqlEngine

    from icsflow.workflow.config import Config
    from icsflow.workflow.daemon import Dispatcher
    from icsflow.workflow.daemon.office_hours import OfficeHours
    from icsflow.workflow.engine import Engine
    from icsflow.workflow.instance import Instance

FIRST_DAY = date(2011, 4, 1)
LAST_DAY = date(2012, 3, 31)
DOMAIN = "council.example"
# Where the demo's `serve` hint puts the web page: every email links to its case there.
WEB_ADDRESS = "http://127.0.0.1:8080"
# The demo year's last working day, late: the hints and the web page show the year as it stood.
LAST_WORKING_MOMENT = "2012-03-30T17:00"


def command_name() -> str:
    """How the person ran icsflow, for the hints to be pasted as they are: the path they typed
    (``.venv/bin/icsflow`` after the README's install) unless ``icsflow`` on PATH is the same
    program; plain ``icsflow`` when not run from its script (``python -c``, tests)."""
    import os
    import shutil
    import sys

    typed = sys.argv[0] if sys.argv else ""
    if os.path.basename(typed) != "icsflow":
        return "icsflow"
    found = shutil.which("icsflow")
    if found and os.path.realpath(found) == os.path.realpath(typed):
        return "icsflow"
    return typed

DIRECTORY = {
    "iro_service_manager": (f"iro.service.manager@{DOMAIN}",),
    "head_of_service": (f"head.of.service@{DOMAIN}",),
    "director": (f"director.childrens.services@{DOMAIN}",),
    "admin": (f"iro.admin@{DOMAIN}",),
    "service_manager": (f"service.managers@{DOMAIN}",),
    "minute_manager": (f"minute.taking@{DOMAIN}",),
}


@dataclass(frozen=True)
class Step:
    """One scripted event of a demo case."""

    on: str
    event: str
    role: str
    data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoCase:
    """A case of one child; ``auto`` cases are not started by the script: they start by
    themselves (dual status) and the script only fires their steps."""

    definition: str
    ref: str
    role: str
    on: str
    data: dict[str, str]
    steps: tuple[Step, ...] = ()
    child: str = ""
    auto: bool = False


def _child(ref: str) -> str:
    return "CH-" + ref.split("-")[-1]


def _alert(ref: str, on: str, concern: str, category: str, *steps: Step,
           child: str = "") -> DemoCase:
    n = ref.split("-")[-1]
    return DemoCase("alert_dispute", ref, "iro", on, child=child or _child(ref), data={
        "iro_email": f"iro.{n}@{DOMAIN}", "team_manager_email": f"team.manager.{n}@{DOMAIN}",
        "service_manager_email": f"service.manager.{n}@{DOMAIN}", "concern": concern,
        "category": category}, steps=steps)


def _review(ref: str, on: str, *steps: Step, **extra: str) -> DemoCase:
    n = ref.split("-")[-1]
    return DemoCase("initial_review", ref, "social_worker", on, child=_child(ref), data={
        "looked_after_on": on, "social_worker_email": f"social.worker.{n}@{DOMAIN}",
        "team_manager_email": f"team.manager.{n}@{DOMAIN}", **extra}, steps=steps)


def _dual(ref: str, on: str, *steps: Step, auto: bool = True) -> DemoCase:
    n = ref.split("-")[-1]
    return DemoCase("dual_status", ref, "cpc", on, child=_child(ref), auto=auto, data={
        "became_dual_on": on, "cpc_email": f"cpc.{n}@{DOMAIN}", "iro_email": f"iro.{n}@{DOMAIN}"},
        steps=steps)


def _conference(ref: str, on: str, *steps: Step) -> DemoCase:
    n = ref.split("-")[-1]
    return DemoCase("cp_conference", ref, "cpc", on, child=_child(ref), data={
        "strategy_discussion_on": on, "cpc_email": f"cpc.{n}@{DOMAIN}",
        "social_worker_email": f"social.worker.{n}@{DOMAIN}",
        "team_manager_email": f"team.manager.{n}@{DOMAIN}"}, steps=steps)


def _transfer(ref: str, on: str, *steps: Step) -> DemoCase:
    n = ref.split("-")[-1]
    return DemoCase("cp_transfer_in", ref, "cpc", on, child=_child(ref), data={
        "notified_on": on, "from_council": "Derbyshire", "cpc_email": f"cpc.{n}@{DOMAIN}",
        "social_worker_email": f"social.worker.{n}@{DOMAIN}",
        "team_manager_email": f"team.manager.{n}@{DOMAIN}"}, steps=steps)


def _hold(on: str, code: str = "PN1") -> Step:
    return Step(on, "hold", "iro", {"held_on": on, "participation": code})


def _allocate(on: str, n: str) -> Step:
    return Step(on, "allocate", "iro_service_manager",
                {"iro_id": f"iro-{n}", "iro_email": f"iro.{n}@{DOMAIN}"})


CASES: tuple[DemoCase, ...] = (
    # IRO Alerts: answered on time, answered late, unanswered and escalated by the IRO when asked
    # to decide, a new date given instead, withdrawn. Each Alert is about one child.
    _alert("ALERT-01", "2011-04-20", "Permanence plan not progressed", "plan_progress",
           Step("2011-05-03", "respond", "team_manager", {"response": "Permanence panel booked"}),
           Step("2011-05-05", "resolve", "iro"), child="CH-01"),
    _alert("ALERT-02", "2011-06-06", "Contact arrangements not in the care plan", "care_plan",
           Step("2011-06-22", "escalate", "iro"),
           Step("2011-06-24", "respond", "service_manager"),
           Step("2011-06-28", "resolve", "iro"), child="CH-02"),
    _alert("ALERT-03", "2011-09-12", "Health assessment overdue", "practice",
           Step("2011-09-28", "escalate", "iro"),
           Step("2011-10-12", "escalate", "iro"),
           Step("2011-10-14", "respond", "head_of_service"),
           Step("2011-10-17", "resolve", "iro"), child="CH-03"),
    _alert("ALERT-04", "2011-12-19", "Placement stability", "plan_progress",
           Step("2012-01-09", "extend", "iro", {"extended_to": "2012-01-13"}),
           Step("2012-01-12", "respond", "team_manager"),
           Step("2012-01-13", "escalate", "iro"),
           Step("2012-01-18", "respond", "service_manager"),
           Step("2012-01-20", "resolve", "iro"), child="CH-04"),
    _alert("ALERT-05", "2012-01-16", "Pathway plan missing", "care_plan",
           Step("2012-01-25", "respond", "team_manager"),
           Step("2012-01-27", "escalate", "iro"),
           Step("2012-02-02", "respond", "service_manager"),
           Step("2012-02-03", "resolve", "iro"), child="CH-02"),
    _alert("ALERT-06", "2012-02-20", "Education plan", "other",
           Step("2012-02-24", "withdraw", "iro"), child="CH-06"),
    _alert("ALERT-07", "2012-03-05", "Sibling contact", "care_plan",
           Step("2012-03-22", "respond", "team_manager"), child="CH-01"),
    # Looked-after reviews: requests on time, late, never made until chased; minutes apart.
    _review("REVIEW-01", "2011-04-11",
            Step("2011-04-13", "request_review", "social_worker"), _allocate("2011-04-15", "01"),
            Step("2011-04-18", "send_booklet", "admin"),
            Step("2011-04-18", "schedule", "iro", {"review_date": "2011-05-05"}),
            _hold("2011-05-05", "PN1"),
            Step("2011-05-09", "distribute_minutes", "iro"),
            Step("2011-07-20", "schedule", "iro", {"review_date": "2011-08-02"}),
            _hold("2011-08-02", "PN2"),
            Step("2011-08-04", "distribute_minutes", "admin"),
            # A placement move no review considered first (flagged, reg. 32(2)), then the IRO
            # asks for an early review of it (reg. 33(3)): review_due moves to review_by.
            Step("2011-10-17", "record_change", "social_worker",
                 {"change_kind": "placement_move", "changed_on": "2011-10-17"}),
            Step("2011-10-18", "request_early_review", "iro",
                 {"reason": "significant_change", "review_by": "2011-11-18"}),
            Step("2011-10-25", "schedule", "iro", {"review_date": "2011-11-16"}),
            _hold("2011-11-16", "PN6"),
            Step("2011-11-21", "distribute_minutes", "iro")),
    _review("REVIEW-02", "2011-05-23",
            Step("2011-06-07", "request_review", "social_worker"), _allocate("2011-06-09", "02"),
            Step("2011-06-10", "schedule", "iro", {"review_date": "2011-06-24"}),
            _hold("2011-06-24", "PN0"),
            Step("2011-06-29", "distribute_decisions", "iro"),
            Step("2011-07-18", "distribute_minutes", "admin")),
    _review("REVIEW-03", "2011-08-30",
            Step("2011-09-20", "request_review", "team_manager"), _allocate("2011-09-23", "03"),
            Step("2011-09-26", "schedule", "iro", {"review_date": "2011-10-04"}),
            _hold("2011-10-04", "PN5"),
            Step("2011-10-13", "distribute_minutes", "iro")),
    _review("REVIEW-04", "2011-12-12",
            Step("2011-12-13", "request_review", "social_worker"), _allocate("2011-12-16", "04"),
            Step("2011-12-20", "schedule", "iro", {"review_date": "2012-01-09"}),
            Step("2012-01-06", "reschedule", "iro", {"review_date": "2012-01-11"}),
            _hold("2012-01-11", "PN3"),
            Step("2012-01-13", "distribute_minutes", "admin")),
    _review("REVIEW-05", "2012-02-27",
            Step("2012-03-05", "request_review", "social_worker")),
    _review("REVIEW-06", "2011-10-03",
            Step("2011-10-10", "cancel", "iro_service_manager",
                 {"cancel_reason": "no_longer_looked_after"})),
    _review("REVIEW-07", "2012-01-09",
            Step("2012-01-10", "request_review", "social_worker"), _allocate("2012-01-13", "07"),
            Step("2012-03-12", "cancel", "admin", {"cancel_reason": "no_longer_looked_after"})),
    # A young person looked after from 17: an eligible child 13 weeks later (pathway plan due 3
    # months after), who reaches 18 in care: the case ends by itself (left_care).
    _review("REVIEW-08", "2011-06-01",
            Step("2011-06-06", "request_review", "social_worker"), _allocate("2011-06-08", "08"),
            Step("2011-06-10", "schedule", "iro", {"review_date": "2011-06-27"}),
            _hold("2011-06-27", "PN1"),
            Step("2011-06-30", "distribute_minutes", "iro"),
            Step("2011-09-05", "schedule", "iro", {"review_date": "2011-09-20"}),
            _hold("2011-09-20", "PN1"),
            Step("2011-09-23", "distribute_minutes", "admin"),
            Step("2011-11-01", "record_pathway_plan", "social_worker"),
            date_of_birth="1993-11-15"),
    # Short breaks (reg. 48) until a break of 19 days: the reg. 33 cycle from that day.
    _review("REVIEW-11", "2011-09-05",
            Step("2011-09-12", "record_short_break", "social_worker",
                 {"break_from": "2011-09-09", "break_to": "2011-09-11"}),
            Step("2011-11-07", "request_review", "social_worker"), _allocate("2011-11-09", "11"),
            Step("2011-11-10", "schedule", "iro", {"review_date": "2011-11-28"}),
            _hold("2011-11-28", "PN2"),
            Step("2011-12-01", "distribute_minutes", "iro"),
            Step("2011-12-19", "record_short_break", "social_worker",
                 {"break_from": "2011-12-19", "break_to": "2012-01-06"}),
            Step("2012-01-05", "schedule", "iro", {"review_date": "2012-01-17"}),
            _hold("2012-01-17", "PN2"),
            Step("2012-01-19", "distribute_minutes", "iro"),
            short_breaks="true"),
    # Opened in error: the dual status it made with CP-12's plan is withdrawn by itself.
    _review("REVIEW-12", "2011-11-07",
            Step("2011-11-10", "cancel", "admin", {"cancel_reason": "opened_in_error"})),
    # Child protection conferences: a plan for a looked-after child (CH-01: dual status starts
    # by itself, ends at the review conference), no plan, a plan before the child becomes looked
    # after (CH-07: dual from then, until the child goes home), a long dual status (CH-03).
    _conference("CP-01", "2011-04-20",
                Step("2011-04-21", "schedule", "admin", {"conference_date": "2011-05-12"}),
                Step("2011-05-12", "hold_icpc", "cpc",
                     {"held_at": "2011-05-12T14:00", "plan_made": "true"}),
                Step("2011-05-13", "distribute_minutes", "admin"),
                Step("2011-05-19", "hold_core_group", "social_worker"),
                Step("2011-07-28", "hold_review", "cpc",
                     {"held_at": "2011-07-28T10:00", "plan_continues": "false"}),
                Step("2011-07-29", "distribute_minutes", "admin")),
    _conference("CP-05", "2011-07-04",
                Step("2011-07-27", "hold_icpc", "cpc",
                     {"held_at": "2011-07-27T11:00", "plan_made": "false"}),
                Step("2011-07-29", "distribute_minutes", "admin")),
    _conference("CP-07", "2011-11-14",
                Step("2011-11-16", "schedule", "admin", {"conference_date": "2011-12-01"}),
                Step("2011-12-01", "hold_icpc", "cpc",
                     {"held_at": "2011-12-01T10:00", "plan_made": "true"}),
                Step("2011-12-02", "distribute_minutes", "admin"),
                Step("2011-12-08", "hold_core_group", "social_worker"),
                Step("2012-02-23", "schedule", "admin", {"conference_date": "2012-02-28"}),
                Step("2012-02-28", "hold_review", "cpc",
                     {"held_at": "2012-02-28T10:00", "plan_continues": "true"}),
                Step("2012-02-29", "distribute_minutes", "admin")),
    _conference("CP-03", "2011-09-01",
                Step("2011-09-15", "hold_icpc", "cpc",
                     {"held_at": "2011-09-15T15:00", "plan_made": "true"}),
                Step("2011-09-16", "distribute_minutes", "admin"),
                Step("2011-10-03", "hold_core_group", "team_manager"),  # late: due 29 September
                Step("2011-12-05", "hold_review", "cpc",
                     {"held_at": "2011-12-05T10:00", "plan_continues": "true"}),
                Step("2011-12-06", "distribute_minutes", "admin")),
    _conference("CP-12", "2011-10-03",
                Step("2011-10-20", "hold_icpc", "cpc",
                     {"held_at": "2011-10-20T10:00", "plan_made": "true"}),
                Step("2011-10-21", "distribute_minutes", "admin"),
                Step("2011-11-01", "hold_core_group", "social_worker")),
    # A child on another council's plan moves here: the transfer-in conference within 15
    # working days of that council's notification continues the plan.
    _transfer("TRANSFER-10", "2012-01-16",
              Step("2012-01-18", "schedule", "admin", {"conference_date": "2012-02-02"}),
              Step("2012-02-02", "hold_conference", "cpc",
                   {"held_at": "2012-02-02T14:00", "plan_made": "true"}),
              Step("2012-02-03", "distribute_minutes", "admin")),
    # Dual status: three start by themselves (steps only); one typed in by hand for a child
    # whose conferences are held by another authority.
    _dual("DUAL-01", "2011-05-12",
          Step("2011-05-25", "agree_plan", "iro", {"single_plan_by": "2011-07-29"})),
    _dual("DUAL-03", "2011-09-15",
          Step("2012-01-10", "agree_plan", "cpc", {"single_plan_by": "2012-04-30"})),
    _dual("DUAL-07", "2012-01-09",
          Step("2012-01-20", "agree_plan", "cpc", {"single_plan_by": "2012-03-30"})),
    _dual("DUAL-09", "2012-01-09", auto=False),
)


@dataclass
class DemoResult:
    folder: Path
    db_url: str
    maildir: Path
    seconds: float
    cases: list[Any]
    emails: Counter[str]
    deadlines: Counter[str]
    refused: list[str]
    report: dict[str, Any] = field(default_factory=dict)  # the year's report --json
    report_file: Path | None = None
    labels: Labels = field(default_factory=Labels)  # what a person reads for the names

    def hints(self) -> list[str]:
        """The commands the summary suggests, each dated in the demo year (``--as-at``,
        ``--now``) so that it shows that year's figures, not today's, and spelled as the
        demo was run (``.venv/bin/icsflow`` after the README's install)."""
        run = f"{command_name()} --db {self.db_url}"
        end = LAST_DAY.isoformat()
        return [f"{run} list --as-at {end}",
                f"{run} list --overdue --as-at {end}",
                f"{run} show REVIEW-03   # a case by its reference",
                f"{run} child CH-03 --now {LAST_WORKING_MOMENT}   # one child across processes",
                f"{run} outbox",
                f"{run} report --as-at {end}",
                f"{run} report --as-at {end} --list lac_reviews.late",
                f"{command_name()} graph alert_dispute   # a mermaid diagram of a process"]

    def summary(self) -> str:
        by_definition: dict[str, Counter[str]] = {}
        for inst in self.cases:
            by_definition.setdefault(inst.definition, Counter())[inst.state] += 1
        children = {inst.child for inst in self.cases if inst.child}
        lines = [f"icsflow demo: {len(self.cases)} cases of {len(children)} children in the "
                 f"service's 2011-12 year replayed day by day ({FIRST_DAY} to {LAST_DAY}) in "
                 f"{self.seconds:.1f} s.", "", "Cases by state:"]
        lab = self.labels
        for name, states in by_definition.items():
            lines.append(f"  {lab.title(name)}: " + ", ".join(
                f"{lab.of(name, 'state', s)} {n}" for s, n in states.items()))
        dual = [i for i in self.cases if i.definition == "dual_status"]
        by_itself = [i for i in dual if i.history and i.history[0].role == "system"]
        ended = [i for i in dual if i.closed and i.history[-1].role == "system"]
        how = sorted(lab.of(i.definition, "state", i.state) for i in ended)
        lines += ["", f"Dual status started by itself for {len(by_itself)} of {len(dual)} "
                      f"children, and ended by itself for {len(ended)} "
                      f"({', '.join(how) or 'none'})."]
        lines += _report_lines(self.report, self.report_file)
        d = self.deadlines
        lines += ["", f"Deadlines: {d['met']} met on time, "
                      f"{d['breached'] + d['closed_late']} breached ({d['closed_late']} since "
                      f"answered or escalated, {d['breached']} still open), {d['live']} live, "
                      f"{d['cancelled']} cancelled.", "",
                  f"Emails delivered to {self.maildir}: {sum(self.emails.values())}"]
        lines += [f"  {humanize(name):<36} {n}" for name, n in self.emails.most_common()]
        if self.refused:
            lines += ["", "Scripted events the engine refused (as it would live):"]
            lines += [f"  {r}" for r in self.refused]
        lines += ["", "Look further (each on the demo year, as it stood on its last day):"]
        lines += [f"  {hint}" for hint in self.hints()]
        lines.append(f"  ls {self.maildir}/new   # one file per email; mutt -f {self.maildir}")
        return "\n".join(lines)


def _days() -> Iterator[date]:
    day = FIRST_DAY
    while day <= LAST_DAY:
        yield day
        day += timedelta(days=1)


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), LONDON)


@dataclass
class _Year:
    """The demo year being replayed: what each day starts and fires, and what it has done."""

    engine: Engine
    clock: FakeClock
    dispatcher: Dispatcher
    config: Config
    calendar: WorkingCalendar
    hours: OfficeHours
    starts: dict[str, list[DemoCase]] = field(default_factory=dict)
    steps: dict[str, list[tuple[DemoCase, Step]]] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for c in CASES:
            self.starts.setdefault(c.on, []).append(c)
            for s in c.steps:
                self.steps.setdefault(s.on, []).append((c, s))

    def replay(self, day: date) -> None:
        """One day as the service lives it: the morning tick, the digests, the day's new cases
        and events, the afternoon's mail."""
        from icsflow.workflow.daemon import queue_digests

        key = day.isoformat()
        self.clock.set(_at(day, 7))
        self.engine.tick(now=_at(day, 7))
        self.clock.set(_at(day, 9))
        queue_digests(dispatcher_sql(self.dispatcher), self.config, self.calendar, self.hours,
                      _at(day, 9))
        for c in self.starts.get(key, []):
            if not c.auto:
                self.clock.set(_at(day, 10))
                inst = self.engine.start(c.definition, ref=c.ref, data=c.data,
                                         actor=Actor(f"{c.role}-{c.ref.lower()}", c.role),
                                         at=_at(day, 10), child=c.child)
                self.ids[c.ref] = inst.id
        for c, s in self.steps.get(key, []):
            self.clock.set(_at(day, 11))
            self.fire(key, c, s, _at(day, 11))
        self.clock.set(_at(day, 16))
        self.dispatcher.dispatch_once(_at(day, 16))

    def fire(self, key: str, c: DemoCase, s: Step, at: datetime) -> None:
        from icsflow.workflow.errors import WorkflowError

        if c.ref not in self.ids:  # a case that started by itself: found by its child
            found = [i for i in self.engine.list(definition=c.definition, child=c.child)
                     if not i.closed]
            if not found:
                self.refused.append(f"{key} {c.ref} {s.event}: no open {c.definition} case "
                                    f"for child {c.child}")
                return
            self.ids[c.ref] = found[0].id
        try:
            self.engine.fire(self.ids[c.ref], s.event, Actor(f"{s.role}-{c.ref.lower()}", s.role),
                             data=s.data or None, at=at)
        except WorkflowError as exc:  # a refusal, shown in the summary as it would be live
            self.refused.append(f"{key} {c.ref} {s.event}: {exc}")


def _fresh(folder: Path) -> tuple[Path, str, Path]:
    """``folder`` made ready: its database and Maildir gone. (folder, database URL, Maildir)"""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    db_file = folder / "icsflow.db"
    for old in (db_file, Path(f"{db_file}-wal"), Path(f"{db_file}-shm")):
        old.unlink(missing_ok=True)
    shutil.rmtree(folder / "mail", ignore_errors=True)
    return folder, f"sqlite:///{db_file}", folder / "mail"


def _demo_config(db_url: str, maildir: Path) -> Config:
    """The defaults, with the demo's database, Maildir, directory and web address."""
    from icsflow.workflow.config import load_config

    base = load_config(None, env={})
    return replace(base, database_url=db_url, maildir=str(maildir), directory=DIRECTORY,
                   admin_address=f"icsflow.admin@{DOMAIN}",
                   smtp=replace(base.smtp, url=None, mail_from=f"icsflow@{DOMAIN}"),
                   digest=replace(base.digest, enabled=False),
                   web=replace(base.web, base_url=WEB_ADDRESS))


def _deadline_counts(cases: list[Instance]) -> Counter[str]:
    """Every deadline of the year by how it ended (met late counted apart)."""
    counts: Counter[str] = Counter()
    for inst in cases:
        for d in inst.deadline_list:
            status = d.status.value
            counts["closed_late" if status == "breached" and d.met_at is not None
                   else status] += 1
    return counts


def run_demo(folder: Path, *, echo: Callable[[str], None] = print) -> DemoResult:
    """Replay the demo year into ``folder`` (its database and Maildir are made anew)."""
    from icsflow.workflow.commands import engine_settings
    from icsflow.workflow.daemon import build_dispatcher, office_hours_from
    from icsflow.workflow.engine import Engine

    folder, db_url, maildir = _fresh(folder)
    config = _demo_config(db_url, maildir)
    calendar = WorkingCalendar()
    clock = FakeClock(_at(FIRST_DAY, 0))
    started = wallclock.perf_counter()
    engine = Engine.open(db=db_url, clock=clock, calendar=calendar, directory=DIRECTORY,
                         admin_address=config.admin_address, sender=config.smtp.mail_from,
                         settings=engine_settings(config))
    try:
        dispatcher, close_dispatcher = build_dispatcher(config, calendar=calendar, clock=clock)
    except BaseException:
        engine.close()
        raise
    year = _Year(engine, clock, dispatcher, config, calendar,
                 office_hours_from(config, calendar))
    echo(f"Replaying {len(CASES)} cases from {FIRST_DAY} to {LAST_DAY} into {folder} ...")
    try:
        for day in _days():
            year.replay(day)
        cases = engine.list()
        outbox = engine.outbox
        emails = Counter(m.template for m in (outbox.list() if outbox is not None else [])
                         if m.status == "sent")
        report = _write_report(engine, folder / "report.html")
    finally:
        close_dispatcher()
        engine.close()
    return DemoResult(folder, db_url, maildir, wallclock.perf_counter() - started, cases,
                      emails, _deadline_counts(cases), year.refused, report,
                      folder / "report.html", Labels(engine.definitions))


def _write_report(engine: Engine, path: Path) -> dict[str, Any]:
    """The year's report (``icsflow report --as-at LAST_DAY``): written as HTML, kept as JSON."""
    from icsflow.workflow.commands import sql_engine
    from icsflow.workflow.labels import Labels
    from icsflow.workflow.reports import Window, build_report, final_states, render

    window = Window.resolve(start=None, end=None, as_at=LAST_DAY, known_at=None,
                            today=LAST_DAY, tz=engine.calendar.tz)
    report = build_report(sql_engine(engine), window,
                          final_states=final_states(engine.definitions))
    path.write_text(render(report, "html", Labels(engine.definitions)), encoding="utf-8")
    return report.to_json()


def _report_lines(data: dict[str, Any], path: Path | None) -> list[str]:
    """The closing summary's figures, read from the report (not counted again here)."""
    if not data:
        return []
    a, r, c = data["alerts"], data["lac_reviews"], data["cp_conferences"]
    d = data["dual_status"]
    percent = r["percent_in_timescale"]
    months = ", ".join(f"{m[5:]}: {n}" for m, n in d["month_end"].items())
    return ["", f"The year's report (icsflow report, as at {data['as_at']}):",
            f"  Alerts raised {a['raised']} (previous year {a['raised_previous_year']}); "
            f"responses in time {a['responded_in_time']}, late {a['responded_late']}",
            f"  Looked-after reviews held {r['held']}, in timescale {r['in_timescale']}"
            + (f" ({percent:.1f} %)" if percent is not None else "")
            + f"; initial-review requests {r['requests']}, late {r['late_requests']}",
            f"  Conferences: initial {c['initial_held']} ({c['initial_in_timescale']} in "
            f"timescale), review {c['review_held']} ({c['review_in_timescale']}); minutes on "
            f"time {c['minutes_on_time']} of {c['minutes_due']}",
            f"  Dual status at month end: {months}",
            "  Chairs' caseloads: " + (", ".join(
                f"{k} {v}" for k, v in data["caseloads"]["chairs"].items()) or "none"),
            f"  The full report with charts: {path}"]


def dispatcher_sql(dispatcher: Dispatcher) -> SqlEngine:
    """The SQLAlchemy engine behind the dispatcher's outbox (digests are queued on it)."""
    from icsflow.storage.outbox import SqlOutbox

    outbox = dispatcher.outbox
    if not isinstance(outbox, SqlOutbox):  # build_dispatcher always makes one
        raise TypeError(f"demo: the dispatcher's outbox is a {type(outbox).__name__}, not the "
                        "SQL outbox the digests are queued on")
    return outbox.engine


__all__ = ["CASES", "DemoCase", "Step", "DemoResult", "run_demo"]
