"""Reading one YAML ``Node`` as the value a definition expects there (text, a name, a list of
names, an expression, a duration, a mapping with known keys), every mistake a ``Problem``.

Reading goes on after a mistake, so one pass over a file reports all of them, each at its own
line; a value that could not be read is None and the caller skips what depends on it.
"""

from __future__ import annotations

from icsflow.definitions.durations import Duration, DurationSyntaxError, parse_duration
from icsflow.definitions.errors import Problem, did_you_mean
from icsflow.definitions.keys import IDENTIFIER, KEYS, REQUIRED_KEYS
from icsflow.definitions.model import Expr, Source
from icsflow.definitions.yaml_nodes import Node, describe


class NodeValues:
    """Typed readers over nodes of one file, collecting problems in ``problems``."""

    def __init__(self, filename: str, problems: list[Problem]) -> None:
        self.filename = filename
        self.problems = problems

    def problem(self, source: Source, message: str) -> None:
        self.problems.append(Problem(source, message))

    def mapping(self, node: Node, kind: str, what: str) -> dict[str, Node] | None:
        """The node as a mapping of ``kind`` (keys checked against ``KEYS[kind]``)."""
        if not isinstance(node.value, dict):
            self.problem(node.source, f"{what} must be a mapping of keys, not "
                                      f"{describe(node.value)}")
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
        self.problem(node.source, f"{what} must be text, not {describe(value)}")
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
        self.problem(node.source, f"{what} must be true or false, not {describe(node.value)}")
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
                                      f"{describe(node.value)}")
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
                                      f"{describe(node.value)}")
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
            self.problem(node.source, f"{what} must be a list, not {describe(node.value)}")
            return []
        return list(node.value)

    # --- sections ---------------------------------------------------------------------------


__all__ = ["NodeValues"]
