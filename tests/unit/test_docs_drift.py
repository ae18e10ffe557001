"""docs/definitions.md lists exactly the keys the loader accepts, and its example loads."""

from __future__ import annotations

import re
from pathlib import Path

from icsflow.definitions.keys import KEYS
from icsflow.definitions.loader import load_text

DOC = Path(__file__).resolve().parents[2] / "docs" / "definitions.md"


def _documented_keys() -> dict[str, tuple[str, ...]]:
    text = DOC.read_text()
    found: dict[str, tuple[str, ...]] = {}
    for match in re.finditer(r"^### ([^\n]+)\nKeys: ((?:[^\n]|\n(?!\n))+?)\.\n", text, re.M):
        found[match.group(1).strip()] = tuple(re.findall(r"`([a-z_]+)`", match.group(2)))
    return found


def test_every_accepted_key_is_documented_and_nothing_else():
    assert _documented_keys() == KEYS


def test_every_key_is_explained_in_the_text():
    text = DOC.read_text()
    for keys in KEYS.values():
        for key in keys:
            assert f"`{key}" in text


def test_the_complete_example_in_the_docs_loads():
    text = DOC.read_text()
    block = re.search(r"## A complete example\n\n```yaml\n(.*?)```", text, re.S)
    assert block is not None
    defn = load_text(block.group(1), "docs/definitions.md")
    assert defn.name == "alert_example"
