"""deploy/check, as CI runs it: both systemd units verify clean, and a broken copy of a unit
makes it fail (systemd-analyze verify itself exits 0 on a misspelt key, so this matters)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from acceptance_support import ROOT

CHECK = ROOT / "deploy" / "check"
UNIT = ROOT / "deploy" / "systemd" / "icsflow.service"
VENV = Path(sys.executable).parent.parent

pytestmark = [
    pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                       reason="systemd-analyze is not installed (Debian package systemd)"),
    pytest.mark.skipif(not (VENV / "bin" / "icsflow").exists(),
                       reason=f"no icsflow console script in {VENV} (pip install the package)"),
]


def _check(*units: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ICSFLOW_VENV": str(VENV)}
    return subprocess.run(["bash", str(CHECK), *map(str, units)], env=env, capture_output=True,
                          text=True, timeout=300)


def test_deploy_check_passes_on_the_shipped_units_and_sample_configuration() -> None:
    done = _check()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "systemd-analyze verify: 2 unit(s) clean" in done.stdout
    assert "deploy/icsflow.toml loads" in done.stdout
    assert done.stdout.count("OK") >= 2  # both units' exposure in the OK band


@pytest.mark.parametrize(("unit", "change", "reported"), [
    ("icsflow.service", ("Type=notify", "Type=notfy"), "Failed to parse service type"),
    ("icsflow.service", ("WatchdogSec=120", "WatchdogSec=soon"), "Failed to parse sec value"),
    ("icsflow.service", ("NoNewPrivileges=yes", "NoNewPrivilegs=yes"), "Unknown key"),
    ("icsflow.service", ("[Service]", "[Servce]"), "Unknown section"),
    ("icsflow-web.service",
     ("ExecStart=/opt/icsflow/bin/icsflow", "ExecStart=/opt/icsflow/bin/icsflw"),
     "is not executable"),
    ("icsflow.service", ("/opt/icsflow/bin/icsflow run", "/opt/icsflow/bin/icsflw run"),
     "is not a program of the installed package"),
], ids=["bad-type", "bad-watchdog", "misspelt-key", "misspelt-section", "missing-binary",
        "missing-binary-behind-env"])
def test_deploy_check_fails_on_a_broken_unit(tmp_path: Path, unit: str, change: tuple[str, str],
                                             reported: str) -> None:
    text = (UNIT.parent / unit).read_text(encoding="utf-8")
    assert change[0] in text  # the break must hit a line the unit really has
    broken = tmp_path / unit
    broken.write_text(text.replace(change[0], change[1], 1), encoding="utf-8")
    done = _check(broken)
    assert done.returncode != 0
    assert reported in done.stdout


def test_deploy_check_fails_when_hardening_is_removed(tmp_path: Path) -> None:
    kept = [line for line in UNIT.read_text(encoding="utf-8").splitlines()
            if not line.startswith(("Protect", "Private", "Restrict", "SystemCall",
                                    "CapabilityBoundingSet", "NoNewPrivileges"))]
    weak = tmp_path / "icsflow.service"
    weak.write_text("\n".join(kept) + "\n", encoding="utf-8")
    done = _check(weak)
    assert done.returncode != 0
    assert "hardening exposure above 2.0" in done.stdout
