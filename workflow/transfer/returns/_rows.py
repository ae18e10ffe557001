"""Derived rows: events of the canonical import format made from a return's facts.

Every row carries a stable id (``903:<CHILD>:<period start>:review:<date>:hold``) so that the
import ledger recognises it in any later extract, the ``FILE:LINE`` of the fact it came from
(a refusal names the return's line, not an invented one), and the system importer identity as
its actor. Rows of one instant are ordered endings first, then by the order they were made,
so a period ending on the day a plan starts never makes a dual-status case of no days.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from icsflow.workflow.clock import LONDON
from icsflow.workflow.data import convert_value
from icsflow.workflow.engine import Engine
from icsflow.workflow.transfer.returns.records import Notice, ReturnProblem, Where
from icsflow.workflow.transfer.rows import EventRow

ENDING, ONGOING = 0, 1


def midnight(day: date) -> datetime:
    """A return's date as the instant it is replayed at: its local midnight."""
    return datetime.combine(day, time(0), tzinfo=LONDON)


@dataclass
class Derived:
    """What a return turns into: rows to import, problems, and notices (facts icsflow holds
    differently, reported and left alone)."""

    rows: list[tuple[tuple[datetime, int, int], EventRow]] = field(default_factory=list)
    problems: list[ReturnProblem] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    unplaced_notes: int = 0

    def extend(self, other: Derived) -> None:
        self.rows.extend(other.rows)
        self.problems.extend(other.problems)
        self.notices.extend(other.notices)
        self.unplaced_notes += other.unplaced_notes

    def ordered(self) -> list[EventRow]:
        return [row for _key, row in sorted(self.rows, key=lambda k: k[0])]

    def problem(self, where: Where, message: str, child: str) -> None:
        self.problems.append(ReturnProblem(where.source, where.line, message, child))

    def notice(self, where: Where, child: str, message: str) -> None:
        self.notices.append(Notice(where, child, message))


class Maker:
    """Makes the rows of one return: the loaded definitions, the importer identity and the
    address that stands for the staff a return does not name."""

    def __init__(self, engine: Engine, *, actor: str, contact: str) -> None:
        self.engine = engine
        self.actor = actor
        self.contact = contact
        self._seq = 0

    def has_field(self, definition: str, name: str) -> bool:
        """Whether the loaded (latest) definition declares ``name``: a field added in a later
        version (``date_of_birth``) is passed only where it exists."""
        try:
            return name in self.engine.definition(definition).field_map
        except Exception:  # noqa: BLE001 - an unloaded definition has no fields
            return False

    def has_event(self, definition: str, event: str) -> bool:
        """Whether the loaded (latest) definition has ``event`` (``record_review`` came with
        ``initial_review`` version 3)."""
        try:
            return event in self.engine.definition(definition).events
        except Exception:  # noqa: BLE001 - an unloaded definition has no events
            return False

    def add(self, out: Derived, *, definition: str, ref: str, child: str, event: str,
            day: date, role: str, where: Where, row_id: str,
            data: Mapping[str, Any] | None = None, note: str | None = None,
            phase: int = ONGOING) -> None:
        defn = self.engine.definition(definition)
        converted = {k: convert_value(defn.field_map[k], v) for k, v in (data or {}).items()
                     if v is not None}
        at = midnight(day)
        row = EventRow(source=where.source, line=where.line, ref=ref, definition=definition,
                       event=event, at=at, actor=self.actor, role=role, data=converted,
                       child=child, note=note, row_id=row_id, key=f"id:{row_id}")
        self._seq += 1
        out.rows.append(((at, phase, self._seq), row))


__all__ = ["Derived", "Maker", "midnight", "ENDING", "ONGOING"]
