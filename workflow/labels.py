"""What a person reads for a process's names, wherever only the names are at hand.

Emails get labels from their own definition (``workflow.context``); a digest, a report or the
command line's human output holds rows of ``(definition, state, deadline)`` names read from the
database. ``Labels`` answers those from the loaded definitions (the latest version of each:
versions of one process share their labels, or the newest's words are the ones to read), and a
name no definition knows reads as itself with spaces ("review_due" -> "Review due"). Machine
outputs (``--json``, CSV, the API) keep the names; only text for a person goes through here.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from icsflow.definitions.model import Definition, humanize

Kind = Literal["state", "event", "deadline", "field", "role"]


class Labels:
    """Labels of the given definitions, by process name (the highest version wins)."""

    def __init__(self, definitions: Iterable[Definition] = ()) -> None:
        self._latest: dict[str, Definition] = {}
        for d in definitions:
            if d.name not in self._latest or d.version > self._latest[d.name].version:
                self._latest[d.name] = d

    @classmethod
    def load(cls, definitions_dir: str | Path | None = None) -> Labels:
        """From the configured folder (the shipped processes when None); no labels, only
        spaced names, when the folder cannot be read (a digest must still go out)."""
        from icsflow.definitions.registry import load_default

        try:
            return cls(load_default(definitions_dir))
        except Exception:  # noqa: BLE001 - labels are a courtesy; the names still read
            return cls()

    def title(self, definition: str) -> str:
        """The process's title ("IRO Alert and dispute resolution")."""
        found = self._latest.get(definition)
        return found.label if found is not None else humanize(definition)

    def of(self, definition: str, kind: Kind, name: str) -> str:
        """What a person reads for ``name`` (a state, event, deadline, field or role)."""
        found = self._latest.get(definition)
        return found.label_for(kind, name) if found is not None else humanize(name)

    def value(self, definition: str, field: str, value: object) -> str:
        """What a person reads for an enum field's value (the value itself when unlabelled)."""
        found = self._latest.get(definition)
        text = "" if value is None else str(value)
        return found.value_label(field, text) if found is not None else text


__all__ = ["Kind", "Labels"]
