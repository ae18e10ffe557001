"""Safe YAML -> frozen ``Definition``, collecting every mistake of a file with its line.

The pipeline: the file's bytes are bounded and decoded, composed into located nodes
(``yaml_nodes``), built into the model (``model_builder`` over ``node_values``), and validated
(``validate``) with each value's own place (``places``). Every problem of every stage is
collected, so a manager fixing a file sees all its mistakes at once, each at its line; this
module is the public door (load a text, a file, files and folders) and the checks only a set
of files can make (two files with one name and version, signal loops across processes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from icsflow.definitions.errors import DefinitionLoadError, Places, Problem
from icsflow.definitions.model import Definition, Source
from icsflow.definitions.model_builder import ModelBuilder
from icsflow.definitions.places import note_places
from icsflow.definitions.yaml_nodes import MAX_FILE_BYTES, parse_yaml

Validator = Callable[[Definition, Places], list[Problem]]


def _validator() -> Validator:
    from icsflow.definitions.validate import validate

    return validate


def load_text(text: str | bytes, filename: str = "<text>") -> Definition:
    """Load and validate one definition; ``DefinitionLoadError`` lists every mistake."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    content_hash = hashlib.sha256(raw).hexdigest()
    problems: list[Problem] = []
    if len(raw) > MAX_FILE_BYTES:
        raise DefinitionLoadError([Problem(Source(filename, 1), f"the file is {len(raw)} bytes; "
                                           f"a definition may have at most {MAX_FILE_BYTES}")])
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DefinitionLoadError([Problem(Source(filename, 1),
                                           f"the file is not UTF-8 text: {exc}")]) from None
    root = parse_yaml(decoded, filename, problems)
    defn = None
    if root is not None:
        defn = ModelBuilder(filename, problems).definition(root, content_hash)
    if problems or defn is None:
        if not problems:  # pragma: no cover - the builder reports why it gave up
            problems.append(Problem(Source(filename, 1), "the definition does not load"))
        raise DefinitionLoadError(problems)
    problems.extend(_validator()(defn, note_places(root) if root is not None else Places()))
    if problems:
        raise DefinitionLoadError(problems)
    return defn


def load_file(path: str | Path) -> Definition:
    """Load one definition file (the hash is of its exact bytes)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DefinitionLoadError([Problem(Source(str(p), 0),
                                           f"cannot read file: {exc.strerror}")]) from None
    return load_text(raw, str(p))


def definition_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files named, plus every *.yaml / *.yml in folders named (sorted within a folder)."""
    files: list[Path] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir()
                                if f.suffix in (".yaml", ".yml") and f.is_file()))
        else:
            files.append(p)
    return files


def load_paths(paths: Sequence[str | Path] | str | Path) -> list[Definition]:
    """Load files and folders; every problem of every file is reported in one error.

    Two files with the same name and version are refused, naming both files.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    problems: list[Problem] = []
    loaded: list[Definition] = []
    for f in definition_files(paths):
        try:
            loaded.append(load_file(f))
        except DefinitionLoadError as exc:
            problems.extend(exc.problems)
    problems.extend(duplicate_versions(loaded))
    problems.extend(set_problems(loaded))
    if problems:
        raise DefinitionLoadError(problems)
    return loaded


def set_problems(defns: Sequence[Definition]) -> list[Problem]:
    """What only shows across files: reactions of several definitions that set each other off
    for ever (the latest version of each name is what runs)."""
    from icsflow.definitions.validate import signal_loops

    latest: dict[str, Definition] = {}
    for d in defns:
        if d.name not in latest or d.version > latest[d.name].version:
            latest[d.name] = d
    return signal_loops(latest.values())


def duplicate_versions(defns: Iterable[Definition]) -> list[Problem]:
    """Same name and version in two files: a case could not tell which one it runs."""
    seen: dict[tuple[str, int], Definition] = {}
    problems = []
    for d in defns:
        first = seen.get(d.key)
        if first is None:
            seen[d.key] = d
        elif first.content_hash != d.content_hash or first.source.file != d.source.file:
            problems.append(Problem(d.source, f"definition '{d.name}' version {d.version} is "
                                              f"also defined in {first.source.file}; give one "
                                              "of them a new version"))
    return problems


__all__ = ["load_text", "load_file", "load_paths", "definition_files", "duplicate_versions",
           "set_problems", "DefinitionLoadError", "Problem"]
