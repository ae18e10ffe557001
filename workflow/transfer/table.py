"""Read an extract (CSV or XLSX) into a header and numbered rows, nothing interpreted yet.

Line numbers are what a manager sees in the spreadsheet: the header is line 1 and the first
row line 2 (a CSV cell with a line break keeps its row's first line). Cells stay as the reader
gives them: text from CSV, and from XLSX numbers, booleans, dates and date-times as Excel holds
them, so a date formatted as a date in Excel arrives as a date, not as a serial number. The one
change to a CSV cell: the apostrophe ``icsflow export`` puts before a cell a spreadsheet would
run as a formula is taken off again (``workflow/csv_cells.py``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from icsflow.workflow.csv_cells import restore_cell
from icsflow.workflow.errors import ValidationError


@dataclass(frozen=True)
class RawRow:
    """One extract row: its line in the file and its cells by column name."""

    line: int
    cells: dict[str, Any]


@dataclass(frozen=True)
class RawTable:
    """A file's header and rows, with the name used in ``FILE:LINE`` messages."""

    source: str
    header: tuple[str, ...]
    rows: tuple[RawRow, ...]


def read_table(path: str | Path) -> RawTable:
    """CSV (UTF-8, a byte order mark tolerated) or ``.xlsx`` (the first sheet)."""
    p = Path(path)
    if not p.is_file():
        raise ValidationError(f"{p}: no such file", field="file")
    if p.suffix.lower() in (".xlsx", ".xlsm"):
        return _read_xlsx(p)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{p}: not UTF-8 text (byte {exc.start}); save the extract as "
                              "CSV UTF-8, or give the .xlsx file", field="file") from None
    return read_csv_text(text, str(p))


def read_csv_text(text: str, source: str) -> RawTable:
    """The CSV reader behind ``read_table`` (tests and mapping profiles feed text directly)."""
    text = text.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header_cells = next(reader)
    except StopIteration:
        raise ValidationError(f"{source}:1: the file is empty: a header row is required",
                              field="file") from None
    header = _header(header_cells, source)
    rows: list[RawRow] = []
    line = reader.line_num + 1
    for cells in reader:
        start = line
        line = reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            extra = [c for c in cells[len(header):] if c.strip()]
            if extra:
                raise ValidationError(f"{source}:{start}: {len(cells)} cells but the header "
                                      f"names {len(header)} columns", field="file")
        rows.append(RawRow(start, {h: (restore_cell(cells[i]) if i < len(cells) else "")
                                   for i, h in enumerate(header) if h}))
    return RawTable(source, header, tuple(rows))


def _header(cells: list[Any], source: str) -> tuple[str, ...]:
    header = tuple("" if c is None else str(c).strip().removeprefix("\ufeff") for c in cells)
    while header and not header[-1]:
        header = header[:-1]
    seen: set[str] = set()
    for name in header:
        if name and name in seen:
            raise ValidationError(f"{source}:1: column {name!r} appears twice in the header",
                                  field="file")
        seen.add(name)
    if not any(header):
        raise ValidationError(f"{source}:1: the header row is empty", field="file")
    return header


def _read_xlsx(p: Path) -> RawTable:
    from openpyxl import load_workbook

    try:
        book = load_workbook(p, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a bad file
        raise ValidationError(f"{p}: not a readable .xlsx workbook ({type(exc).__name__}: "
                              f"{exc})", field="file") from None
    try:
        sheet = book.worksheets[0]
        rows_iter: Iterator[tuple[Any, ...]] = sheet.iter_rows(values_only=True)
        try:
            header = _header(list(next(rows_iter)), str(p))
        except StopIteration:
            raise ValidationError(f"{p}:1: the sheet is empty: a header row is required",
                                  field="file") from None
        rows: list[RawRow] = []
        for offset, values in enumerate(rows_iter):
            cells = list(values)
            if not any(c is not None and str(c).strip() for c in cells):
                continue
            rows.append(RawRow(offset + 2, {h: (cells[i] if i < len(cells) else None)
                                            for i, h in enumerate(header) if h}))
        return RawTable(str(p), header, tuple(rows))
    finally:
        book.close()


__all__ = ["RawRow", "RawTable", "read_table", "read_csv_text"]
