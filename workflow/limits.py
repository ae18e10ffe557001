"""The limits every door checks, decided once.

Why one module: a bad value must be refused where it comes in, in one clear line, the same on
SQLite and PostgreSQL, never found later as a traceback, a database error or an email that can
never be sent. The limits are:

- **Dates**: the working-day calendar's range (``FIRST_DAY``..``LAST_DAY``). A deadline can only
  be counted inside it, so an event time, a tick's ``now``, a date field and a definition's
  durations must stay inside it too.
- **Lengths**: what the database columns hold (a case reference and an actor id 200 characters,
  a role 100), checked before the database so that SQLite (which does not enforce them) and
  PostgreSQL (which does) answer alike; free text is bounded too.
- **Characters**: no NUL anywhere (PostgreSQL cannot store it); no control character (CR/LF
  above all) in a case reference, an identifier or a data value that a template puts in an
  email's subject, where it would break the header and dead-letter every email of the case.
- **Numbers**: a definition version and a whole-number field fit the database's integers.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from icsflow.definitions.durations import Duration, Unit
from icsflow.definitions.memo import Memo
from icsflow.definitions.model import Definition, FieldType
from icsflow.workflow.calendar import FIRST_DAY, LAST_DAY
from icsflow.workflow.clock import LONDON
from icsflow.workflow.errors import DefinitionError, ValidationError
from icsflow.workflow.instance import HistoryEntry

MAX_REF = 200  # instances.ref
MAX_ACTOR = 200  # history.actor_id
MAX_ROLE = 100  # history.role
MAX_TEXT = 20_000  # a note, a text field: bounded so one value cannot swell every read
MAX_VERSION = 2**31 - 1  # definitions.version / instances.definition_version (INTEGER)
MAX_INT = 2**53  # a whole-number field: exact in JSON everywhere
RANGE = f"{FIRST_DAY.isoformat()}..{LAST_DAY.isoformat()}"

_SPAN_DAYS = (LAST_DAY - FIRST_DAY).days
# The longest duration that can be counted inside the calendar, per unit.
_LONGEST = {Unit.DAYS: _SPAN_DAYS, Unit.WORKING_DAYS: _SPAN_DAYS, Unit.WEEKS: _SPAN_DAYS // 7,
            Unit.MONTHS: (LAST_DAY.year - FIRST_DAY.year + 1) * 12,
            Unit.HOURS: _SPAN_DAYS * 24}
_SUBJECT_FIELD = re.compile(r"data\s*(?:\.\s*([A-Za-z_]\w*)|\[\s*['\"]([^'\"]+)['\"]\s*\])")


# -- dates --------------------------------------------------------------------------------------

def in_range(day: date) -> bool:
    """True when ``day`` (a date, or a date-time's date in Europe/London, where deadlines are
    counted) lies in the calendar's range."""
    if isinstance(day, datetime):
        if not FIRST_DAY <= day.date() <= LAST_DAY:
            return False
        if day.tzinfo is None:
            return True
        try:
            day = day.astimezone(LONDON)
        except OverflowError:
            return False
        return FIRST_DAY <= day.date() <= LAST_DAY
    return FIRST_DAY <= day <= LAST_DAY


def check_date(value: date | datetime, what: str) -> None:
    """Refuse a date or date-time outside the calendar's range, naming ``what`` it is."""
    if not in_range(value):
        raise ValidationError(f"{what}: {value.isoformat()} is outside the supported dates "
                              f"({RANGE}, the working-day calendar's range)", field=what)


def check_event_order(history: Sequence[HistoryEntry], at: datetime, instance_id: str) -> None:
    """An event is recorded after the case's last recorded event: a backdated answer must not
    rewrite what already happened (``respond --at 2011-01-01`` on a case started 2011-12-19)."""
    if not history:
        return
    last = max(history, key=lambda h: h.at)
    if at < last.at:
        raise ValidationError(
            f"at: {at.isoformat()} is before the case's last recorded event ({last.event} at "
            f"{last.at.isoformat()}); events are recorded in the order they happened, so give "
            f"a time on or after it", field="at", instance_id=instance_id)


# -- text ---------------------------------------------------------------------------------------

def _control(text: str, *, allow_newlines: bool) -> str | None:
    if text.isprintable():  # no character of Other or Separator but space: none of these
        return None
    return _control_by_character(text, allow_newlines=allow_newlines)


def _control_by_character(text: str, *, allow_newlines: bool) -> str | None:
    """The rule: NUL, or a character of category Cc, Zl or Zp (line breaks and tabs allowed
    where ``allow_newlines``)."""
    for c in text:
        if c == "\x00":
            return "NUL"
        if allow_newlines and c in "\n\r\t":
            continue
        if unicodedata.category(c) in ("Cc", "Zl", "Zp"):
            return repr(c)
    return None


def check_text(value: str, what: str, *, limit: int = MAX_TEXT, header: bool = False,
               instance_id: str | None = None) -> None:
    """Refuse a text over ``limit`` characters, with NUL, or (``header``: it reaches an email
    header) with any control character such as CR or LF."""
    if len(value) > limit:
        raise ValidationError(f"{what}: {len(value)} characters is too long (at most {limit})",
                              field=what, instance_id=instance_id)
    bad = _control(value, allow_newlines=not header)
    if bad is not None:
        where = "it would break the email headers" if header else "it cannot be stored"
        raise ValidationError(f"{what}: contains the control character {bad}; {where}",
                              field=what, instance_id=instance_id)


# -- identifiers --------------------------------------------------------------------------------
# A case reference, an actor, a child or family id and a user name name someone or something a
# person will look up, audit or be mailed about. One that renders like another ("аlice" with a
# Cyrillic a beside "alice"), hides characters (zero-width, bidi overrides such as U+202E) or is
# empty would let one person pass for another in a log, a list or an audit row. So identifiers
# are normalised (NFKC: a full-width "Ｃ-１" is "C-1") and refused if they hold an invisible or
# control character or letters of more than one script.

_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _script(c: str) -> str:
    """The script of a letter: the first word of its Unicode name (LATIN, CYRILLIC, GREEK...),
    which is what a reader's eye tells apart; the standard library has no script property."""
    return unicodedata.name(c, "UNKNOWN").split(" ", 1)[0]


def identifier(value: object, what: str, *, limit: int = MAX_REF, spaces: bool = True,
               instance_id: str | None = None) -> str:
    """``value`` as a normalised identifier, or ``ValidationError`` naming ``what`` and the
    offending character. ``spaces``: a single inner space is allowed (case references)."""
    text = unicodedata.normalize("NFKC", str(value) if value is not None else "").strip()
    if not text:
        raise ValidationError(f"{what}: an identifier is required (it cannot be empty)",
                              field=what, instance_id=instance_id)
    if len(text) > limit:
        raise ValidationError(f"{what}: {len(text)} characters is too long (at most {limit})",
                              field=what, instance_id=instance_id)
    for c in text:
        if unicodedata.category(c) in _INVISIBLE or (c.isspace() and (c != " " or not spaces)):
            name = unicodedata.name(c, "unnamed character")
            kind = "an invisible or control character" \
                if unicodedata.category(c) in _INVISIBLE else "a space"
            raise ValidationError(f"{what}: {text[:40]!r} holds {kind} (U+{ord(c):04X} {name}); "
                                  "identifiers are plain visible text", field=what,
                                  instance_id=instance_id)
    scripts = sorted({_script(c) for c in text if c.isalpha()})
    if len(scripts) > 1:
        raise ValidationError(f"{what}: {text[:40]!r} mixes letters of several scripts "
                              f"({', '.join(s.title() for s in scripts)}); one that looks like "
                              "another identifier is refused, so use one script",
                              field=what, instance_id=instance_id)
    return text


def case_reference(ref: object) -> str:
    """A case reference as stored: normalised, visible, one script, at most ``MAX_REF``."""
    return identifier(ref, "ref", limit=MAX_REF)


def actor_id(actor: str) -> str:
    """Who acts (a web user's name, a staff number): normalised, no spaces."""
    return identifier(actor, "actor", limit=MAX_ACTOR, spaces=False)


def check_case_reference(ref: str) -> None:
    case_reference(ref)


def check_actor(actor: str, role: str) -> None:
    actor_id(actor)
    check_text(role, "role", limit=MAX_ROLE, header=True)


# id(definition) -> (definition, its subject fields); the definition is kept so that its id
# stays its own (a definition is immutable: its templates never change).
_SUBJECT_FIELDS: Memo[int, tuple[Definition, frozenset[str]]] = Memo("limits.subject_fields",
                                                                    256)


def subject_fields(defn: Definition) -> frozenset[str]:
    """Data fields any of ``defn``'s templates writes into an email subject (a header);
    found once per definition (every ``fire`` and ``start`` checks its data against them)."""
    found = _SUBJECT_FIELDS.get(id(defn))
    if found is not None and found[0] is defn:
        return found[1]
    names: set[str] = set()
    for template in defn.templates:
        for m in _SUBJECT_FIELD.finditer(template.subject):
            names.add(m.group(1) or m.group(2))
    return _SUBJECT_FIELDS.put(id(defn), (defn, frozenset(names)))[1]


def check_data(defn: Definition, data: Mapping[str, Any],
               instance_id: str | None = None) -> None:
    """Converted case data: dates in range, whole numbers in range, text bounded, and no
    control character in a value that a subject line carries."""
    in_subject = subject_fields(defn)
    for name, value in data.items():
        f = defn.field_map.get(name)
        if f is None or value is None:
            continue
        what = f"field {name!r}"
        if f.type in (FieldType.DATE, FieldType.DATETIME):
            parsed = (date.fromisoformat(value) if f.type is FieldType.DATE
                      else datetime.fromisoformat(value)) if isinstance(value, str) else value
            if isinstance(parsed, date):
                check_date(parsed, what)
        elif f.type is FieldType.INT and isinstance(value, int) and abs(value) > MAX_INT:
            raise ValidationError(f"{what}: {str(value)[:20]}... is too large (at most "
                                  f"{MAX_INT} either way)", field=name, instance_id=instance_id)
        elif isinstance(value, str):
            check_text(value, what, header=name in in_subject, instance_id=instance_id)


# -- definitions --------------------------------------------------------------------------------

def _duration_problem(d: Duration | None) -> str | None:
    if d is None:
        return None
    longest = _LONGEST.get(d.unit)
    if longest is not None and d.amount > longest:
        return (f"{d} is longer than the working-day calendar ({RANGE}) can count; at most "
                f"{longest} {d.unit.value}")
    return None


def definition_problems(defn: Definition) -> list[str]:
    """FILE:LINE problems that would only show when a case runs: a version the database
    cannot hold, a duration longer than the calendar."""
    problems: list[str] = []
    if not 1 <= defn.version <= MAX_VERSION:
        problems.append(f"{defn.source}: version {defn.version} is out of range "
                        f"(1..{MAX_VERSION})")
    for deadline in defn.deadlines:
        for rule in deadline.rules:
            bad = _duration_problem(rule.offset)
            if bad:
                problems.append(f"{rule.source}: deadline {deadline.name}: {bad}")
    for timer in defn.timers:
        for d in (timer.offset, timer.repeat_every):
            bad = _duration_problem(d)
            if bad:
                problems.append(f"{timer.source}: timer {timer.name}: {bad}")
    return problems


def check_definitions(definitions: Sequence[Definition]) -> None:
    problems = [p for d in definitions for p in definition_problems(d)]
    if problems:
        raise DefinitionError(problems)


__all__ = ["FIRST_DAY", "LAST_DAY", "RANGE", "MAX_REF", "MAX_ACTOR", "MAX_ROLE", "MAX_TEXT",
           "MAX_VERSION", "in_range", "check_date", "check_event_order", "check_text",
           "identifier", "case_reference", "actor_id",
           "check_case_reference", "check_actor", "check_data", "subject_fields",
           "definition_problems", "check_definitions"]
