"""The definition language: safe YAML -> frozen model -> validation -> a shared Machine."""

from definitions.errors import DefinitionLoadError, Problem
from definitions.graph import graph_text
from definitions.loader import load_file, load_paths, load_text
from definitions.machine import Carrier, build_machine, fire
from definitions.model import Definition
from definitions.registry import DefinitionSet, builtin_dir, load_default

__all__ = [
    "Definition", "load_file", "load_paths", "load_text", "DefinitionLoadError", "Problem",
    "DefinitionSet", "builtin_dir", "load_default", "build_machine", "fire", "Carrier",
    "graph_text",
]
