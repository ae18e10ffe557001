"""Safe YAML -> frozen ``Definition``, collecting every mistake of a file with its line.

Managers edit these files by hand, so the loader is strict and talkative: unknown keys are
refused with the known ones (and a "did you mean"), duplicate keys are refused (YAML would
silently keep the last), only ``true``/``false`` are booleans (an event called ``on`` or a state
``no`` stays a string), and no Python tags are ever constructed. The YAML is composed into nodes
and walked by hand so that every value keeps the line it was written on.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from icsflow.definitions.durations import Duration, DurationSyntaxError, parse_duration
from icsflow.definitions.errors import DefinitionLoadError, Places, Problem, did_you_mean
from icsflow.definitions.model import (
    Anchor,
    AnchorKind,
    DataField,
    Deadline,
    DeadlineRule,
    Definition,
    Expr,
    FieldRule,
    FieldType,
    Notify,
    Reaction,
    Role,
    Roll,
    SignalEmit,
    Source,
    State,
    Template,
    Timer,
    TimerPosition,
    Transition,
)

# The keys each kind of node accepts. docs/definitions.md lists exactly these (a test checks).
KEYS: dict[str, tuple[str, ...]] = {
    "definition": ("name", "version", "title", "description", "roles", "start_roles", "data",
                   "initial", "states", "transitions", "deadlines", "timers", "templates",
                   "signals", "start_signals", "reactions", "reference_prefix"),
    "role": ("description", "address", "directory"),
    "data field": ("type", "required", "values", "description", "readonly"),
    "state": ("description", "final"),
    "transition": ("event", "from", "to", "roles", "when", "set", "record", "notify",
                   "description", "signal"),
    "signal": ("signal", "when"),
    "reaction": ("signal", "start", "fire", "when", "set", "description"),
    "notify": ("to", "template", "when"),
    "deadline": ("live_in", "anchor", "after", "before", "roll", "cancelled_by", "met_by",
                 "description", "rules", "kind"),
    "deadline rule": ("when", "anchor", "after", "before"),
    "timer": ("name", "deadline", "state", "before", "after", "at", "notify", "fire", "repeat",
              "description"),
    "repeat": ("every", "max"),
    "template": ("subject", "body", "urgent", "description"),
}
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "definition": ("name", "version", "initial", "states", "transitions"),
    "data field": ("type",),
    "transition": ("event", "from"),
    "notify": ("to", "template"),
    "deadline": ("live_in",),
    "timer": ("name",),
    "repeat": ("every",),
    "template": ("subject", "body"),
    "signal": ("signal",),
    "reaction": ("signal",),
}

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
_ANCHOR_KINDS_WITH_REF = ("state", "field", "event", "deadline")


# --------------------------------------------------------------------------------------------
# YAML: safe, strict booleans, no timestamps (dates stay text), lines kept


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


def _describe(value: Any) -> str:
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
                                                             f"{_describe(key.value)}"))
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


class _TooLarge(Exception):
    """The YAML goes past one of the bounds; ``mark`` is where."""

    def __init__(self, mark: Any, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


class _BoundedLoader(StrictLoader):
    """StrictLoader that refuses deep nesting and many aliases while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
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


def _at(filename: str, mark: Any) -> Source:
    return Source(filename, mark.line + 1, mark.column + 1) if mark is not None \
        else Source(filename, 1)


def _parse_yaml(text: str, filename: str, problems: list[Problem]) -> Node | None:
    bad = _control_character(text, filename)
    if bad is not None:
        problems.append(bad)
        return None
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


# --------------------------------------------------------------------------------------------
# Nodes -> model


class _Builder:
    """Builds the model from nodes; every mistake becomes a ``Problem``, building goes on."""

    def __init__(self, filename: str, problems: list[Problem]) -> None:
        self.filename = filename
        self.problems = problems

    # --- helpers ----------------------------------------------------------------------------

    def problem(self, source: Source, message: str) -> None:
        self.problems.append(Problem(source, message))

    def mapping(self, node: Node, kind: str, what: str) -> dict[str, Node] | None:
        """The node as a mapping of ``kind`` (keys checked against ``KEYS[kind]``)."""
        if not isinstance(node.value, dict):
            self.problem(node.source, f"{what} must be a mapping of keys, not "
                                      f"{_describe(node.value)}")
            return None
        known = KEYS[kind]
        for key, key_source in (node.key_sources or {}).items():
            if key not in known:
                hint = did_you_mean(key, known)
                self.problem(key_source, f"unknown key '{key}' in {what} "
                                         f"(known: {', '.join(known)}){hint}")
        for key in REQUIRED_KEYS.get(kind, ()):
            if key not in node.value:
                self.problem(node.source, f"{what} needs '{key}'")
        return {k: v for k, v in node.value.items() if k in known}

    def text(self, node: Node, what: str, *, allow_number: bool = False) -> str | None:
        value = node.value
        if isinstance(value, str):
            return value
        if allow_number and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        self.problem(node.source, f"{what} must be text, not {_describe(value)}")
        return None

    def name(self, node: Node, what: str) -> str | None:
        value = self.text(node, what)
        if value is not None and not IDENTIFIER.match(value):
            self.problem(node.source, f"{what} {value!r} is not a valid name (lower-case letters, "
                                      "digits and _, starting with a letter)")
            return None
        return value

    def boolean(self, node: Node, what: str) -> bool | None:
        if isinstance(node.value, bool):
            return node.value
        self.problem(node.source, f"{what} must be true or false, not {_describe(node.value)}")
        return None

    def names(self, node: Node, what: str) -> tuple[str, ...]:
        """One name or a list of names."""
        if node.value is None:
            return ()
        items = node.value if isinstance(node.value, list) else [node]
        result = []
        for item in items:
            value = self.text(item, f"each of {what}" if isinstance(node.value, list) else what)
            if value is not None:
                result.append(value)
        return tuple(result)

    def expr(self, node: Node, what: str) -> Expr | None:
        value = self.text(node, what, allow_number=True)
        if isinstance(node.value, bool):
            return None
        return None if value is None else Expr(value, node.source)

    def exprs(self, node: Node, what: str) -> tuple[Expr, ...]:
        items = node.value if isinstance(node.value, list) else [node]
        found = (self.expr(item, what) for item in items)
        return tuple(e for e in found if e is not None)

    def duration(self, node: Node, what: str) -> Duration | None:
        if not isinstance(node.value, str):
            self.problem(node.source, f"{what} must be a duration such as '10 working days', not "
                                      f"{_describe(node.value)}")
            return None
        try:
            return parse_duration(node.value)
        except DurationSyntaxError as exc:
            self.problem(node.source, f"{what}: {exc}")
            return None

    def entries(self, node: Node | None, what: str) -> list[tuple[str, Node, Source]]:
        """A mapping of name -> options, as (name, options node, source of the name)."""
        if node is None or node.value is None:
            return []
        if not isinstance(node.value, dict):
            self.problem(node.source, f"{what} must be a mapping of names, not "
                                      f"{_describe(node.value)}")
            return []
        result = []
        for key, value in node.value.items():
            source = (node.key_sources or {}).get(key, value.source)
            if not IDENTIFIER.match(key):
                self.problem(source, f"name {key!r} in {what} is not a valid name (lower-case "
                                     "letters, digits and _, starting with a letter)")
            result.append((key, value, source))
        return result

    def items(self, node: Node | None, what: str) -> list[Node]:
        if node is None or node.value is None:
            return []
        if not isinstance(node.value, list):
            self.problem(node.source, f"{what} must be a list, not {_describe(node.value)}")
            return []
        return list(node.value)

    # --- sections ---------------------------------------------------------------------------

    def definition(self, root: Node, content_hash: str) -> Definition | None:
        top = self.mapping(root, "definition", "the definition")
        if top is None:
            return None
        name = self.name(top["name"], "name") if "name" in top else None
        version = None
        if "version" in top:
            v = top["version"].value
            if isinstance(v, int) and not isinstance(v, bool) and v >= 1:
                version = v
            else:
                self.problem(top["version"].source,
                             f"version must be a whole number from 1, not {_describe(v)}")
        title = self.text(top["title"], "title") if "title" in top else None
        description = self.text(top["description"], "description") if "description" in top \
            else None
        roles = tuple(self.role(n, v, s) for n, v, s in self.entries(top.get("roles"), "roles"))
        role_names = tuple(r.name for r in roles if r is not None)
        start_roles = self.names(top["start_roles"], "start_roles") if "start_roles" in top \
            else role_names
        data = tuple(self.data_field(n, v, s) for n, v, s in self.entries(top.get("data"),
                                                                          "data"))
        initial = self.text(top["initial"], "initial") if "initial" in top else None
        states = tuple(self.state(n, v, s) for n, v, s in self.entries(top.get("states"),
                                                                       "states"))
        if "states" in top and not states and top["states"].kind != "scalar":
            self.problem(top["states"].source, "states must name at least one state")
        non_final = tuple(s.name for s in states if s is not None and not s.final)
        transitions = tuple(self.transition(n, i, non_final)
                            for i, n in enumerate(self.items(top.get("transitions"),
                                                             "transitions"), 1))
        deadlines = tuple(self.deadline(n, v, s)
                          for n, v, s in self.entries(top.get("deadlines"), "deadlines"))
        timers = tuple(self.timer(n, i)
                       for i, n in enumerate(self.items(top.get("timers"), "timers"), 1))
        templates = tuple(self.template(n, v, s)
                          for n, v, s in self.entries(top.get("templates"), "templates"))
        signals: dict[str, str] = {}
        for sname, snode, _src in self.entries(top.get("signals"), "signals"):
            if snode.value is None:
                signals[sname] = ""
            else:
                signals[sname] = self.text(snode, f"description of signal '{sname}'") or ""
        start_signals = self.signal_list(top["start_signals"], "start_signals") \
            if "start_signals" in top else ()
        reactions = tuple(self.reaction(n, i)
                          for i, n in enumerate(self.items(top.get("reactions"), "reactions"), 1))
        prefix = ""
        if "reference_prefix" in top:
            prefix = self.text(top["reference_prefix"], "reference_prefix") or ""
            if not re.fullmatch(r"[A-Z][A-Z0-9]{0,9}", prefix):
                self.problem(top["reference_prefix"].source, "reference_prefix must be 1 to 10 "
                             f"capital letters or digits, starting with a letter, not {prefix!r}")
        if name is None or version is None or initial is None:
            return None
        return Definition(
            name=name, version=version, title=title or name, description=description or "",
            roles=tuple(r for r in roles if r is not None), start_roles=start_roles,
            data=tuple(d for d in data if d is not None), initial=initial,
            states=tuple(s for s in states if s is not None),
            transitions=tuple(t for t in transitions if t is not None),
            deadlines=tuple(d for d in deadlines if d is not None),
            timers=tuple(t for t in timers if t is not None),
            templates=tuple(t for t in templates if t is not None),
            source=root.source, content_hash=content_hash, signals=signals,
            start_signals=start_signals,
            reactions=tuple(r for r in reactions if r is not None), auto_reference=prefix)

    def signal_list(self, node: Node, what: str) -> tuple[SignalEmit, ...]:
        """``NAME``, ``[NAME, ...]`` or items ``{signal: NAME, when: EXPR}``."""
        if node.value is None:
            return ()
        items = node.value if isinstance(node.value, list) else [node]
        result = []
        for item in items:
            if isinstance(item.value, dict):
                m = self.mapping(item, "signal", f"signal of {what}")
                if m is None or "signal" not in m:
                    continue
                sname = self.name(m["signal"], f"signal of {what}")
                when = self.expr(m["when"], f"when of signal of {what}") if "when" in m \
                    else None
            else:
                sname = self.name(item, f"signal of {what}")
                when = None
            if sname is not None:
                result.append(SignalEmit(sname, when, item.source))
        return tuple(result)

    def reaction(self, node: Node, index: int) -> Reaction | None:
        what = f"reaction #{index}"
        m = self.mapping(node, "reaction", what)
        if m is None or "signal" not in m:
            return None
        signal = self.name(m["signal"], f"signal of {what}")
        start = bool(self.boolean(m["start"], f"start of {what}")) if "start" in m else False
        fire = self.name(m["fire"], f"fire of {what}") if "fire" in m else None
        if start == ("fire" in m):
            self.problem(node.source, f"{what} must either 'start: true' or 'fire: EVENT' "
                                      "(exactly one)")
        when = self.exprs(m["when"], f"when of {what}") if "when" in m else ()
        sets: list[tuple[str, Expr]] = []
        if "set" in m:
            if isinstance(m["set"].value, dict):
                for fname, value in m["set"].value.items():
                    e = self.expr(value, f"set '{fname}' of {what}")
                    if e is not None:
                        sets.append((fname, e))
            elif m["set"].value is not None:
                self.problem(m["set"].source, f"set of {what} must be a mapping field: "
                                              "expression")
        description = self.text(m["description"], "description") if "description" in m else ""
        if signal is None:
            return None
        return Reaction(signal, start, fire, when, tuple(sets), description or "", node.source)

    def role(self, name: str, node: Node, source: Source) -> Role | None:
        if node.value is None:
            return Role(name, source=source)
        if isinstance(node.value, str):
            return Role(name, description=node.value, source=source)
        m = self.mapping(node, "role", f"role '{name}'")
        if m is None:
            return None
        description = self.text(m["description"], "description") if "description" in m else ""
        address = self.text(m["address"], f"address of role '{name}'") if "address" in m \
            else None
        directory = self.boolean(m["directory"], f"directory of role '{name}'") \
            if "directory" in m else False
        return Role(name, description or "", address, bool(directory), source)

    def data_field(self, name: str, node: Node, source: Source) -> DataField | None:
        m = self.mapping(node, "data field", f"data field '{name}'")
        if m is None or "type" not in m:
            return None
        type_text = self.text(m["type"], f"type of data field '{name}'")
        if type_text is None:
            return None
        try:
            ftype = FieldType(type_text)
        except ValueError:
            known = ", ".join(t.value for t in FieldType)
            self.problem(m["type"].source, f"data field '{name}' has unknown type "
                                           f"'{type_text}' (known: {known})")
            return None
        required = self.boolean(m["required"], f"required of data field '{name}'") \
            if "required" in m else False
        values: tuple[str, ...] = ()
        if "values" in m:
            if ftype is not FieldType.ENUM:
                self.problem(m["values"].source, f"data field '{name}' has values but is not "
                                                 "of type enum")
            values = tuple(self.text(v, f"each value of data field '{name}'",
                                     allow_number=True) or ""
                           for v in self.items(m["values"], f"values of data field '{name}'"))
        elif ftype is FieldType.ENUM:
            self.problem(source, f"data field '{name}' is an enum and needs 'values'")
        description = self.text(m["description"], "description") if "description" in m else ""
        readonly = self.boolean(m["readonly"], f"readonly of data field '{name}'") \
            if "readonly" in m else False
        return DataField(name, ftype, bool(required), values, description or "", source,
                         readonly=bool(readonly))

    def state(self, name: str, node: Node, source: Source) -> State | None:
        if node.value is None:
            return State(name, source=source)
        m = self.mapping(node, "state", f"state '{name}'")
        if m is None:
            return None
        description = self.text(m["description"], "description") if "description" in m else ""
        final = self.boolean(m["final"], f"final of state '{name}'") if "final" in m else False
        return State(name, description or "", bool(final), source)

    def notify_list(self, node: Node, what: str) -> tuple[Notify, ...]:
        result = []
        for item in self.items(node, f"notify of {what}"):
            m = self.mapping(item, "notify", f"notify of {what}")
            if m is None or "to" not in m or "template" not in m:
                continue
            roles = self.names(m["to"], f"to of notify of {what}")
            template = self.text(m["template"], f"template of notify of {what}")
            when = self.expr(m["when"], f"when of notify of {what}") if "when" in m else None
            if template is not None:
                result.append(Notify(roles, template, when, item.source))
        return tuple(result)

    def transition(self, node: Node, index: int,
                   non_final: tuple[str, ...]) -> Transition | None:
        event_node = node.value.get("event") if isinstance(node.value, dict) else None
        event_name = event_node.value if event_node is not None else None
        what = f"transition '{event_name}'" if isinstance(event_name, str) \
            else f"transition #{index}"
        m = self.mapping(node, "transition", what)
        if m is None or "event" not in m or "from" not in m:
            return None
        event = self.name(m["event"], "event")
        from_any = m["from"].value == "*"
        sources = non_final if from_any else self.names(m["from"], f"from of {what}")
        to = self.text(m["to"], f"to of {what}") if "to" in m else None
        roles = self.names(m["roles"], f"roles of {what}") if "roles" in m else ()
        when = self.exprs(m["when"], f"when of {what}") if "when" in m else ()
        rules: list[FieldRule] = []
        if "set" in m:
            set_node = m["set"]
            if isinstance(set_node.value, list):
                for item in set_node.value:
                    fname = self.text(item, f"each field of set of {what}")
                    if fname is not None:
                        rules.append(FieldRule(fname, True, item.source))
            elif isinstance(set_node.value, dict):
                for fname, value in set_node.value.items():
                    src = (set_node.key_sources or {}).get(fname, value.source)
                    if value.value not in ("required", "optional"):
                        self.problem(value.source, f"field '{fname}' in set of {what} must be "
                                                   f"required or optional, not "
                                                   f"{_describe(value.value)}")
                        continue
                    rules.append(FieldRule(fname, value.value == "required", src))
            elif set_node.value is not None:
                self.problem(set_node.source, f"set of {what} must be a list of fields or a "
                                              "mapping field: required|optional")
        record: list[tuple[str, Expr]] = []
        if "record" in m:
            rec = m["record"]
            if isinstance(rec.value, dict):
                for fname, value in rec.value.items():
                    e = self.expr(value, f"record '{fname}' of {what}")
                    if e is not None:
                        record.append((fname, e))
            elif rec.value is not None:
                self.problem(rec.source, f"record of {what} must be a mapping field: expression")
        notify = self.notify_list(m["notify"], what) if "notify" in m else ()
        description = self.text(m["description"], "description") if "description" in m else ""
        signals = self.signal_list(m["signal"], what) if "signal" in m else ()
        if event is None or to is None and "to" in m:
            return None
        return Transition(event, sources, to, roles, when, tuple(rules), tuple(record), notify,
                          description or "", from_any, node.source, signals)

    def anchor(self, node: Node, what: str) -> Anchor | None:
        text = self.text(node, what)
        if text is None:
            return None
        parts = text.split()
        kinds = ", ".join(["entry", "start"] + [f"{k} NAME" for k in _ANCHOR_KINDS_WITH_REF])
        if len(parts) == 1 and parts[0] in ("entry", "start"):
            return Anchor(AnchorKind(parts[0]))
        if len(parts) == 2 and parts[0] in _ANCHOR_KINDS_WITH_REF:
            return Anchor(AnchorKind(parts[0]), parts[1])
        self.problem(node.source, f"{what} {text!r} is not an anchor (known: {kinds})")
        return None

    def rule(self, m: dict[str, Node], source: Source, what: str) -> DeadlineRule | None:
        anchor = self.anchor(m["anchor"], f"anchor of {what}") if "anchor" in m \
            else Anchor(AnchorKind.ENTRY)
        if ("after" in m) == ("before" in m):
            self.problem(source, f"{what} needs exactly one of 'after' or 'before'")
            return None
        sign = 1 if "after" in m else -1
        offset = self.duration(m["after"] if sign == 1 else m["before"],
                               f"{'after' if sign == 1 else 'before'} of {what}")
        when = self.expr(m["when"], f"when of {what}") if "when" in m else None
        if anchor is None or offset is None:
            return None
        return DeadlineRule(anchor, offset, sign, when, source)

    def deadline(self, name: str, node: Node, source: Source) -> Deadline | None:
        what = f"deadline '{name}'"
        m = self.mapping(node, "deadline", what)
        if m is None:
            return None
        live_in = self.names(m["live_in"], f"live_in of {what}") if "live_in" in m else ()
        rules: list[DeadlineRule | None] = []
        if "rules" in m:
            for key in ("anchor", "after", "before"):
                if key in m:
                    self.problem(m[key].source, f"{what} has 'rules', so '{key}' belongs "
                                                "inside each rule")
            items = self.items(m["rules"], f"rules of {what}")
            if not items and isinstance(m["rules"].value, list):
                self.problem(m["rules"].source, f"rules of {what} must list at least one rule")
            for i, item in enumerate(items, 1):
                rm = self.mapping(item, "deadline rule", f"rule #{i} of {what}")
                if rm is not None:
                    rules.append(self.rule(rm, item.source, f"rule #{i} of {what}"))
        else:
            rules.append(self.rule(m, source, what))
        roll = None
        if "roll" in m:
            roll_text = self.text(m["roll"], f"roll of {what}")
            if roll_text is not None:
                try:
                    roll = Roll(roll_text)
                except ValueError:
                    self.problem(m["roll"].source, f"roll of {what} must be forward or "
                                                   f"backward, not {roll_text!r}")
        cancelled_by = self.names(m["cancelled_by"], f"cancelled_by of {what}") \
            if "cancelled_by" in m else ()
        met_by = self.names(m["met_by"], f"met_by of {what}") if "met_by" in m else ()
        description = self.text(m["description"], "description") if "description" in m else ""
        marker = False
        if "kind" in m:
            kind = self.text(m["kind"], f"kind of {what}")
            if kind not in ("deadline", "marker"):
                self.problem(m["kind"].source, f"kind of {what} must be deadline or marker, "
                                               f"not {kind!r}")
            marker = kind == "marker"
        if any(r is None for r in rules):
            return None
        return Deadline(name, live_in, tuple(r for r in rules if r is not None), roll,
                        cancelled_by, description or "", source, met_by, marker=marker)

    def timer(self, node: Node, index: int) -> Timer | None:
        name_node = node.value.get("name") if isinstance(node.value, dict) else None
        tname = name_node.value if name_node is not None else None
        what = f"timer '{tname}'" if isinstance(tname, str) else f"timer #{index}"
        m = self.mapping(node, "timer", what)
        if m is None or "name" not in m:
            return None
        name = self.name(m["name"], "timer name")
        deadline = self.text(m["deadline"], f"deadline of {what}") if "deadline" in m else None
        state = self.text(m["state"], f"state of {what}") if "state" in m else None
        if ("deadline" in m) == ("state" in m):
            self.problem(node.source, f"{what} needs exactly one of 'deadline' or 'state'")
        given = [k for k in ("before", "after", "at") if k in m]
        position: TimerPosition | None = None
        offset: Duration | None = None
        if len(given) != 1:
            self.problem(node.source, f"{what} needs exactly one of 'before', 'after' or 'at'")
        elif given[0] == "at":
            at = m["at"].value
            if at in ("due", "breach"):
                position = TimerPosition(at)
            else:
                self.problem(m["at"].source, f"at of {what} must be due or breach, not "
                                             f"{_describe(at)}")
        else:
            position = TimerPosition(given[0])
            offset = self.duration(m[given[0]], f"{given[0]} of {what}")
        if state is not None and position in (TimerPosition.BEFORE, TimerPosition.DUE,
                                              TimerPosition.BREACH):
            self.problem(node.source, f"{what} hangs off state '{state}', so it takes 'after' "
                                      "(time after entering the state), not "
                                      f"'{given[0]}'")
        fire = self.text(m["fire"], f"fire of {what}") if "fire" in m else None
        notify = self.notify_list(m["notify"], what) if "notify" in m else ()
        if "fire" not in m and "notify" not in m:
            self.problem(node.source, f"{what} needs 'notify' or 'fire' (or both)")
        repeat_every = None
        repeat_max = None
        if "repeat" in m:
            rm = self.mapping(m["repeat"], "repeat", f"repeat of {what}")
            if rm is not None:
                if "every" in rm:
                    repeat_every = self.duration(rm["every"], f"repeat every of {what}")
                if "max" not in rm:
                    self.problem(m["repeat"].source, f"repeat of {what} needs 'max' (how many "
                                                     "firings in all), or it never stops")
                else:
                    mx = rm["max"].value
                    if isinstance(mx, int) and not isinstance(mx, bool) and mx >= 1:
                        repeat_max = mx
                    else:
                        self.problem(rm["max"].source, f"repeat max of {what} must be a whole "
                                                       f"number from 1, not {_describe(mx)}")
        description = self.text(m["description"], "description") if "description" in m else ""
        if name is None or position is None or (position in (TimerPosition.BEFORE,
                                                             TimerPosition.AFTER)
                                                and offset is None):
            return None
        return Timer(name, position, deadline, state, offset, fire, notify, repeat_every,
                     repeat_max, description or "", node.source)

    def template(self, name: str, node: Node, source: Source) -> Template | None:
        what = f"template '{name}'"
        m = self.mapping(node, "template", what)
        if m is None or "subject" not in m or "body" not in m:
            return None
        subject = self.text(m["subject"], f"subject of {what}")
        body = self.text(m["body"], f"body of {what}")
        urgent = self.boolean(m["urgent"], f"urgent of {what}") if "urgent" in m else False
        if subject is None or body is None:
            return None
        return Template(name, subject, body, bool(urgent), source)


# --------------------------------------------------------------------------------------------
# Places: where each value a check may refuse was written (its own line and column)


def _note_values(places: Places, owner: Source, mapping: dict[str, Node],
                 keys: Iterable[str]) -> None:
    """Note ``owner``'s values under ``keys``: the value node itself (looked up with value
    ``""``) and, for names, each name (one or a list) at its own place."""
    for key in keys:
        node = mapping.get(key)
        if node is None:
            continue
        places.note(owner, key, "", node.source)
        items = node.value if isinstance(node.value, list) else [node]
        for item in items:
            if isinstance(item, Node) and isinstance(item.value, str | int) \
                    and not isinstance(item.value, bool):
                places.note(owner, key, item.value, item.source)
                if key == "anchor" and isinstance(item.value, str):  # "state NAME": the NAME
                    places.note(owner, key, item.value.split()[-1], item.source)


def _entries(node: Node | None) -> list[tuple[Source, dict[str, Node]]]:
    """A mapping of name -> options as (source of the name, options mapping)."""
    if node is None or not isinstance(node.value, dict):
        return []
    return [((node.key_sources or {}).get(k, v.source), v.value)
            for k, v in node.value.items() if isinstance(v.value, dict)]


def _list(node: Node | None) -> list[tuple[Source, dict[str, Node]]]:
    if node is None or not isinstance(node.value, list):
        return []
    return [(item.source, item.value) for item in node.value if isinstance(item.value, dict)]


def note_places(root: Node) -> Places:
    """Every value's place, keyed by the source the model gives its owner (the ``source`` of
    the transition, timer, notify, deadline, rule, role, template or definition)."""
    places = Places()
    if not isinstance(root.value, dict):
        return places
    top: dict[str, Node] = root.value
    _note_values(places, root.source, top, ("initial", "start_roles"))
    for owner, m in _entries(top.get("roles")):
        _note_values(places, owner, m, ("address",))
    for owner, m in _entries(top.get("templates")):
        _note_values(places, owner, m, ("subject", "body"))
        for part in ("subject", "body"):
            node = m.get(part)
            if node is not None and node.literal:  # its text's line 1 is the next line
                places.note(owner, f"{part} text", "", Source(node.source.file,
                                                               node.source.line + 1,
                                                               node.literal))
    for owner, m in _list(top.get("transitions")):
        _note_values(places, owner, m, ("event", "from", "to", "roles"))
        record = m.get("record")
        if record is not None and record.key_sources:  # the field name a value is recorded in
            for fname, key_source in record.key_sources.items():
                places.note(owner, "record", fname, key_source)
        for n_owner, n in _list(m.get("notify")):
            _note_values(places, n_owner, n, ("to", "template"))
    for owner, m in _entries(top.get("deadlines")):
        _note_values(places, owner, m, ("live_in", "cancelled_by", "anchor", "after", "before"))
        for r_owner, r in _list(m.get("rules")):
            _note_values(places, r_owner, r, ("anchor", "after", "before"))
    for owner, m in _list(top.get("timers")):
        _note_values(places, owner, m, ("name", "deadline", "state", "fire", "before", "after"))
        for n_owner, n in _list(m.get("notify")):
            _note_values(places, n_owner, n, ("to", "template"))
    return places


# --------------------------------------------------------------------------------------------
# Public API


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
    root = _parse_yaml(decoded, filename, problems)
    defn = None
    if root is not None:
        defn = _Builder(filename, problems).definition(root, content_hash)
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


__all__ = ["KEYS", "REQUIRED_KEYS", "StrictLoader", "load_text", "load_file", "load_paths",
           "definition_files", "duplicate_versions", "set_problems", "DefinitionLoadError",
           "Problem"]
