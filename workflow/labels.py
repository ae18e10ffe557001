"""What a person reads for a process's names, wherever only the names are at hand.

Emails get labels from their own definition (``workflow.context``); a digest, a report or the
command line's human output holds rows of ``(definition, state, deadline)`` names read from the
database. ``Labels`` answers those from the loaded definitions (the latest version of each:
versions of one process share their labels, or the newest's words are the ones to read), and a
name no definition knows reads as itself with spaces ("review_due" -> "Review due"). Machine
outputs (``--json``, CSV, the API) keep the names; only text for a person goes through here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Self

from icsflow.definitions.model import Definition, LabelKind, humanize

Kind = LabelKind


_IDENT = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")


class Labels:
    """Labels of the given definitions, by process name (its highest version unless a
    version is given: a label changed in a new version shows on that version's cases)."""

    def __init__(self, definitions: Iterable[Definition] = ()) -> None:
        self._versions: dict[tuple[str, int], Definition] = {}
        self._latest: dict[str, Definition] = {}
        for d in definitions:
            self._versions[(d.name, d.version)] = d
            if d.name not in self._latest or d.version > self._latest[d.name].version:
                self._latest[d.name] = d

    @classmethod
    def load(cls, definitions_dir: str | Path | None = None) -> Self:
        """From the configured folder (the shipped processes when None); no labels, only
        spaced names, when the folder cannot be read (a digest must still go out)."""
        from icsflow.definitions.registry import load_default

        try:
            return cls(load_default(definitions_dir))
        except Exception:  # noqa: BLE001 - labels are a courtesy; the names still read
            return cls()

    def definition(self, process: str, version: int | None = None) -> Definition | None:
        if version is not None and (process, version) in self._versions:
            return self._versions[(process, version)]
        return self._latest.get(process)

    def title(self, definition: str) -> str:
        """The process's title ("IRO Alert and dispute resolution")."""
        found = self._latest.get(definition)
        return found.label if found is not None else humanize(definition)

    def of(self, definition: str, kind: Kind, name: str | None,
           version: int | None = None) -> str:
        """What a person reads for ``name`` (a state, event, deadline, field or role)."""
        if not name:
            return ""
        found = self.definition(definition, version)
        return found.label_for(kind, name) if found is not None else humanize(name)

    def value(self, definition: str, field: str, value: object,
              version: int | None = None) -> str:
        """A data value as a person reads it: an enum value by its label, yes/no for
        booleans, an unlabelled enum id with spaces; anything else as it is."""
        if value is None:
            return ""
        if isinstance(value, bool):
            return "yes" if value else "no"
        text = str(value)
        found = self.definition(definition, version)
        shown = found.value_label(field, text) if found is not None else text
        return humanize(shown) if shown == text and _IDENT.match(text) else shown


__all__ = ["Kind", "Labels"]
