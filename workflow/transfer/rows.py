"""The canonical import format: one row per event, checked against the loaded definitions.

Required columns ``ref, definition, event, at, actor, role``; optional ``child, family, note,
id``; every other column is a data field of the row's definition (an empty cell: not given).
Everything that can be checked without replaying (columns, definitions, events, roles allowed
anywhere for that event, dates, field types) is checked here, row by row, so that every bad
row is reported at once as ``FILE:LINE: message``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

from icsflow.definitions.model import SYSTEM_ROLE, DataField, Definition, FieldType
from icsflow.workflow.clock import LONDON
from icsflow.workflow.data import convert_value
from icsflow.workflow.errors import ValidationError
from icsflow.workflow.transfer.table import RawRow, RawTable

if TYPE_CHECKING:
    from icsflow.definitions.registry import DefinitionSet

REQUIRED = ("ref", "definition", "event", "at", "actor", "role")
OPTIONAL = ("child", "family", "note", "id")
CANONICAL = REQUIRED + OPTIONAL
START = "start"


@dataclass(frozen=True)
class EventRow:
    """One event of the extract, converted: ``data`` holds stored (JSON) field values."""

    source: str
    line: int
    ref: str
    definition: str
    event: str
    at: datetime
    actor: str
    role: str
    data: Mapping[str, Any] = field(default_factory=dict)
    child: str | None = None
    family: str | None = None
    note: str | None = None
    row_id: str | None = None
    key: str = ""  # ledger key: "id:<id>" or "sha256:<hash>[#n]"

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    @property
    def case(self) -> tuple[str, str]:
        return (self.definition, self.ref)


@dataclass(frozen=True)
class Problem:
    """A bad row (or header): ``FILE:LINE: message``."""

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def parse_at(value: object) -> datetime:
    """An ISO date (its local midnight) or date-time (Europe/London when no offset); Excel's
    own dates and date-times too."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime.combine(value, time(0))
    else:
        text = _text(value)
        if not text:
            raise ValueError("'at' is empty: give an ISO date or date-time, e.g. 2012-05-28 "
                             "or 2012-05-28T14:00")
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"'at' {text!r} is not an ISO date or date-time (e.g. 2012-05-28 "
                             "or 2012-05-28T14:00+01:00)") from None
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        dt = dt.replace(tzinfo=LONDON)
    return dt


def _cell_for_field(f: DataField, value: object) -> object:
    """Excel keeps a date as a date-time at midnight; a date field takes its date."""
    if f.type is FieldType.DATE and isinstance(value, datetime) and value.time() == time(0):
        return value.date()
    if f.type in (FieldType.STRING, FieldType.TEXT, FieldType.EMAIL, FieldType.ENUM):
        return _text(value)
    return value


def _content_hash(row: EventRow) -> str:
    blob = json.dumps([row.definition, row.ref, row.event, row.at.isoformat(), row.actor,
                       row.role, row.child, row.family, row.note,
                       sorted((k, v) for k, v in row.data.items())],
                      sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def parse_rows(table: RawTable, definitions: DefinitionSet,
               ) -> tuple[list[EventRow], list[Problem]]:
    """The table's rows as ``EventRow``s and every problem found without replaying."""
    problems: list[Problem] = []
    missing = [c for c in REQUIRED if c not in table.header]
    if missing:
        problems.append(Problem(table.source, 1, "missing required column(s) "
                                + ", ".join(missing) + " (required: " + ", ".join(REQUIRED)
                                + ")"))
        return [], problems
    extra_columns = [h for h in table.header if h and h not in CANONICAL]
    known_anywhere = {f.name for d in definitions for f in d.data}
    for col in extra_columns:
        if col not in known_anywhere:
            problems.append(Problem(table.source, 1, f"unknown column {col!r}: not a canonical "
                                    "column nor a data field of any definition (rename or drop "
                                    "it with a --map profile)"))
    if problems:
        return [], problems
    rows: list[EventRow] = []
    seen: dict[str, int] = {}
    for raw in table.rows:
        try:
            row = parse_row(raw, table.source, extra_columns, definitions)
        except ValidationError as exc:
            problems.append(Problem(table.source, raw.line, str(exc)))
            continue
        if row.row_id:
            key = f"id:{row.row_id}"
            if key in seen:
                problems.append(Problem(table.source, raw.line, f"id {row.row_id!r} is used "
                                        f"again (first at line {seen[key]})"))
                continue
        else:
            base = f"sha256:{_content_hash(row)}"
            key = base
            n = 1
            while key in seen:  # identical rows stay distinct, in file order
                n += 1
                key = f"{base}#{n}"
        seen[key] = raw.line
        rows.append(_with_key(row, key))
    return rows, problems


def _with_key(row: EventRow, key: str) -> EventRow:
    from dataclasses import replace

    return replace(row, key=key)


def parse_row(raw: RawRow, source: str, data_columns: Sequence[str],
              definitions: DefinitionSet) -> EventRow:
    """One row, or ``ValidationError`` with the first thing wrong in it."""
    cells = raw.cells
    values = {c: _text(cells.get(c)) for c in REQUIRED}
    for c in REQUIRED:
        if c != "at" and not values[c]:
            raise ValidationError(f"required column {c!r} is empty", field=c)
    name = values["definition"]
    try:
        defn = definitions.latest(name)
    except KeyError:
        raise ValidationError(f"unknown definition {name!r} (loaded: "
                              f"{', '.join(definitions.names()) or 'none'})",
                              field="definition") from None
    event = values["event"]
    role = values["role"]
    _check_event(defn, event, role)
    try:
        at = parse_at(cells.get("at"))
    except ValueError as exc:
        raise ValidationError(str(exc), field="at") from None
    data: dict[str, Any] = {}
    for col in data_columns:
        value = cells.get(col)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        f = defn.field_map.get(col)
        if f is None:
            raise ValidationError(f"column {col!r} is not a data field of {defn.name} (its "
                                  f"fields: {', '.join(sorted(defn.field_map)) or 'none'}); "
                                  "leave the cell empty for this definition", field=col)
        data[col] = convert_value(f, _cell_for_field(f, value))
    return EventRow(source=source, line=raw.line, ref=values["ref"], definition=defn.name,
                    event=event, at=at, actor=values["actor"], role=role, data=data,
                    child=_text(cells.get("child")) or None,
                    family=_text(cells.get("family")) or None,
                    note=_text(cells.get("note")) or None,
                    row_id=_text(cells.get("id")) or None)


def _check_event(defn: Definition, event: str, role: str) -> None:
    if event == START:
        if role not in defn.start_roles:
            raise ValidationError(f"role {role!r} may not start {defn.name} (allowed: "
                                  f"{', '.join(defn.start_roles) or 'none'})", field="role")
        return
    transitions = [t for t in defn.transitions if t.event == event]
    if not transitions:
        raise ValidationError(f"unknown event {event!r} for {defn.name} (its events: start, "
                              f"{', '.join(defn.events)})", field="event")
    roles = sorted({r for t in transitions for r in t.roles})
    if not roles:
        raise ValidationError(f"event {event!r} of {defn.name} is fired by its timers only; "
                              "leave it out of the extract (the replay fires it)", field="event")
    if role == SYSTEM_ROLE or role not in roles:
        raise ValidationError(f"role {role!r} may not fire {event!r} of {defn.name} (allowed: "
                              f"{', '.join(roles)})", field="role")


def sort_rows(rows: Iterable[EventRow]) -> list[EventRow]:
    """Apply order: by ``at``, ties in file order (``sorted`` is stable)."""
    return sorted(rows, key=lambda r: r.at)


__all__ = ["EventRow", "Problem", "REQUIRED", "OPTIONAL", "CANONICAL", "START", "parse_rows",
           "parse_row", "parse_at", "sort_rows"]
