"""The DfE's own validation rules as a test oracle: ``csc-validator-be-903`` and
``csc-validator-be-cin`` (the data-to-insight community's packages) run from a side virtual
environment, because they pin pandas < 2 and numpy < 1.25, which icsflow's environment must not
be bent to.

The side environment is built once, outside the clone (``~/.cache/icsflow/dfe-validators-
903-<v>-cin-<v>-py<X.Y>``, or ``$ICSFLOW_DFE_VALIDATORS_DIR``), with ``pip`` from the package
registry, and reused by every later run on the machine (CI runs on the same machine). A lock
file keeps two test workers from building it at once; a marker file written last says it is
complete (a build that stopped part-way is started again). ``run_903``/``run_cin`` run the
validator as a subprocess over the given files and return ``{rule code: [error locations]}``;
a rule that raised is reported in ``failed``, never read as a pass. Tests call ``require()``:
it skips with the reason only when the environment cannot be built (no registry, no suitable
interpreter).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

V903 = "0.1.17"
VCIN = "0.1.13"
PACKAGES = (f"csc-validator-be-903=={V903}", f"csc-validator-be-cin=={VCIN}")
RULES_903 = ("166", "167", "399", "440", "441")
RULES_CIN = ("1104", "1105", "2883", "2885", "8615", "8715", "8740", "8840", "8841", "8842Q",
             "8870Q", "8875", "8890", "8925", "8930", "8940")
RULESET_903 = "lac2025_26"
RULESET_CIN = "cin2025_26"
RUNNER = Path(__file__).with_name("dfe_runner.py")
_PYTHONS = ("python3.11", "python3.10", "python3.9")  # pandas 1.5 and numpy 1.24 have wheels


@dataclass
class Verdict:
    """What one validator run said: errors by rule code, and rules that could not run."""

    errors: dict[str, list[str]]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def failing(self) -> dict[str, list[str]]:
        """Only the rules that reported an error."""
        return {code: found for code, found in self.errors.items() if found}


class Unavailable(RuntimeError):
    """The side environment cannot be built here (the reason says why)."""


def _interpreter() -> str:
    """An interpreter the pinned pandas has wheels for: ours when it is 3.9-3.11."""
    if (3, 9) <= sys.version_info[:2] <= (3, 11):
        return sys.executable
    for name in _PYTHONS:
        found = shutil.which(name)
        if found:
            return found
    raise Unavailable(f"no Python 3.9-3.11 interpreter for pandas < 2 (this is "
                      f"{sys.version.split()[0]}; looked for {', '.join(_PYTHONS)})")


def _version(python: str) -> str:
    out = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def home() -> Path:
    """Where the side environment lives (built or not)."""
    python = _interpreter()
    base = os.environ.get("ICSFLOW_DFE_VALIDATORS_DIR")
    root = Path(base) if base else Path.home() / ".cache" / "icsflow"
    return root / f"dfe-validators-903-{V903}-cin-{VCIN}-py{_version(python)}"


def ensure() -> Path:
    """The side environment's python, building the environment once (under a lock)."""
    python = _interpreter()
    venv = home()
    marker = venv / "complete"
    target = venv / "bin" / "python"
    if marker.is_file():
        return target
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file():
            return target
        shutil.rmtree(venv, ignore_errors=True)  # a build that stopped part-way
        try:
            subprocess.run([python, "-m", "venv", str(venv)], check=True,
                           capture_output=True, text=True, timeout=300)
            pip = subprocess.run([str(target), "-m", "pip", "install", "-q", *PACKAGES],
                                 capture_output=True, text=True, timeout=1200)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            shutil.rmtree(venv, ignore_errors=True)
            raise Unavailable(f"could not create the side environment: {exc}") from None
        if pip.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            tail = " | ".join(pip.stderr.strip().splitlines()[-3:])
            raise Unavailable(f"pip could not install {' '.join(PACKAGES)}: {tail}")
        marker.write_text(" ".join(PACKAGES) + "\n")
    return target


def require() -> Path:
    """``ensure()``, or skip the calling test with the reason the environment is missing."""
    try:
        return ensure()
    except Unavailable as exc:
        pytest.skip(f"DfE validators unavailable: {exc}")


def _run(kind: str, files: Sequence[Path], year: str, rules: Sequence[str],
         ruleset: str) -> Verdict:
    python = require()
    args = {"kind": kind, "files": [str(Path(f).resolve()) for f in files], "year": year,
            "rules": list(rules), "ruleset": ruleset}
    done = subprocess.run([str(python), str(RUNNER), json.dumps(args)], capture_output=True,
                          text=True, timeout=600)
    if done.returncode != 0:
        raise AssertionError(f"the {kind} validator crashed: {done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return Verdict(out["errors"], out["ran"], out["skipped"], out["failed"], out["unknown"])


def run_903(files: Sequence[Path], year: str, rules: Sequence[str] = RULES_903,
            ruleset: str = RULESET_903) -> Verdict:
    """The SSDA903 rules over CSV files (header.csv, episodes.csv, reviews.csv ...) of the
    collection year ``year`` ('2012-13')."""
    return _run("903", files, year, rules, ruleset)


def run_cin(xml: Path, rules: Sequence[str] = RULES_CIN, ruleset: str = RULESET_CIN,
            ) -> Verdict:
    """The CIN census rules over one census XML (its Header's ReferenceDate sets the year)."""
    return _run("cin", [xml], "", rules, ruleset)


__all__ = ["Verdict", "Unavailable", "ensure", "require", "run_903", "run_cin", "RULES_903",
           "RULES_CIN", "home"]
