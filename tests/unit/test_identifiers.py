"""Identifiers (case references, actors, child and family ids, user names) are normalised and
refused when they could pass for another or hide characters (``limits.identifier``)."""

from __future__ import annotations

import pytest

from icsflow.workflow import limits
from icsflow.workflow.errors import ValidationError


@pytest.mark.parametrize(("given", "stored"), [
    ("C-1", "C-1"), ("  C-1 ", "C-1"), ("Ｃ－１", "C-1"), ("ﬁle-1", "file-1"),
    ("Case 12", "Case 12"), ("Ωμέγα-3", "Ωμέγα-3")])
def test_an_identifier_is_stored_normalised(given: str, stored: str) -> None:
    assert limits.identifier(given, "ref") == stored


@pytest.mark.parametrize(("given", "words"), [
    ("", "cannot be empty"), ("   ", "cannot be empty"), (None, "cannot be empty"),
    ("C-1\u202e", "U+202E RIGHT-TO-LEFT OVERRIDE"), ("al\u200bice", "U+200B ZERO WIDTH SPACE"),
    ("C\x00-1", "U+0000"), ("C-1\r\nBcc: x", "U+000D"), ("\ufeffC-1", "U+FEFF"),
    ("\u0430lice", "mixes letters of several scripts (Cyrillic, Latin)"),
    ("x" * 201, "201 characters is too long")])
def test_an_identifier_that_could_pass_for_another_is_refused(given: str, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        limits.identifier(given, "ref")
    assert str(info.value).startswith("ref: ") and words in str(info.value)


def test_an_actor_or_child_id_holds_no_space() -> None:
    with pytest.raises(ValidationError, match="holds a space"):
        limits.actor_id("iro 1")
    assert limits.identifier("Case 1", "ref") == "Case 1"
