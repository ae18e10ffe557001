"""The benchmarks that decide the performance targets still run and print their rows (a smoke
run at tiny sizes: whether a target is met is read from full runs by hand, never here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _run(*args: str, timeout: int = 240) -> str:
    """Run a bench script (SQLite only, ``--sqlite-only``: PostgreSQL runs are by hand)."""
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_engine_bench_prints_each_rate_beside_its_floor() -> None:
    out = _run(str(BENCH / "engine.py"), "--quick", "--sqlite-only", "--rounds", "1",
               "--no-aps", "--n-fire", "40", "--n-tick", "60", "--n-start", "40")
    for op in ("fire", "tick", "start"):
        assert re.search(rf"^{op} +engine +\d+/s +floor +\d+/s +floor/engine +[\d.]+x +target",
                         out, re.MULTILINE), out


def test_the_county_bench_replays_a_small_county() -> None:
    out = _run(str(BENCH / "county.py"), "--sqlite-only", "--children", "16", "--scales", "1",
               "--repeat", "1")
    row = re.search(r"^sqlite +1x +[\d.]+ s +\d+ ops/s +\(timers ([\d,]+), starts ([\d,]+), "
                    r"events ([\d,]+), refused (\d+)\)", out, re.MULTILINE)
    assert row is not None, out
    assert all(int(n.replace(",", "")) > 0 for n in row.groups()[:3])
    assert row.group(4) == "0"  # every scripted event was allowed when it came


def test_the_instruction_count_bench_runs_each_operation(tmp_path: Path) -> None:
    """What ``bench/instructions.py`` runs under valgrind, run here without it (valgrind
    makes it minutes), in a process of its own (the bench configures logging): each operation
    on its prepared database, the tick asserting that it fired all three."""
    script = (
        "import importlib.util, sys\n"
        "from pathlib import Path\n"
        f"spec = importlib.util.spec_from_file_location('bi', {str(BENCH / 'instructions.py')!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        f"folder = Path({str(tmp_path)!r})\n"
        "module.prepare(folder, (3,))\n"
        "for op in ('fire', 'start', 'tick'):\n"
        "    module.run(folder, op, 3)\n"
        "print('ran')\n")
    assert _run("-c", script).strip().endswith("ran")
