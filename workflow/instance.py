"""Value types the engine returns: immutable snapshots, safe to hand to any caller or thread."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, TypeAlias

# A value as JSON holds it: what ``json.loads`` gives back, and what a JSON column, a
# ``--json`` output or a config file's parsed value is made of. Case data, history changes and
# outbox payloads cross between the core and storage in this shape (the one alias for all of
# them: storage may import this module, see tests/unit/test_layering.py).
JsonValue: TypeAlias = "dict[str, JsonValue] | list[JsonValue] | str | int | float | bool | None"


class DeadlineStatus(StrEnum):
    LIVE = "live"
    MET = "met"
    BREACHED = "breached"
    CANCELLED = "cancelled"
    MARKER = "marker"  # a date the case tracks (monitoring from, a birthday): never due


class TimerStatus(StrEnum):
    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"
    FAILED = "failed"  # gave up after repeated errors; last_error says why


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    REPLAYED = "replayed"  # queued by an import's replay: recorded, never sent (import --send)


@dataclass(frozen=True)
class Actor:
    """Who fires an event, and in which role (the role decides what they may do)."""

    id: str
    role: str


SYSTEM_ACTOR = Actor("system", "system")


@dataclass(frozen=True)
class HistoryEntry:
    """One transition as it happened: ``at`` is when it really happened, ``recorded_at`` when
    it was written (they differ for backdated events and timer catch-up)."""

    event: str
    from_state: str | None
    to_state: str
    actor: str
    role: str
    at: datetime
    recorded_at: datetime
    note: str | None = None
    changes: Mapping[str, Any] = field(default_factory=dict)
    # Timers this transition cancelled before they fired (name, due time): why a reminder
    # that was planned never went out is read here.
    cancelled_timers: tuple[tuple[str, datetime], ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.event, "from": self.from_state, "to": self.to_state,
               "actor": self.actor, "role": self.role, "at": self.at.isoformat(),
               "note": self.note, "recorded_at": self.recorded_at.isoformat(),
               "changes": dict(self.changes)}
        if self.cancelled_timers:
            out["cancelled_timers"] = [{"name": n, "due_at": d.isoformat()}
                                       for n, d in self.cancelled_timers]
        return out


@dataclass(frozen=True)
class DeadlineInfo:
    """A deadline with its status; ``due_at`` is the breach instant (next local midnight after
    ``due`` for date deadlines, the exact time for hour deadlines)."""

    name: str
    due: date
    due_at: datetime
    status: DeadlineStatus
    exact: bool = False
    met_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Still counting: live, or breached and not yet met (or a marker not yet left)."""
        return self.status is DeadlineStatus.LIVE or (
            self.status in (DeadlineStatus.BREACHED, DeadlineStatus.MARKER)
            and self.met_at is None)

    @property
    def marker(self) -> bool:
        """A date tracked, never due: not overdue, not met, not breached."""
        return self.status is DeadlineStatus.MARKER

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "due": self.due.isoformat(), "due_at": self.due_at.isoformat(),
                "status": self.status.value, "exact": self.exact,
                "met_at": self.met_at.isoformat() if self.met_at else None}


@dataclass(frozen=True)
class TimerInfo:
    name: str
    due_at: datetime
    action: str
    status: TimerStatus = TimerStatus.PENDING
    deadline: str | None = None
    state: str | None = None
    occurrence: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "due_at": self.due_at.isoformat(), "action": self.action,
                "status": self.status.value, "deadline": self.deadline, "state": self.state,
                "occurrence": self.occurrence}


@dataclass(frozen=True)
class Instance:
    """One case's process as stored: ``deadlines`` maps each active deadline to its due date."""

    id: str
    definition: str
    version: int
    ref: str
    state: str
    data: Mapping[str, Any]
    deadline_list: tuple[DeadlineInfo, ...]
    timers: tuple[TimerInfo, ...]
    history: tuple[HistoryEntry, ...]
    row_version: int = 1
    created_at: datetime | None = None
    closed_at: datetime | None = None
    child: str | None = None  # the child's identifier (case-management system), if any
    family: str | None = None  # the family's identifier, if any
    started_at: datetime | None = None

    @property
    def deadlines(self) -> dict[str, date]:
        """The active deadlines' due dates (markers, dates tracked but never due, apart)."""
        return {d.name: d.due for d in self.deadline_list if d.active and not d.marker}

    @property
    def markers(self) -> dict[str, date]:
        """The dates the case tracks (dual status prolonged from, a birthday): never due."""
        return {d.name: d.due for d in self.deadline_list if d.active and d.marker}

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    def to_json(self) -> dict[str, Any]:
        """The DESIGN ``show --json`` shape (plus added keys)."""
        return {
            "id": self.id, "definition": self.definition, "version": self.version,
            "ref": self.ref, "child": self.child, "family": self.family,
            "state": self.state, "data": dict(self.data),
            "deadlines": {k: v.isoformat() for k, v in self.deadlines.items()},
            "markers": {k: v.isoformat() for k, v in self.markers.items()},
            "timers": [t.to_json() for t in self.timers],
            "history": [h.to_json() for h in self.history],
            "deadline_details": [d.to_json() for d in self.deadline_list],
            "row_version": self.row_version,
            "closed": self.closed,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "started_at": self.started_at.isoformat() if self.started_at else None,
        }


@dataclass
class TickResult:
    """What one ``tick`` did; ``skipped`` timers fired an event no longer allowed."""

    fired: int = 0
    skipped: int = 0
    failed: int = 0
    conflicts: int = 0
    breached: int = 0
    queued: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        return {"fired": self.fired, "skipped": self.skipped, "failed": self.failed,
                "conflicts": self.conflicts, "breached": self.breached, "queued": self.queued,
                **self.extra}


__all__ = ["JsonValue", "Actor", "SYSTEM_ACTOR", "DeadlineStatus", "TimerStatus", "OutboxStatus",
           "HistoryEntry", "DeadlineInfo", "TimerInfo", "Instance", "TickResult"]
