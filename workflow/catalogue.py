"""The definitions a running engine knows: the loaded files, and the versions kept in the store.

Cases keep the version they started on. When a version's file is gone (a new version replaced
it), the text stored when it was first used is loaded back, so its cases still run. Loading,
registering each version with the store (a changed text under a used name and version is
refused, naming the ``version:`` line to bump) and finding a case's version happen here, once,
so that planning only ever asks ``definition(name, version)``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeAlias

from icsflow.definitions.errors import DefinitionLoadError
from icsflow.definitions.expressions import caseload_fields
from icsflow.definitions.loader import load_text
from icsflow.definitions.model import Definition
from icsflow.definitions.registry import DefinitionSet
from icsflow.workflow.errors import DefinitionError
from icsflow.workflow.logging import get_logger

if TYPE_CHECKING:
    from transitions import Machine

log = get_logger("icsflow.engine")

DefinitionsArg: TypeAlias = (
    "None | str | Path | Sequence[str | Path] | DefinitionSet | Definition | Sequence[Definition]")
"""What ``Engine.open(definitions=...)`` takes: None (the shipped ones), a file or folder, a
list of them, a loaded ``DefinitionSet``, one ``Definition`` or a list of them."""


class DefinitionRegistry(Protocol):
    """The store's side of the catalogue (``Store`` satisfies it)."""

    def register_definition(self, name: str, version: int, content_hash: str,
                            source_text: str | None = None) -> None: ...
    def kept_definitions(self) -> list[tuple[str, int, str]]: ...
    def index_counted_fields(self, fields: Sequence[str]) -> None: ...


def load_definitions(definitions: DefinitionsArg) -> DefinitionSet:
    """None (shipped builtins), a path, paths, a DefinitionSet, a Definition or Definitions;
    a file that does not load is a ``DefinitionError`` listing every ``FILE:LINE`` problem."""
    try:
        if definitions is None:
            return DefinitionSet.load_default()
        if isinstance(definitions, DefinitionSet):
            return definitions
        if isinstance(definitions, Definition):
            return DefinitionSet([definitions])
        if isinstance(definitions, (str, Path)):
            return DefinitionSet.load(definitions)
        items = list(definitions) if isinstance(definitions, Iterable) else [definitions]
        if items and all(isinstance(d, Definition) for d in items):
            return DefinitionSet([d for d in items if isinstance(d, Definition)])
        return DefinitionSet.load([d for d in items if isinstance(d, (str, Path))])
    except DefinitionLoadError as exc:
        raise DefinitionError([str(p) for p in exc.problems]) from None


def definition_texts(defn: Definition) -> list[tuple[str, bool]]:
    """Every expression (False) and template (True) text of ``defn``: what the context of
    its expressions must hold, and which data fields ``caseload`` counts."""
    texts: list[tuple[str, bool]] = []
    for tr in defn.transitions:
        texts.extend((e.text, False) for e in tr.when)
        texts.extend((e.text, False) for _, e in tr.record)
        texts.extend((n.when.text, False) for n in tr.notify if n.when is not None)
    for tm in defn.timers:
        texts.extend((n.when.text, False) for n in tm.notify if n.when is not None)
    for dl in defn.deadlines:
        texts.extend((r.when.text, False) for r in dl.rules if r.when is not None)
    for tp in defn.templates:
        texts.extend(((tp.subject, True), (tp.body, True)))
    return texts


class Catalogue:
    """The loaded definitions and the stored versions whose files are gone."""

    def __init__(self, definitions: DefinitionSet) -> None:
        self.definitions = definitions
        self._kept: dict[tuple[str, int], Definition] = {}

    def register(self, store: DefinitionRegistry) -> None:
        """Record every loaded version in the store (refusing changed texts, each named by
        its ``version:`` line) and index the fields ``caseload`` counts."""
        problems: list[str] = []
        for defn in self.definitions:
            try:
                store.register_definition(defn.name, defn.version, defn.content_hash,
                                          _source_text(defn))
            except DefinitionError as exc:
                problems.extend(f"{_version_source(defn)}: {p}" for p in exc.problems)
        if problems:
            raise DefinitionError(problems)
        counted = sorted({f for defn in self.definitions
                          for text, is_template in definition_texts(defn)
                          for f in caseload_fields(text, expression=not is_template)})
        if counted:
            store.index_counted_fields(counted)

    def load_kept(self, store: DefinitionRegistry) -> None:
        """Versions whose files are gone, from the text stored when they were first used."""
        loaded = {d.key for d in self.definitions}
        for name, version, text in store.kept_definitions():
            if (name, version) in loaded:
                continue
            try:
                self._kept[(name, version)] = load_text(text, f"<stored {name} v{version}>")
            except DefinitionLoadError as exc:  # validation rules may have tightened since
                log.warning("stored_definition_unloadable", definition=name, version=version,
                            problems=len(exc.problems))

    def definition(self, name: str, version: int | None = None) -> Definition:
        """A loaded definition (the latest version unless one is named), else a stored one."""
        try:
            if version is None:
                return self.definitions.latest(name)
            return self.definitions.get(name, version)
        except KeyError as exc:
            kept = self._kept.get((name, version)) if version is not None else None
            if kept is not None:
                return kept
            raise DefinitionError([str(exc.args[0]) if exc.args else str(exc)]) from None

    def latest_all(self) -> list[Definition]:
        """Every process's latest version (the ones that hear signals and start cases)."""
        return [self.definitions.latest(n) for n in self.definitions.names()]

    def names(self) -> list[str]:
        return self.definitions.names()

    def machine(self, defn: Definition) -> Machine:
        return self.definitions.machine(defn)


def _source_text(defn: Definition) -> str | None:
    """The file's text if it still matches the definition's content hash."""
    try:
        raw = Path(defn.source.file).read_bytes()
    except OSError:
        return None
    if defn.content_hash and hashlib.sha256(raw).hexdigest() != defn.content_hash:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _version_source(defn: Definition) -> str:
    """``FILE:LINE`` of the definition's ``version:`` key (the line to change)."""
    try:
        text = Path(defn.source.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return str(defn.source)
    found = re.search(r"^version\s*:", text, re.MULTILINE)
    line = text.count("\n", 0, found.start()) + 1 if found else defn.source.line
    return f"{defn.source.file}:{line}"


__all__ = ["Catalogue", "DefinitionRegistry", "DefinitionsArg", "definition_texts",
           "load_definitions"]
