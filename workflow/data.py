"""Case data by the definition's field types: convert what callers give, store JSON, read back.

Dates are stored as ISO strings (JSON has no date) and handed to expressions as real ``date`` /
``datetime`` objects, so ``data.review_date > deadlines.review_due`` compares dates, not text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from icsflow.definitions.memo import memoized
from icsflow.definitions.model import DataField, Definition, FieldType
from icsflow.workflow.clock import LONDON
from icsflow.workflow.errors import ValidationError
from icsflow.workflow.instance import JsonValue

_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


@memoized("data.is_email", 4096)
def is_email(text: str) -> bool:
    """One rule for every address we send to: case data, the directory, the admin address
    (remembered: every email checks its recipients, mostly the same few addresses)."""
    return bool(_EMAIL.match(text))


def stored_date(value: object) -> date | None:
    """A stored date or date-time value (ISO text as the store keeps it, or a date) as its
    date; None for no value or text that is not one (reports and returns read old rows)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


def _bad(f: DataField, value: object, expected: str) -> ValidationError:
    return ValidationError(f"field {f.name!r} must be {expected}, not {value!r}", field=f.name)


def convert_value(f: DataField, value: object) -> str | int | bool | None:
    """One value to its stored (JSON) form; ``ValidationError`` names the field and the form."""
    if value is None:
        return None
    t = f.type
    if t in (FieldType.STRING, FieldType.TEXT):
        if isinstance(value, (dict, list, tuple, set)):
            raise _bad(f, value, "text")
        return str(value)
    if t is FieldType.DATE:
        if isinstance(value, datetime):
            raise _bad(f, value, "a date YYYY-MM-DD (not a date-time)")
        if isinstance(value, date):
            return value.isoformat()
        try:
            return date.fromisoformat(str(value).strip()).isoformat()
        except ValueError:
            raise _bad(f, value, "a date YYYY-MM-DD, e.g. 2012-05-28") from None
    if t is FieldType.DATETIME:
        if isinstance(value, datetime):
            dt = value
        elif isinstance(value, date):
            raise _bad(f, value, "an ISO date-time, e.g. 2012-05-28T14:00+01:00")
        else:
            try:
                dt = datetime.fromisoformat(str(value).strip())
            except ValueError:
                raise _bad(f, value, "an ISO date-time, e.g. 2012-05-28T14:00+01:00") from None
        if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
            dt = dt.replace(tzinfo=LONDON)
        return dt.isoformat()
    if t is FieldType.INT:
        if isinstance(value, bool):
            raise _bad(f, value, "a whole number")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise _bad(f, value, "a whole number") from None
    if t is FieldType.BOOL:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise _bad(f, value, "true/false (or yes/no)")
    if t is FieldType.EMAIL:
        text = str(value).strip()
        if not _EMAIL.match(text):
            raise _bad(f, value, "an email address like name@example.org")
        return text
    if t is FieldType.ENUM:
        text = str(value)
        if text not in f.values:
            raise ValidationError(f"field {f.name!r} must be one of {', '.join(f.values)}, "
                                  f"not {value!r}", field=f.name)
        return text
    raise ValidationError(f"field {f.name!r} has unknown type {t!r}", field=f.name)


def convert(defn: Definition, values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Convert given values; unknown fields are refused with the declared ones."""
    result: dict[str, Any] = {}
    for name, value in (values or {}).items():
        f = defn.field_map.get(name)
        if f is None:
            known = ", ".join(sorted(defn.field_map)) or "none"
            raise ValidationError(f"unknown field {name!r} for {defn.name} (declared fields: "
                                  f"{known})", field=name)
        result[name] = convert_value(f, value)
    return result


def require(defn: Definition, data: Mapping[str, Any], names: Iterable[str], what: str) -> None:
    """Refuse when a required field is missing or empty."""
    for name in names:
        if data.get(name) in (None, ""):
            raise ValidationError(f"field {name!r} is required {what}", field=name)


def split_assignments(pairs: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings (the CLI's ``--set``) as a mapping, values still text."""
    raw: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"--set {pair!r}: write KEY=VALUE", field="set")
        raw[key.strip()] = value
    return raw


def parse_assignments(defn: Definition, pairs: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings converted by the definition's field types."""
    return convert(defn, split_assignments(pairs))


def to_python(defn: Definition, stored: Mapping[str, Any]) -> dict[str, Any]:
    """Stored JSON data to Python values for expressions: every declared field is present
    (None when unset) so ``data.X`` never fails on a declared field."""
    result: dict[str, Any] = dict.fromkeys(defn.field_map)  # declared first, in order
    result.update(stored)  # then the others, in stored order
    for name, kind in defn.time_fields:  # a planned transition converts several times
        value = result[name]
        if value is not None and isinstance(value, str):
            try:
                result[name] = (date.fromisoformat(value) if kind is FieldType.DATE
                                else datetime.fromisoformat(value))
            except ValueError:
                pass
    return result


def to_json_value(value: object) -> JsonValue:
    """A recorded expression's result in a JSON-storable form."""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    return str(value)


__all__ = ["convert", "convert_value", "require", "parse_assignments", "to_python",
           "to_json_value"]
