"""``caseload_fields``: the fields a text counts with ``caseload(...)``, which every engine asks
of every text of every definition when it opens (so the answer must be cheap and exact)."""

from __future__ import annotations

from icsflow.definitions.expressions import caseload_fields
from icsflow.definitions.memo import memos


def test_literal_field_names_are_found_in_expressions_and_templates() -> None:
    assert caseload_fields("caseload('iro_id', data.iro_id) < 70") == {"iro_id"}
    assert caseload_fields("{{ caseload(\"cpc_id\", data.cpc_id) }} and "
                           "{{ caseload('iro_id', x) }}", expression=False) == {"cpc_id", "iro_id"}


def test_texts_that_cannot_count_give_nothing() -> None:
    assert caseload_fields("data.concern and entered_at") == frozenset()
    assert caseload_fields("caseload(field_name, 1) > 3") == frozenset()  # not a literal
    assert caseload_fields("caseload('iro_id', ") == frozenset()  # does not parse
    assert caseload_fields("Dear {{ data.name }}", expression=False) == frozenset()
    # The word alone, not a call: parsed, and nothing counted.
    assert caseload_fields("'caseload' in data.notes") == frozenset()


def test_answers_are_remembered_in_a_bounded_named_memo() -> None:
    caseload_fields("caseload('allocated_to', data.allocated_to) > 1")
    [state] = [m for m in memos() if m.name == "expressions.caseload_fields"]
    assert 1 <= state.size <= state.limit == 512
