"""Mapping profiles (``import --map MAP.yaml``): a source system's extract into the canonical
format, without anyone editing the spreadsheet.

Steps, applied to each source row in this order (every key optional; docs/import.md):

``columns``   rename source columns to ours (``Child ID: child``); others keep their name
``skip``      leave out rows whose column has one of the listed values (``legal_status: [V3]``)
``values``    map a column's values to ours (``legal_status: {C2: full care order}``);
              values not listed pass unchanged
``dates``     parse a column written in a local format (``"%d/%m/%Y %H:%M"``) into ISO
``split``     one date-time column into several: its ``date``, ``time`` and ``datetime`` parts
``set``       columns every row gets: literal text, or ``{column}`` templates
``rows``      one source row into several events: a list of ``set``-like items; an item's
              ``when`` names a column that must be non-empty, or ``{column: value(s)}``
``drop``      columns removed at the end (source columns the extract carries but we ignore)
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from icsflow.workflow.errors import ValidationError
from icsflow.workflow.transfer.table import RawRow, RawTable

KEYS = ("name", "description", "columns", "skip", "values", "dates", "split", "set", "rows",
        "drop")
_SPLIT_PARTS = ("date", "time", "datetime")
_FIELD = re.compile(r"\{([^{}]+)\}")


@dataclass(frozen=True)
class RowTemplate:
    """One event a source row becomes: column templates and an optional condition."""

    values: Mapping[str, str]
    when: Mapping[str, tuple[str, ...]] | str | None = None


@dataclass(frozen=True)
class MappingProfile:
    """A parsed mapping profile; ``apply`` turns a source table into a canonical one."""

    source: str
    name: str = ""
    columns: Mapping[str, str] = field(default_factory=dict)
    skip: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    dates: Mapping[str, str] = field(default_factory=dict)
    split: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    set: Mapping[str, str] = field(default_factory=dict)
    rows: tuple[RowTemplate, ...] = ()
    drop: tuple[str, ...] = ()

    def apply(self, table: RawTable) -> RawTable:
        """The canonical table; a cell the profile cannot read names the source line."""
        header = [self.columns.get(h, h) for h in table.header if h]
        out: list[RawRow] = []
        for raw in table.rows:
            cells = {self.columns.get(k, k): v for k, v in raw.cells.items()}
            if any(_text(cells.get(col)) in skipped for col, skipped in self.skip.items()):
                continue
            try:
                self._convert(cells)
            except ValueError as exc:
                raise ValidationError(f"{table.source}:{raw.line}: {exc} (mapping profile "
                                      f"{self.source})", field="map") from None
            for template in self.rows or (RowTemplate({}),):
                if not _holds(template.when, cells):
                    continue
                row = dict(cells)
                row.update(self._fill(self.set, cells, table.source, raw.line))
                row.update(self._fill(template.values, cells, table.source, raw.line))
                for col in self.drop:
                    row.pop(col, None)
                out.append(RawRow(raw.line, row))
        for extra in (*self._split_columns(), *self.set, *(k for t in self.rows
                                                           for k in t.values)):
            if extra not in header:
                header.append(extra)
        header = [h for h in header if h not in self.drop]
        return RawTable(table.source, tuple(header), tuple(out))

    def _split_columns(self) -> list[str]:
        return [target for parts in self.split.values() for target in parts.values()]

    def _convert(self, cells: dict[str, Any]) -> None:
        for col, mapping in self.values.items():
            text = _text(cells.get(col))
            if text in mapping:
                cells[col] = mapping[text]
        for col, fmt in self.dates.items():
            value = cells.get(col)
            if value is None or isinstance(value, (date, datetime)) or not _text(value):
                continue
            try:
                parsed = datetime.strptime(_text(value), fmt)
            except ValueError:
                raise ValueError(f"column {col!r}: {_text(value)!r} does not match the date "
                                 f"format {fmt!r}") from None
            has_time = any(code in fmt for code in ("%H", "%I", "%M"))
            cells[col] = parsed.isoformat() if has_time else parsed.date().isoformat()
        for col, parts in self.split.items():
            value = cells.get(col)
            if value is None or not _text(value):
                continue
            if isinstance(value, datetime):
                dt = value
            elif isinstance(value, date):
                dt = datetime.combine(value, datetime.min.time())
            else:
                try:
                    dt = datetime.fromisoformat(_text(value))
                except ValueError:
                    raise ValueError(f"column {col!r}: {_text(value)!r} is not a date-time "
                                     "to split (give its format under 'dates')") from None
            pieces = {"date": dt.date().isoformat(), "time": dt.time().isoformat("minutes"),
                      "datetime": dt.isoformat()}
            for part, target in parts.items():
                cells[target] = pieces[part]

    def _fill(self, templates: Mapping[str, str], cells: Mapping[str, Any], source: str,
              line: int) -> dict[str, str]:
        filled: dict[str, str] = {}
        for col, template in templates.items():
            try:
                filled[col] = string.Formatter().vformat(
                    template, (), _Cells(cells)) if "{" in template else template
            except KeyError as exc:
                raise ValidationError(f"{source}:{line}: the mapping template {template!r} "
                                      f"names column {exc.args[0]!r}, which the extract "
                                      "lacks", field="map") from None
        return filled


class _Cells(dict[str, Any]):
    def __init__(self, cells: Mapping[str, Any]) -> None:
        super().__init__({k: _text(v) for k, v in cells.items()})


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def _holds(when: Mapping[str, tuple[str, ...]] | str | None, cells: Mapping[str, Any]) -> bool:
    if when is None:
        return True
    if isinstance(when, str):
        return bool(_text(cells.get(when)))
    return all(_text(cells.get(col)) in allowed for col, allowed in when.items())


def load_profile(path: str | Path) -> MappingProfile:
    """Read a mapping profile (safe YAML); a bad one is one line naming the file and key."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationError(f"{p}: cannot read the mapping profile: {exc.strerror}",
                              field="map") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ValidationError(f"{p}{line}: not valid YAML: "
                              f"{getattr(exc, 'problem', None) or exc}", field="map") from None
    return profile_from(doc, str(p))


def profile_from(doc: object, source: str) -> MappingProfile:
    """A profile from its parsed YAML document."""
    def bad(message: str) -> ValidationError:
        return ValidationError(f"{source}: {message}", field="map")

    if not isinstance(doc, dict):
        raise bad("a mapping profile is a YAML mapping with keys " + ", ".join(KEYS))
    unknown = [k for k in doc if k not in KEYS]
    if unknown:
        raise bad(f"unknown key {unknown[0]!r} (known: {', '.join(KEYS)})")

    def text_map(key: str, value: object) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise bad(f"{key}: expected a mapping of names to text")
        return {str(k): "" if v is None else str(v) for k, v in value.items()}

    def values_list(key: str, value: object) -> tuple[str, ...]:
        if isinstance(value, (list, tuple)):
            return tuple(str(v) for v in value)
        if isinstance(value, (str, int, float, bool)):
            return (str(value),)
        raise bad(f"{key}: expected a value or a list of values")

    skip = {str(k): values_list(f"skip.{k}", v) for k, v in (doc.get("skip") or {}).items()}
    values_doc = doc.get("values") or {}
    if not isinstance(values_doc, dict):
        raise bad("values: expected a mapping of columns to {source value: our value}")
    values = {str(col): text_map(f"values.{col}", m) for col, m in values_doc.items()}
    split_doc = doc.get("split") or {}
    if not isinstance(split_doc, dict):
        raise bad("split: expected {column: {date: COLUMN, time: COLUMN, datetime: COLUMN}}")
    split: dict[str, dict[str, str]] = {}
    for col, parts in split_doc.items():
        mapping = text_map(f"split.{col}", parts)
        wrong = [p for p in mapping if p not in _SPLIT_PARTS]
        if wrong:
            raise bad(f"split.{col}: unknown part {wrong[0]!r} (parts: "
                      f"{', '.join(_SPLIT_PARTS)})")
        split[str(col)] = mapping
    rows: list[RowTemplate] = []
    rows_doc = doc.get("rows") or []
    if not isinstance(rows_doc, list):
        raise bad("rows: expected a list of events, each a mapping of columns")
    for index, item in enumerate(rows_doc, start=1):
        if not isinstance(item, dict):
            raise bad(f"rows[{index}]: expected a mapping of columns")
        when_doc = item.get("when")
        when: Mapping[str, tuple[str, ...]] | str | None
        if when_doc is None or isinstance(when_doc, str):
            when = when_doc
        elif isinstance(when_doc, dict):
            when = {str(k): values_list(f"rows[{index}].when.{k}", v)
                    for k, v in when_doc.items()}
        else:
            raise bad(f"rows[{index}].when: a column name or {{column: value(s)}}")
        rows.append(RowTemplate(text_map(f"rows[{index}]", {k: v for k, v in item.items()
                                                             if k != "when"}), when))
    drop = doc.get("drop") or []
    if not isinstance(drop, list):
        raise bad("drop: expected a list of columns")
    return MappingProfile(source=source, name=str(doc.get("name") or ""),
                          columns=text_map("columns", doc.get("columns")), skip=skip,
                          values=values, dates=text_map("dates", doc.get("dates")),
                          split=split, set=text_map("set", doc.get("set")),
                          rows=tuple(rows), drop=tuple(str(d) for d in drop))


def template_columns(template: str) -> Sequence[str]:
    """Columns a ``{column}`` template reads (docs and checks)."""
    return _FIELD.findall(template)


__all__ = ["MappingProfile", "RowTemplate", "load_profile", "profile_from", "KEYS"]
