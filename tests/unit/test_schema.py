"""The JSON Schema of definition files follows the loader, ships with the package, and every
shipped and example definition validates against it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from icsflow.definitions.keys import KEYS, REQUIRED_KEYS
from icsflow.definitions.schema import (
    SHAPES,
    definition_schema,
    schema_text,
    shipped_schema_path,
)
from icsflow.definitions.yaml_nodes import StrictLoader
from icsflow.workflow.cli import cli

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "definitions.md"
DEFINITIONS = sorted((ROOT / "definitions" / "builtin").glob("*.yaml")) + sorted(
    p for p in (ROOT / "definitions" / "examples").rglob("*.yaml")
    if "imports" not in p.parts)  # examples/imports/ holds import mapping profiles


def _kind(schema: dict, kind: str) -> dict:
    return schema if kind == "definition" else schema["$defs"][kind.replace(" ", "_")]


def _validator() -> jsonschema.protocols.Validator:
    schema = definition_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _yaml(text: str) -> object:
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - the loader's own safe loader


def test_every_key_the_loader_accepts_has_a_described_shape() -> None:
    """A key added to the loader without a shape here would be "anything goes" to editors."""
    missing = [f"{kind}.{key}" for kind, keys in KEYS.items() for key in keys
               if key not in SHAPES.get(kind, {})]
    assert missing == [], "add these keys to definitions/schema.py SHAPES"
    extra = [f"{kind}.{key}" for kind, shapes in SHAPES.items() for key in shapes
             if key not in KEYS.get(kind, ())]
    assert extra == [], "the loader does not accept these keys"


def test_the_schema_has_exactly_the_loaders_keys_and_required_keys() -> None:
    schema = definition_schema()
    for kind, keys in KEYS.items():
        node = _kind(schema, kind)
        assert tuple(node["properties"]) == keys
        assert node["required"] == list(REQUIRED_KEYS.get(kind, ()))
        assert node["additionalProperties"] is False


def test_every_key_documented_in_the_docs_is_in_the_schema() -> None:
    schema = definition_schema()
    text = DOC.read_text()
    documented = {m.group(1).strip(): re.findall(r"`([a-z_]+)`", m.group(2)) for m in
                  re.finditer(r"^### ([^\n]+)\nKeys: ((?:[^\n]|\n(?!\n))+?)\.\n", text, re.M)}
    assert documented, "docs/definitions.md has no key reference"
    for kind, keys in documented.items():
        assert set(keys) <= set(_kind(schema, kind)["properties"]), kind


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.name)
def test_shipped_and_example_definitions_validate(path: Path) -> None:
    errors = list(_validator().iter_errors(_yaml(path.read_text())))
    assert [e.message for e in errors] == []


def test_the_complete_example_in_the_docs_validates() -> None:
    block = re.search(r"## A complete example\n\n```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert block is not None
    _validator().validate(_yaml(block.group(1)))


@pytest.mark.parametrize("name, words", [
    ("unknown_key.yaml", "Additional properties are not allowed"),
    ("yes_is_not_true.yaml", "is not of type 'boolean'"),
    ("bad_duration.yaml", "does not match"),
    ("wrong_type.yaml", ""),
])
def test_the_schema_catches_what_an_editor_can_see(name: str, words: str) -> None:
    data = _yaml((ROOT / "tests" / "broken" / name).read_text())
    errors = list(_validator().iter_errors(data))
    # anyOf failures (a state is nothing or a mapping) carry the real reason in their context
    messages = [e.message for top in errors for e in [top, *top.context]]
    assert messages and any(words in m for m in messages), messages


def test_the_shipped_file_is_the_generated_schema() -> None:
    """Regenerate with: icsflow schema > definitions/definition.schema.json"""
    shipped = Path(str(shipped_schema_path()))
    assert shipped.read_text() == schema_text()


def test_icsflow_schema_prints_it() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == definition_schema()
    result = CliRunner().invoke(cli, ["schema", "--path"])
    assert result.exit_code == 0 and result.stdout.strip().endswith("definition.schema.json")


def test_the_docs_show_the_editor_line() -> None:
    assert "# yaml-language-server: $schema=" in DOC.read_text()
