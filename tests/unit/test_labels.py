"""Labels: what a person reads for a state, event, deadline, field, role or enum value."""

from __future__ import annotations

import pytest

from icsflow.definitions.errors import DefinitionLoadError
from icsflow.definitions.loader import load_text
from icsflow.definitions.model import humanize

LABELLED = """
name: alert
version: 1
title: IRO Alert
roles:
  iro: {label: Chair, address: iro_email}
  team_manager: {address: tm_email}
data:
  iro_email: {type: email, required: true}
  tm_email: {type: email, label: Team manager's email}
  outcome:
    type: enum
    values: [agreed, not_agreed]
    labels: {not_agreed: Not agreed}
initial: open
states:
  open: {label: Waiting for the team manager}
  done: {final: true}
transitions:
  - event: respond
    label: Team manager responds
    from: open
    to: done
    roles: [team_manager]
    set: {outcome: optional}
  - event: respond
    label: A second wording, never read
    from: done
    roles: [team_manager]
deadlines:
  response_due:
    label: Response due
    live_in: [open]
    anchor: entry
    after: 10 working days
"""


def test_labels_are_read_where_given_and_names_read_as_words_elsewhere() -> None:
    d = load_text(LABELLED, "alert.yaml")
    assert d.label == "IRO Alert"
    assert d.label_for("role", "iro") == "Chair"
    assert d.label_for("role", "team_manager") == "Team manager"
    assert d.label_for("field", "tm_email") == "Team manager's email"
    assert d.label_for("field", "iro_email") == "Iro email"
    assert d.label_for("state", "open") == "Waiting for the team manager"
    assert d.label_for("state", "done") == "Done"
    assert d.label_for("event", "respond") == "Team manager responds"  # the first one given
    assert d.label_for("deadline", "response_due") == "Response due"
    assert d.value_label("outcome", "not_agreed") == "Not agreed"
    assert d.value_label("outcome", "agreed") == "agreed"


def test_a_label_for_a_value_the_field_does_not_have_is_refused_with_its_line() -> None:
    text = LABELLED.replace("labels: {not_agreed: Not agreed}", "labels: {maybe: Perhaps}")
    with pytest.raises(DefinitionLoadError) as err:
        load_text(text, "alert.yaml")
    assert "alert.yaml:" in str(err.value) and "'maybe'" in str(err.value)
    assert "agreed, not_agreed" in str(err.value)


def test_a_label_that_is_not_text_is_refused() -> None:
    with pytest.raises(DefinitionLoadError) as err:
        load_text(LABELLED.replace("{label: Chair,", "{label: [Chair],"), "alert.yaml")
    assert "label of role 'iro'" in str(err.value)


@pytest.mark.parametrize(("name", "words"), [("review_due", "Review due"), ("x", "X"),
                                             ("stage_1", "Stage 1")])
def test_humanize(name: str, words: str) -> None:
    assert humanize(name) == words
