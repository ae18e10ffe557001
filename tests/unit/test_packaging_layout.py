"""pyproject lists every package folder: a sub-room left out would be missing once installed."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("workflow", "definitions", "notifiers", "storage")


def test_every_folder_with_an_init_is_an_installed_package() -> None:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {"icsflow." + ".".join(p.parent.relative_to(ROOT).parts)
               for room in ROOMS for p in (ROOT / room).rglob("__init__.py")}
    assert set(tool["packages"]) == on_disk
    assert tool["package-dir"] == {f"icsflow.{room}": room for room in ROOMS}
