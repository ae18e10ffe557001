"""The shipped processes speak the service's words (issue 28, item 1): every state, event,
deadline, data field, role and enum value has a ``label:``, and an email's context reads them,
states the due date with the working days left, and links to the case only when the web page's
address is configured."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from icsflow.definitions.model import Definition
from icsflow.definitions.registry import DefinitionSet
from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.context import case_url, due_words, functions, label_names

SHIPPED = DefinitionSet.load_default()
LATEST = [SHIPPED.latest(name) for name in SHIPPED.names()]


def _unlabelled(defn: Definition) -> list[str]:
    missing = [f"state {s.name}" for s in defn.states if not s.label]
    events = {t.event for t in defn.transitions}
    labelled = {t.event for t in defn.transitions if t.label}
    missing += [f"event {e}" for e in sorted(events - labelled)]
    missing += [f"deadline {d.name}" for d in defn.deadlines if not d.label]
    missing += [f"field {f.name}" for f in defn.data if not f.label]
    missing += [f"role {r.name}" for r in defn.roles if not r.label]
    for f in defn.data:
        values = dict(f.value_labels)
        missing += [f"value {f.name}={v}" for v in (f.values or ()) if v not in values]
    return missing


@pytest.mark.parametrize("defn", LATEST, ids=lambda d: d.name)
def test_every_name_a_person_reads_has_a_label(defn: Definition) -> None:
    assert _unlabelled(defn) == []


def test_labels_are_the_services_words() -> None:
    alert = SHIPPED.latest("alert_dispute")
    review = SHIPPED.latest("initial_review")
    assert alert.label_for("state", "stage1") == "Stage 1: service manager"
    assert alert.label_for("role", "iro") == "Chair"
    assert alert.label_for("role", "team_manager") == "Team manager"
    assert review.label_for("deadline", "review_due") == "Review due"
    assert review.label_for("event", "distribute_decisions") == "Decisions sent"
    assert alert.value_label("category", "plan_progress") == "Progress of the care plan"


def test_due_dates_read_with_the_working_days_left() -> None:
    format_due = functions(WorkingCalendar())["format_due"]
    assert format_due(date(2012, 7, 3), 5) == "Tuesday 3 July 2012 (5 working days left)"
    assert format_due(date(2012, 7, 3), 0) == "Tuesday 3 July 2012 (due today)"
    assert format_due(date(2012, 7, 3), -1) == "Tuesday 3 July 2012 (1 working day overdue)"
    assert format_due(date(2012, 7, 3)) == "Tuesday 3 July 2012"
    assert due_words(2) == "2 working days left"


def test_an_email_links_to_the_case_only_when_the_web_address_is_set() -> None:
    assert case_url(None, "abc") == "" and case_url("", "abc") == ""
    assert case_url("https://icsflow.council.example/", "abc") == \
        "https://icsflow.council.example/cases/abc"
    names = label_names(SHIPPED.latest("alert_dispute"), state="stage1",
                        previous="alert_responded", event="escalate", url="")
    assert names["state_label"] == "Stage 1: service manager"
    assert names["previous_state_label"] == "Alert answered: Chair to decide"
    assert names["event_label"] == "Escalate to the next stage"
    assert names["label"]("deadline", "formal_due") == "Formal stages due to end"
    with pytest.raises(ValueError, match="label kind"):
        names["label"]("template", "escalated")


@pytest.mark.parametrize("base_url", [None, "https://icsflow.council.example"])
def test_the_escalation_email_says_what_is_due_and_asked_and_links_when_it_can(
        tmp_path: Path, base_url: str | None) -> None:
    from icsflow.workflow import Actor, Engine
    from icsflow.workflow.clock import LONDON, FakeClock

    at = datetime(2012, 1, 10, 11, tzinfo=LONDON)
    settings = {"web_base_url": base_url} if base_url else None
    with Engine.open(db=f"sqlite:///{tmp_path / 'e.db'}", clock=FakeClock(at),
                     directory={"iro_service_manager": ["ism@council.example"]},
                     settings=settings) as engine:
        case = engine.start("alert_dispute", ref="A-1", actor=Actor("iro-1", "iro"), at=at,
                            data={"iro_email": "iro@council.example", "concern": "Plan drift",
                                  "team_manager_email": "tm@council.example",
                                  "service_manager_email": "sm@council.example"})
        engine.fire(case.id, "escalate", Actor("iro-1", "iro"), at=at)
        [email] = [m for m in engine.outbox.list() if m.template == "escalated"]
    assert email.subject == ('Case A-1: the Alert was escalated to Stage 1: service manager; '
                             "a response is due by Tuesday 17 January 2012")
    assert "by Tuesday 17 January 2012 (5 working days left)" in email.body
    assert "Asked of the service manager: respond to the Chair" in email.body
    assert "Contact: the Chair, iro@council.example." in email.body
    link = f"Open the case: {base_url}/cases/{case.id}"
    assert (link in email.body) is bool(base_url)
    assert "http" not in email.body or base_url
