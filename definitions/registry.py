"""The loaded definitions by (name, version), with one machine per version built on demand.

Cases keep the version they started on, so old versions stay loaded beside new ones; a name and
version written in two files is refused (a case could not tell which text it runs).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from transitions import Machine

from icsflow.definitions.errors import DefinitionLoadError
from icsflow.definitions.loader import duplicate_versions, load_paths
from icsflow.definitions.machine import build_machine
from icsflow.definitions.model import Definition


def builtin_dir() -> Path:
    """The folder of the definitions shipped with icsflow."""
    return Path(__file__).resolve().parent / "builtin"


def examples_dir() -> Path:
    """The folder of the documented example definitions."""
    return Path(__file__).resolve().parent / "examples"


class DefinitionSet:
    """Definitions by name and version; ``machine`` builds each version's machine once."""

    def __init__(self, definitions: Iterable[Definition] = ()) -> None:
        defs = list(definitions)
        problems = duplicate_versions(defs)
        if problems:
            raise DefinitionLoadError(problems)
        self._by_key: dict[tuple[str, int], Definition] = {d.key: d for d in defs}
        # Each name's highest version, found once (every start asks; the set never changes).
        self._latest: dict[str, Definition] = {}
        for d in sorted(self._by_key.values(), key=lambda d: d.key):
            self._latest[d.name] = d
        self._machines: dict[tuple[str, int], Machine] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, paths: Sequence[str | Path] | str | Path) -> DefinitionSet:
        """Load files and folders (``DefinitionLoadError`` lists every problem of every file)."""
        return cls(load_paths(paths))

    @classmethod
    def load_default(cls, definitions_dir: str | Path | None = None) -> DefinitionSet:
        """The configured folder, or the shipped builtin definitions."""
        folder = Path(definitions_dir) if definitions_dir else builtin_dir()
        if not folder.exists():
            return cls()
        return cls.load([folder])

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self._by_key.values(), key=lambda d: d.key))

    def __contains__(self, name: object) -> bool:
        return any(n == name for n, _ in self._by_key)

    def names(self) -> list[str]:
        """Process names, sorted."""
        return sorted({n for n, _ in self._by_key})

    def versions(self, name: str) -> list[int]:
        return sorted(v for n, v in self._by_key if n == name)

    def get(self, name: str, version: int) -> Definition:
        """One version; ``KeyError`` names the known versions."""
        try:
            return self._by_key[(name, version)]
        except KeyError:
            known = ", ".join(map(str, self.versions(name))) or "none"
            raise KeyError(f"no definition '{name}' version {version} (known versions: "
                           f"{known}; known names: {', '.join(self.names()) or 'none'})") from None

    def latest(self, name: str) -> Definition:
        """The highest version of ``name`` (what new cases start on)."""
        found = self._latest.get(name)
        if found is None:
            raise KeyError(f"no definition '{name}' (known: {', '.join(self.names()) or 'none'})")
        return found

    def machine(self, defn: Definition) -> Machine:
        """The shared machine of ``defn``'s version, built once (thread-safe)."""
        key = defn.key
        machine = self._machines.get(key)
        if machine is None:
            with self._lock:
                machine = self._machines.get(key)
                if machine is None:
                    machine = build_machine(self._by_key.get(key, defn))
                    self._machines[key] = machine
        return machine


def load_default(definitions_dir: str | Path | None = None) -> DefinitionSet:
    """The configured definitions (or the shipped ones) as a ``DefinitionSet``."""
    return DefinitionSet.load_default(definitions_dir)


__all__ = ["DefinitionSet", "builtin_dir", "examples_dir", "load_default"]
