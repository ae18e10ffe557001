"""What the pages write for the engine's ids (``workflow/web/labels.py``): labels where the
definition gives them, the name with spaces where it does not, people's addresses untouched."""

from __future__ import annotations

from icsflow.definitions.model import humanize
from icsflow.workflow.engine import load_definitions
from icsflow.workflow.web.labels import Labels

LABELS = Labels(load_definitions(None))
ALERT = LABELS.definition("alert_dispute")


def test_ids_read_as_the_definition_labels_them() -> None:
    assert ALERT is not None
    assert LABELS.process("alert_dispute") == ALERT.label
    assert LABELS.deadline("alert_dispute", "response_due") == \
        ALERT.label_for("deadline", "response_due")
    assert LABELS.process("no_such_process") == "No such process"
    assert LABELS.state("no_such_process", "awaiting_allocation") == "Awaiting allocation"


def test_values_read_as_words() -> None:
    assert ALERT is not None
    labelled = ALERT.value_label("category", "plan_progress")
    assert LABELS.value("alert_dispute", "category", "plan_progress") == \
        (labelled if labelled != "plan_progress" else "Plan progress")
    assert LABELS.value("alert_dispute", "responded_late", True) == "yes"
    assert LABELS.value("alert_dispute", "iro_email", "iro.01@council.example") == \
        "iro.01@council.example"


def test_the_engine_lines_read_in_words_and_addresses_stay_whole() -> None:
    assert ALERT is not None
    event = ALERT.label_for("event", "escalate")
    line = LABELS.happening("alert_dispute", "escalation", "escalate: alert -> stage1")
    assert line == (f"{event}: {ALERT.label_for('state', 'alert')} to "
                    f"{ALERT.label_for('state', 'stage1')}")
    assert LABELS.happening_detail("alert_dispute", "notification",
                                   "iro.01@council.example, team_manager@example.invalid") \
        == "iro.01@council.example, team_manager@example.invalid"
    assert LABELS.note("alert_dispute", "timer response_breached") == \
        "By timer: " + ALERT.label_for("deadline", "response_breached")
    signal = LABELS.note("dual_status", "signal cp_plan_started from cp_conference "
                         "b920a8a9-0000-4000-8000-000000000000")
    assert "b920a8a9" not in signal and "cp_plan_started" not in signal
    assert LABELS.prose("alert_dispute", "answers response_due, then waits") == \
        f"answers {ALERT.label_for('deadline', 'response_due')}, then waits"
    assert LABELS.plain("tm (team_manager) may not read") == \
        f"tm ({LABELS.role('team_manager')}) may not read"


def test_a_figure_reads_as_its_section_and_measure() -> None:
    assert LABELS.figure("alerts.by_category.care_plan") == \
        "IRO Alerts and dispute resolution: By category, Care plan"
    assert LABELS.figure("unknown_section") == humanize("unknown_section")
