"""Problems found in definition files, each naming the file and line a manager has to edit."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from icsflow.definitions.model import Source


@dataclass(frozen=True, order=True)
class Problem:
    """One mistake in a definition: ``FILE:LINE: message`` (the message carries its hint)."""

    source: Source
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


class DefinitionLoadError(ValueError):
    """A definition file (or a set of them) does not load; ``problems`` lists every mistake."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


__all__ = ["Problem", "DefinitionLoadError"]
