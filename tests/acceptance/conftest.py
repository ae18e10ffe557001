"""Acceptance fixtures: the SMTP server and workspace live in acceptance_support (importable by
the tests by that name); the demo's year, replayed once per run, is here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from acceptance_support import smtp, workspace  # noqa: F401


@dataclass(frozen=True)
class DemoRun:
    """What ``icsflow demo`` printed, and a copy of the folder it ran in, for one test."""

    stdout: str
    folder: Path

    @property
    def db(self) -> str:
        return f"sqlite:///{self.folder / 'icsflow-demo' / 'icsflow.db'}"


@contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """One xdist worker at a time (the others wait, then find the work done)."""
    import fcntl

    with lock_file.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class DemoYear:
    """The folder ``icsflow demo`` ran in (never written to again) and what it printed."""

    stdout: str
    folder: Path

    def copy_to(self, target: Path) -> DemoRun:
        """A copy of the folder at ``target``, for a test that reads or changes it."""
        shutil.copytree(self.folder, target, dirs_exist_ok=True)
        return DemoRun(self.stdout, target)


@pytest.fixture(scope="session")
def demo_year(tmp_path_factory: pytest.TempPathFactory) -> DemoYear:
    """``icsflow demo`` run once for the whole run, in a fresh folder with no ICSFLOW_
    variables (the README's first command): all xdist workers share it under their common
    base temp dir. The replay is the same every time, and took 8-11 s for each of the three
    modules that read its output or its database."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's folder, above each worker's own
    folder = shared / "demo-year"
    printed = shared / "demo-year.stdout"
    with _exclusive(shared / "demo-year.lock"):
        if not printed.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            env = {k: v for k, v in os.environ.items() if not k.startswith("ICSFLOW_")}
            done = subprocess.run(
                [sys.executable, "-c", "from icsflow.workflow.cli import main; main()", "demo"],
                cwd=folder, env=env, capture_output=True, text=True, timeout=180, check=False)
            assert done.returncode == 0, done.stderr
            printed.write_text(done.stdout, encoding="utf-8")
    return DemoYear(printed.read_text(encoding="utf-8"), folder)


@pytest.fixture
def demo_run(demo_year: DemoYear, tmp_path: Path) -> DemoRun:
    """The demo's output and a copy of its folder in this test's tmp_path (free to change)."""
    return demo_year.copy_to(tmp_path)
