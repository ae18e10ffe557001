"""Safe YAML composed into ``Node`` values that keep the line and column they were written on.

Managers edit definitions by hand, so every later mistake must name its place: the YAML is
composed into nodes (not constructed into Python objects) and walked by hand. Only
``true``/``false`` are booleans (an event called ``on`` or a state ``no`` stays a string), dates
stay text, duplicate keys are refused (YAML would silently keep the last), no Python tag is ever
constructed, and a file far larger than a definition can be (an alias bomb, nesting that would
overflow the stack, control characters) is refused before it costs anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from icsflow.definitions.errors import Problem
from icsflow.definitions.model import Source

# --------------------------------------------------------------------------------------------
# YAML: safe, strict booleans, no timestamps (dates stay text), lines kept


try:  # libyaml's parser, when PyYAML was built with it (the wheels on PyPI are)
    from yaml._yaml import CParser
except ImportError:  # pragma: no cover - a PyYAML without libyaml: the Python parser only
    CParser = object  # type: ignore[misc, assignment]  # no fast loader (_FastLoader is None)
    _LIBYAML = False
else:
    _LIBYAML = True

from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver


class StrictLoader(yaml.SafeLoader):
    """SafeLoader where only true/false are booleans and dates are not converted."""


StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"))

_YAML_TAG = "tag:yaml.org,2002:"
_TREE_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_SCALAR_TAGS = {
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null",
}


@dataclass
class Node:
    """A YAML value with the line it came from. ``value``: dict[str, Node], list[Node] or scalar."""

    value: Any
    source: Source
    key_sources: dict[str, Source] | None = None
    literal: int = 0  # a "|" block: 1 + the indentation of its text (0: not a "|" block)

    @property
    def kind(self) -> str:
        if isinstance(self.value, dict):
            return "mapping"
        if isinstance(self.value, list):
            return "list"
        return "scalar"


def describe(value: object) -> str:
    """A value as a message names it ("the text 'x'", "a list", "nothing")."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    return f"the text {value!r}"


class _Reader:
    """Turns composed YAML nodes into ``Node`` values, collecting problems."""

    def __init__(self, filename: str, problems: list[Problem], text: str = "") -> None:
        self.filename = filename
        self.problems = problems
        self._constructor = StrictLoader("")
        self._lines = text.splitlines()

    def _literal(self, node: yaml.Node) -> int:
        """For a "|" block, 1 + the indentation of its text (line N of the text is line N
        after the "|"), so problems inside a template can name their exact line and column."""
        if not isinstance(node, yaml.ScalarNode) or node.style != "|":
            return 0
        for line in self._lines[node.start_mark.line + 1:]:
            if line.strip():
                return len(line) - len(line.lstrip(" ")) + 1
        return 1

    def source(self, node: yaml.Node) -> Source:
        return Source(self.filename, node.start_mark.line + 1, node.start_mark.column + 1)

    def read(self, node: yaml.Node) -> Node:
        src = self.source(node)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _TREE_TAGS:
            self._bad_tag(node)
            return Node(None, src)
        if isinstance(node, yaml.MappingNode):
            values: dict[str, Node] = {}
            key_sources: dict[str, Source] = {}
            for key_node, value_node in node.value:
                key = self.read(key_node)
                if not isinstance(key.value, str | int) or isinstance(key.value, bool):
                    self.problems.append(Problem(key.source, f"a key must be a name, not "
                                                             f"{describe(key.value)}"))
                    continue
                name = str(key.value)
                if name in values:
                    self.problems.append(Problem(
                        key.source, f"duplicate key '{name}' (first written on line "
                                    f"{key_sources[name].line}); YAML would silently keep only "
                                    "the last one"))
                    continue
                values[name] = self.read(value_node)
                key_sources[name] = key.source
            return Node(values, src, key_sources)
        if isinstance(node, yaml.SequenceNode):
            return Node([self.read(item) for item in node.value], src)
        if node.tag not in _SCALAR_TAGS:
            self._bad_tag(node)
            return Node(None, src)
        try:
            value = self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:  # pragma: no cover - resolvers only pick valid forms
            self.problems.append(Problem(src, f"cannot read value: {exc}"))
            value = None
        return Node(value, src, literal=self._literal(node))

    def _bad_tag(self, node: yaml.Node) -> None:
        tag = node.tag.replace(_YAML_TAG, "!!")
        self.problems.append(Problem(
            self.source(node), f"YAML tag '{tag}' is not allowed (definitions are plain "
                               "data: text, numbers, true/false, lists and mappings)"))


# --------------------------------------------------------------------------------------------
# Bounds: a definition is a page or two of YAML; anything far larger is a mistake or an attack
# (an anchor tree that expands to billions of nodes, nesting that overflows the stack).

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 50  # the shipped definitions nest 7 levels deep
MAX_ALIASES = 200
MAX_EXPANDED_NODES = 50_000  # values once every alias is expanded (shipped ones: under 800)

# What YAML does not allow in a file: C0/C1 controls (but tab, line breaks and NEL), DEL,
# surrogates and the two non-characters U+FFFE/FFFF.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")
_CONTROL_NAMES = {0: "NUL", 7: "BEL", 8: "BS", 11: "VT", 12: "FF", 27: "ESC", 127: "DEL"}


class _Mark(Protocol):
    """Where PyYAML says a value is (its pure-Python and its C ``Mark`` alike), 0-based."""

    line: int
    column: int


class _TooLarge(Exception):
    """The YAML goes past one of the bounds; ``mark`` is where."""

    def __init__(self, mark: _Mark | None, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


class _Bounds(Composer):
    """Composing that refuses deep nesting and many aliases (mixed into both loaders)."""

    _depth = 0
    _aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[attr-defined]
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _TooLarge(event.start_mark, f"more than {MAX_ALIASES} YAML aliases (*name); "
                                                  "write the values out")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooLarge(event.start_mark, f"values nested more than {MAX_DEPTH} levels "
                                                  "deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _BoundedLoader(_Bounds, StrictLoader):
    """The pure-Python loader: what a file that does not parse is read with again, so that
    its problem is worded (line, column, words) the same on every machine."""


class _CLoader(_Bounds, CParser, SafeConstructor, Resolver):
    """libyaml's C parser for the events, the same Python composing (bounds, tags resolved by
    ``StrictLoader``'s rules) on top: the same nodes, lines and columns as ``_BoundedLoader``
    (a test compares them over every shipped and example definition), parsed about seven
    times faster. Every command and the daemon load the definitions at start."""

    yaml_implicit_resolvers = StrictLoader.yaml_implicit_resolvers

    def __init__(self, stream: str) -> None:
        CParser.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


_FastLoader: type[_CLoader] | None = _CLoader if _LIBYAML else None


def _expanded_size(root: yaml.Node) -> None:
    """Raise ``_TooLarge`` if expanding every alias would give more than
    ``MAX_EXPANDED_NODES`` values, or an alias refers to a value that contains it. Linear in
    the composed graph (each node's expanded size is computed once)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise _TooLarge(node.start_mark, "a YAML alias refers to a value that contains it")
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item)
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
        open_nodes.discard(key)
        if total > MAX_EXPANDED_NODES:
            raise _TooLarge(node.start_mark, f"this value expands to more than "
                                             f"{MAX_EXPANDED_NODES} values (YAML aliases "
                                             "repeat what they refer to)")
        sizes[key] = total
        return total

    size(root)


def _control_character(text: str, filename: str) -> Problem | None:
    """The first control character (NUL, BEL, ...) in ``text``, as one located problem."""
    found = _CONTROL.search(text)
    if found is None:
        return None
    line = text.count("\n", 0, found.start()) + 1
    column = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
    code = ord(found.group())
    if code < 0xD800:
        what = f"control character U+{code:04X}" + (f" ({_CONTROL_NAMES[code]})"
                                                    if code in _CONTROL_NAMES else "")
    else:
        what = f"character U+{code:04X} (a surrogate or non-character)"
    return Problem(Source(filename, line, column), f"{what} is not allowed in a definition")


def _plain_styles(root: yaml.Node) -> yaml.Node:
    """libyaml says a plain scalar's style is ``''`` where PyYAML says None: made alike."""
    stack = [root]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if node.style == "":
                node.style = None
        elif isinstance(node, yaml.MappingNode):
            stack.extend(x for pair in node.value for x in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return root


def _at(filename: str, mark: _Mark | None) -> Source:
    return Source(filename, mark.line + 1, mark.column + 1) if mark is not None \
        else Source(filename, 1)


def parse_yaml(text: str, filename: str, problems: list[Problem]) -> Node | None:
    """The file's root ``Node``, or None with the reason in ``problems``."""
    bad = _control_character(text, filename)
    if bad is not None:
        problems.append(bad)
        return None
    if _FastLoader is not None:
        try:
            fast = _FastLoader(text)
            try:
                root = fast.get_single_node()
                if root is not None:
                    _expanded_size(root)
            finally:
                fast.dispose()
        except (yaml.YAMLError, _TooLarge, RecursionError):
            pass  # read again below, for the problem's established words and place
        else:
            if root is not None:
                return _Reader(filename, problems, text).read(_plain_styles(root))
    try:
        loader = _BoundedLoader(text)
    except yaml.YAMLError as exc:  # pragma: no cover - _CONTROL finds what the reader refuses
        problems.append(Problem(Source(filename, 1), f"not valid YAML: "
                                                     f"{' '.join(str(exc).split())}"))
        return None
    try:
        root = loader.get_single_node()
        if root is not None:
            _expanded_size(root)
    except _TooLarge as exc:
        problems.append(Problem(_at(filename, exc.mark), f"refused: {exc.message}"))
        return None
    except RecursionError:
        problems.append(Problem(Source(filename, 1), "refused: values nested too deeply"))
        return None
    except yaml.MarkedYAMLError as exc:
        problems.append(Problem(_at(filename, exc.problem_mark or exc.context_mark),
                                f"not valid YAML: {exc.problem or exc.context}"))
        return None
    except yaml.YAMLError as exc:
        problems.append(Problem(Source(filename, 1), f"not valid YAML: "
                                                     f"{' '.join(str(exc).split())}"))
        return None
    finally:
        loader.dispose()
    if root is None:
        problems.append(Problem(Source(filename, 1), "the file is empty"))
        return None
    return _Reader(filename, problems, text).read(root)


__all__ = ["StrictLoader", "Node", "describe", "parse_yaml", "MAX_FILE_BYTES", "MAX_DEPTH",
           "MAX_ALIASES", "MAX_EXPANDED_NODES"]
