"""`icsflow run` and `Engine.open` refuse broken or changed definitions at once, with FILE:LINE.

How fast (the 5-second target) is measured by ``bench/startup.py``, never here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from icsflow.workflow import Actor, Engine
from icsflow.workflow.errors import DefinitionError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "definitions" / "examples" / "alert_example.yaml"
CLI = [sys.executable, "-c", "from icsflow.workflow.cli import main; main()"]
DATA = {"concern": "c", "team_manager_email": "tm@example.org", "iro_email": "i@example.org"}


@pytest.fixture
def defs(tmp_path: Path) -> Path:
    folder = tmp_path / "defs"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / EXAMPLE.name)
    return folder


def _used_then_changed(db: str, defs: Path) -> Path:
    with Engine.open(db=db, definitions=defs) as engine:
        engine.start("alert_example", "F-1", DATA, Actor("iro-1", "iro"), at=date(2012, 1, 2))
    path = defs / EXAMPLE.name
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("title:", "title: Changed", 1), encoding="utf-8")
    return path


def _version_line(path: Path) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith("version:"))


def _run(tmp_path: Path, db: str, defs: Path) -> subprocess.CompletedProcess[str]:
    """`icsflow run`; a daemon that did not refuse would run until the timeout fails it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICSFLOW_")}
    env.update(ICSFLOW_DB=db, ICSFLOW_DEFINITIONS=str(defs), ICSFLOW_MAILDIR="-")
    return subprocess.run([*CLI, "run", "--metrics-port", "0"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)


def test_engine_open_names_the_changed_file_and_its_version_line(tmp_path: Path,
                                                                 defs: Path) -> None:
    db = f"sqlite:///{tmp_path / 'f.db'}"
    path = _used_then_changed(db, defs)
    with pytest.raises(DefinitionError) as info:
        Engine.open(db=db, definitions=defs)
    [problem] = info.value.problems
    assert problem.startswith(f"{path}:{_version_line(path)}: definition 'alert_example' "
                              "version 1 has changed since it was first used")
    assert "bump `version:` to 2" in problem


def test_run_refuses_a_file_changed_under_a_used_version(
        tmp_path: Path, defs: Path) -> None:
    db = f"sqlite:///{tmp_path / 'f.db'}"
    path = _used_then_changed(db, defs)
    done = _run(tmp_path, db, defs)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        line for line in done.stderr.splitlines() if line.startswith(
            f"error: {path}:{_version_line(path)}: definition 'alert_example' version 1 has "
            "changed")]
    assert len(done.stderr.splitlines()) == 1


def test_run_refuses_a_broken_definition(tmp_path: Path, defs: Path) -> None:
    path = defs / EXAMPLE.name
    path.write_text(path.read_text(encoding="utf-8").replace("initial: ", "initial: nowhere_",
                                                             1), encoding="utf-8")
    done = _run(tmp_path, f"sqlite:///{tmp_path / 'f.db'}", defs)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines and all(line.startswith(f"error: {path}:") for line in lines), done.stderr
    assert "Traceback" not in done.stderr
