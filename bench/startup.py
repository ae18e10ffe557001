"""Benchmark: how soon `icsflow run` refuses a broken or changed definition (target: < 5 s).

Run as ``python bench/startup.py [--runs 5]``. Each run is a fresh `icsflow run` process
(interpreter start-up and imports included) on SQLite, with (1) a definition that does not
parse and (2) a file changed under a version a case already uses. Prints the wall time of each
refusal and checks the exit status and the FILE:LINE line. ``icsflow --version`` is timed as
the floor (the interpreter and click alone).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "definitions" / "examples" / "alert_example.yaml"
CLI = [sys.executable, "-c", "from icsflow.workflow.cli import main; main()"]


def timed(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, str]:
    started = time.perf_counter()
    done = subprocess.run([*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    return time.perf_counter() - started, done.returncode, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    work = Path(tempfile.mkdtemp(prefix="icsflow-startup-"))
    try:
        defs = work / "defs"
        defs.mkdir()
        path = defs / EXAMPLE.name
        shutil.copy(EXAMPLE, path)
        db = f"sqlite:///{work / 'b.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ICSFLOW_")}
        env.update(ICSFLOW_DB=db, ICSFLOW_DEFINITIONS=str(defs), ICSFLOW_MAILDIR="-")
        subprocess.run([*CLI, "start", "alert_example", "--ref", "B-1", "--actor", "iro-1",
                        "--role", "iro", "--set", "concern=c", "--set",
                        "team_manager_email=tm@example.org", "--set",
                        "iro_email=iro@example.org"], env=env, cwd=work, check=True,
                       capture_output=True)
        text = path.read_text(encoding="utf-8")
        cases = {
            "--version (floor)": (text, ["--version"], 0),
            "changed under v1": (text.replace("title:", "title: Changed", 1), ["run"], 1),
            "broken YAML": (text + "\nstates: [\n", ["run"], 1),
        }
        for name, (content, args, status) in cases.items():
            path.write_text(content, encoding="utf-8")
            times = []
            for _ in range(runs):
                seconds, code, err = timed(args, env, work)
                assert code == status, (name, code, err)
                assert status == 0 or err.startswith(f"error: {path}:"), err
                times.append(seconds)
            print(f"{name:<20} median {statistics.median(times):.2f} s  "
                  f"max {max(times):.2f} s  ({runs} runs)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
