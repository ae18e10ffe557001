"""The definition language: safe YAML -> frozen model -> validation -> a shared Machine."""

from icsflow.definitions.errors import DefinitionLoadError, Problem
from icsflow.definitions.graph import graph_text
from icsflow.definitions.loader import load_file, load_paths, load_text
from icsflow.definitions.machine import Carrier, build_machine, fire
from icsflow.definitions.model import Definition
from icsflow.definitions.registry import DefinitionSet, builtin_dir, load_default

__all__ = [
    "Definition", "load_file", "load_paths", "load_text", "DefinitionLoadError", "Problem",
    "DefinitionSet", "builtin_dir", "load_default", "build_machine", "fire", "Carrier",
    "graph_text",
]
