"""Loaded definitions, remembered: ``load_text`` of the same bytes under the same file name
returns the same frozen ``Definition`` (parsing and validating the shipped YAML took a third of
the in-process suite). A text never seen, or one that fails, is loaded for real every time.
Installed by tests/conftest.py in every worker and by the forking CLI server (forked_cli)."""

from __future__ import annotations

import threading
from typing import Any

_REMEMBERED_DEFINITIONS = 512


class RememberedDefinitions:
    """``load_text`` for the same bytes under the same file name gives the same frozen
    ``Definition``; a new text, or one that fails, is loaded for real."""

    def __init__(self) -> None:
        import icsflow.definitions.loader as loader

        self.loader = loader
        self.real_load_text = loader.load_text
        self._loaded: dict[tuple[str | bytes, str], Any] = {}
        self._lock = threading.Lock()

    def load_text(self, text: str | bytes, filename: str = "<text>") -> Any:
        key = (text, filename)
        with self._lock:
            if key in self._loaded:
                return self._loaded[key]
        definition = self.real_load_text(text, filename)  # a bad one raises: never remembered
        with self._lock:
            if len(self._loaded) >= _REMEMBERED_DEFINITIONS:
                self._loaded.clear()
            self._loaded[key] = definition
        return definition

    def install(self) -> None:
        self.loader.load_text = self.load_text  # type: ignore[assignment]

    def uninstall(self) -> None:
        self.loader.load_text = self.real_load_text  # type: ignore[assignment]


REMEMBERED = RememberedDefinitions()
