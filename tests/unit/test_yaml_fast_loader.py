"""libyaml's parser under the loader's own composing gives the same nodes, lines and columns
as the pure-Python loader, for every shipped and example definition (the fast path every
command and the daemon take at start); a file that does not parse is worded by the Python
loader, so its problem reads the same on every machine."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from icsflow.definitions import yaml_nodes
from icsflow.definitions.registry import builtin_dir, examples_dir

FILES = sorted([*builtin_dir().glob("*.yaml"), *examples_dir().glob("*.yaml")])


def _tree(node: yaml.Node) -> object:
    marks = (node.start_mark.line, node.start_mark.column, node.end_mark.line,
             node.end_mark.column)
    if isinstance(node, yaml.MappingNode):
        return ("map", node.tag, marks, [(_tree(k), _tree(v)) for k, v in node.value])
    if isinstance(node, yaml.SequenceNode):
        return ("seq", node.tag, marks, [_tree(x) for x in node.value])
    return ("scalar", node.tag, node.value, node.style or None, marks)


@pytest.mark.skipif(yaml_nodes._FastLoader is None, reason="PyYAML was built without libyaml")
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_fast_loader_composes_what_the_python_loader_composes(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    slow, fast = yaml_nodes._BoundedLoader(text), yaml_nodes._FastLoader(text)  # type: ignore[misc]
    try:
        assert _tree(fast.get_single_node()) == _tree(slow.get_single_node())
    finally:
        slow.dispose()
        fast.dispose()


def test_a_file_that_does_not_parse_is_worded_by_the_python_loader() -> None:
    problems: list[object] = []
    assert yaml_nodes.parse_yaml("name: x\n  bad: [1, 2\n", "bad.yaml", problems) is None
    (problem,) = problems
    assert str(problem).startswith("bad.yaml:2:") and "not valid YAML" in str(problem)
