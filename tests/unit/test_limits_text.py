"""Texts refused for control characters: the printable fast path answers as the full rule
(``_control_by_character``, which looks up every character)."""

import pytest

from icsflow.definitions.loader import load_text
from icsflow.workflow.errors import ValidationError
from icsflow.workflow.limits import (
    _control,
    _control_by_character,
    check_actor,
    check_text,
    subject_fields,
)

CODE_POINTS = [*range(0, 0x3100), *range(0x3100, 0x110000, 97), 0x2028, 0x2029, 0x85, 0xA0,
               0x200B, 0xFEFF, 0xE000, 0x1F600]


@pytest.mark.parametrize("allow_newlines", [True, False])
def test_every_character_is_judged_as_by_the_full_rule(allow_newlines: bool) -> None:
    for cp in CODE_POINTS:
        if 0xD800 <= cp <= 0xDFFF:  # lone surrogates: not text
            continue
        text = f"a{chr(cp)}b"
        assert _control(text, allow_newlines=allow_newlines) == \
            _control_by_character(text, allow_newlines=allow_newlines), hex(cp)


@pytest.mark.parametrize("bad", ["clerk\n1", "clerk\x00", "a\u2028b", "a\x85b"])
def test_a_control_character_in_an_actor_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="control character"):
        check_actor(bad, "clerk")


def test_a_note_may_hold_line_breaks_but_not_nul() -> None:
    check_text("line one\nline two\ttabbed", "note")
    with pytest.raises(ValidationError, match="NUL"):
        check_text("a\x00b", "note")


DEFINITION = """
name: {name}
version: 1
title: T
description: d
roles: {{clerk: {{}}, desk: {{directory: true}}}}
start_roles: [clerk]
initial: open
data: {{concern: {{type: text}}, other: {{type: text}}}}
states: {{open: {{}}, done: {{final: true}}}}
transitions:
  - {{event: close, from: open, to: done, roles: [clerk], notify: [{{to: [desk], template: t}}]}}
templates:
  t: {{subject: "{subject}", body: "b"}}
"""


def test_subject_fields_are_each_definitions_own() -> None:
    one = load_text(DEFINITION.format(name="one", subject="About {{ data.concern }}"), "one.yaml")
    two = load_text(DEFINITION.format(name="two", subject="About {{ data.other }}"), "two.yaml")
    assert subject_fields(one) == frozenset({"concern"})
    assert subject_fields(two) == frozenset({"other"})
    assert subject_fields(one) == frozenset({"concern"})  # remembered, still its own
