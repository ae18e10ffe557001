"""What moving running cases needs from storage (migrate, calendar re-projection), as a port.

Kept apart from ``ports.Store`` so the engine's hot path is untouched: the SQL store offers it
as ``store.changes`` (``storage.changes.SqlChangeStore``). Each ``apply`` is one transaction:
a case is either moved (state, version, deadlines, timers, history) or left as it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from icsflow.workflow.ports import Change, Snapshot


class ChangeStore(Protocol):
    def open_snapshots(self, definition: str | None = None) -> Sequence[Snapshot]:
        """Every open case (of ``definition``, if given), with history, deadlines and pending
        timers, by case reference."""
        ...

    def apply(self, change: Change, *, definition_version: int | None = None) -> None:
        """Write ``change`` in its own transaction (``ConcurrencyConflict`` if the case moved
        since it was read), setting the case's definition version when given."""
        ...

    def apply_each(self, changes: Sequence[Change], *,
                   definition_version: int | None = None) -> list[bool]:
        """``apply`` for each change in turn, each its own transaction: True where written,
        False where the case changed meanwhile; any other error stops the run there."""
        ...

    def calendar_baseline(self) -> tuple[str, dict[str, Any], datetime] | None:
        """The calendar open deadlines were last counted on: (fingerprint, its settings:
        country, closures, extra days, holidays release; when recorded), or None."""
        ...

    def save_calendar_baseline(self, fingerprint: str, settings: Mapping[str, Any],
                               at: datetime) -> None: ...


__all__ = ["ChangeStore"]
