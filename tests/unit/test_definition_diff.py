"""definitions/diff.py: what changed between two versions, in a manager's words."""

from __future__ import annotations

from dataclasses import replace

from icsflow.definitions.diff import diff_definitions
from icsflow.definitions.loader import load_text
from icsflow.definitions.registry import examples_dir

# The automatically escalating Alert ladder (the first shipped alert_dispute, kept as an example).
TEXT = (examples_dir() / "alert_auto_escalation.yaml").read_text(encoding="utf-8")


def _version(text: str, version: int = 2):  # noqa: ANN202
    return load_text(text.replace("version: 1", f"version: {version}", 1), "v.yaml")


def test_same_process_other_version_has_no_differences() -> None:
    assert diff_definitions(_version(TEXT, 1), _version(TEXT)) == []


def test_a_shorter_response_reads_as_a_sentence() -> None:
    new = _version(TEXT.replace("after: 10 working days", "after: 5 working days"))
    [change] = diff_definitions(_version(TEXT, 1), new)
    assert str(change) == "response_due: 10 working days -> 5 working days"
    assert (change.kind, change.name, change.change) == ("deadline", "response_due", "changed")


def test_added_and_removed_states_timers_and_reworded_templates() -> None:
    text = TEXT.replace("  - name: decision_reminder\n", "  - name: decision_nudge\n")
    text = text.replace("Reminder: IRO Alert {{ ref }} needs", "Please answer IRO Alert {{ ref }}:")
    text = text.replace("Please decide within 5 working days whether",
                        "Please decide soon whether")
    text = text.replace("  withdrawn: {final: true, description: The IRO withdrew the Alert}\n",
                        "  withdrawn: {final: true, description: The IRO withdrew the Alert}\n"
                        "  paused: {description: Waiting for court}\n")
    text = text.replace("transitions:\n", "transitions:\n"
                        "  - {event: pause, from: alert, to: paused, roles: [iro]}\n"
                        "  - {event: resume, from: paused, to: alert, roles: [iro]}\n", 1)
    old, new = _version(TEXT, 1), _version(text)
    words = [str(d) for d in diff_definitions(old, new)]
    assert "state paused added: final no; description Waiting for court" in words
    assert "timer decision_nudge added: when at due of decision_due; does " \
           "notify:decision_reminder" in words
    assert "timer decision_reminder removed" in words
    assert "event pause added: moves alert -> paused; who may fire it iro" in words
    assert any(w.startswith("response_reminder: subject Reminder: IRO Alert") for w in words)
    assert "response_received: body reworded" in words


def test_roles_and_start_roles_and_events() -> None:
    old = _version(TEXT, 1)
    new = replace(old, version=2, start_roles=("iro",),
                  transitions=tuple(t for t in old.transitions if t.event != "withdraw"))
    words = [str(d) for d in diff_definitions(old, new)]
    assert "who may start a case: admin, iro -> iro" in words
    assert "event withdraw removed" in words
