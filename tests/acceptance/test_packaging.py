"""Installed, icsflow owns one top-level name: a clashing ``notifiers`` package cannot break it."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

# About 10 s each: a venv, two pip installs and the demo's year through the installed command.
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
OURS = {"workflow", "definitions", "notifiers", "storage"}


def _venv(tmp_path: Path) -> tuple[Path, Path]:
    """A fresh venv that sees the test environment's dependencies but not its icsflow."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True).stdout.strip())
    # The dependencies come from this interpreter's site-packages, appended after the venv's own,
    # so the venv's icsflow (and the clashing package) are found first.
    deps = [p for p in {sysconfig.get_path("purelib"), *site.getsitepackages()} if Path(p).is_dir()]
    (purelib / "zz_test_deps.pth").write_text("\n".join(deps) + "\n")
    return python, purelib


def _pip(python: Path, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                           "--no-deps", "--no-build-isolation", "--no-index", *args],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def _clashing_distribution(tmp_path: Path) -> Path:
    src = tmp_path / "clash"
    (src / "notifiers").mkdir(parents=True)
    (src / "notifiers" / "__init__.py").write_text("raise ImportError('the other notifiers')\n")
    (src / "pyproject.toml").write_text(textwrap.dedent("""\
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "notifiers-clash"
        version = "1.0"
        [tool.setuptools]
        packages = ["notifiers"]
        """))
    return src


@pytest.mark.parametrize("editable", [False, True], ids=["install", "editable"])
def test_a_clashing_top_level_notifiers_package_does_not_break_icsflow(
        tmp_path: Path, editable: bool) -> None:
    python, purelib = _venv(tmp_path)
    build = tmp_path / "src"
    # Build from a copy: building in place would leave build/ and egg-info in the checkout.
    shutil.copytree(ROOT, build, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", "icsflow-demo", "var"))
    _pip(python, *(["-e", str(build)] if editable else [str(build)]))
    _pip(python, str(_clashing_distribution(tmp_path)))

    tops = {p.name for p in purelib.iterdir()}
    assert "notifiers" in tops  # the clash is really installed
    if not editable:
        assert "icsflow" in tops
        assert not (OURS - {"notifiers"}) & tops, sorted(tops)
        assert not (purelib / "icsflow" / "__init__.py").exists()  # a PEP 420 namespace
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    imported = subprocess.run(
        [str(python), "-c", "from icsflow.workflow import Engine, Actor, WorkingCalendar;"
         "import icsflow.notifiers as n; print(n.LogNotifier.__name__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "LogNotifier"
    run = tmp_path / "run"
    run.mkdir()
    demo = subprocess.run([str(python.parent / "icsflow"), "demo"], cwd=run, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert (run / "icsflow-demo" / "icsflow.db").exists()
