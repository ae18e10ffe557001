"""Instructions per operation, counted by valgrind (not a test):
``python bench/instructions.py [--ops fire,start,tick] [--small 100 --large 300]``.

Wall-clock rates on a shared VM move by a third between identical runs, which hides a change
worth a few per cent. ``valgrind --tool=callgrind`` counts the instructions the process runs
in user space, the same count for the same code and inputs whatever else the machine does.
Each operation runs twice under valgrind, ``--small`` and ``--large`` times (a tick: 300 and
500 due timers, one batch of 500, so both read with the same compiled statements) after the same
setup (SQLite file copied from a prepared database, the statements compiled by a first call,
``PYTHONHASHSEED=0``), and the difference divided by the difference in operations is what one
more operation costs: setup, imports and one-time compiling cancel out.

What it leaves out: the kernel's share (the commit's writes, reading pages from the OS cache)
and time lost to caches and the disk, so it compares the engine's own CPU from one version to
the next; the floors and their ratios are ``bench/engine.py``'s.
"""

# ruff: noqa: E402
from __future__ import annotations

import sys

sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("bench")]

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

OPS = ("fire", "start", "tick")


def _bench_engine() -> Any:
    """bench/engine.py (its definition, cases and engine settings), loaded by path: the bench
    folder stays off ``sys.path``, where its calendar.py would shadow the stdlib's."""
    found = sys.modules.get("bench_engine")
    if found is None:
        spec = importlib.util.spec_from_file_location(
            "bench_engine", Path(__file__).resolve().parent / "engine.py")
        assert spec is not None and spec.loader is not None
        found = importlib.util.module_from_spec(spec)
        sys.modules["bench_engine"] = found
        spec.loader.exec_module(found)
    return found


def prepare(folder: Path, sizes: tuple[int, ...]) -> None:
    """One database per operation: 2,000 waiting cases for fire (timers far out), none for
    start (its definition registered), and for tick one per size with that many timers due."""
    from icsflow.storage.db import create_db_engine, upgrade

    bench = _bench_engine()
    names = ["fire", "start", *(f"tick-{n}" for n in sizes)]
    for name in names:
        url = f"sqlite:///{folder / name}.db"
        sql = create_db_engine(url)
        upgrade(sql)
        sql.dispose()
        if name == "fire":
            bench.bulk_cases(url, 2000, 0)
        elif name.startswith("tick-"):
            bench.bulk_cases(url, 2000, int(name.removeprefix("tick-")))
        else:
            bench.open_engine(url).close()


def run(folder: Path, op: str, n: int) -> None:
    """``n`` operations on a fresh copy of the prepared database, after one warm-up call."""
    bench = _bench_engine()
    work = folder / f"{op}-run.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    shutil.copy(folder / (f"tick-{n}.db" if op == "tick" else f"{op}.db"), work)
    engine = bench.open_engine(f"sqlite:///{work}")
    if op == "fire":
        engine.fire(bench.case_id(n), "go", bench.CLERK)  # compiles the statements
        for k in range(n):
            engine.fire(bench.case_id(k), "go", bench.CLERK)
    elif op == "start":
        engine.start("bench", ref="warm-up", data=None, actor=bench.CLERK)
        for k in range(n):
            engine.start("bench", ref=f"S{k:07d}", data=None, actor=bench.CLERK)
    else:
        # As bench/engine.py ticks: batches of 500, so both sizes fire in one batch.
        result = engine.tick(bench.DUE + timedelta(hours=1), batch_size=500, commit_every=500)
        assert result.fired == n, result
    engine.close()


def counted(folder: Path, op: str, n: int) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={folder}/{op}.{n}.out",
         sys.executable, __file__, "--run", op, "--n", str(n), "--folder", str(folder)],
        capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    found = re.search(r"Collected : (\d+)", out.stderr)
    if out.returncode != 0 or found is None:  # the run's own error, not this script's traceback
        tail = [line for line in out.stderr.splitlines() if not line.startswith("==")][-8:]
        raise SystemExit(f"{op} x{n} under valgrind failed (exit {out.returncode}):\n"
                         + "\n".join(tail))
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", default=",".join(OPS))
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=300)
    parser.add_argument("--tick-small", type=int, default=300)
    parser.add_argument("--tick-large", type=int, default=500)
    parser.add_argument("--run", choices=OPS, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run(Path(args.folder), args.run, args.n)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    ops = [op for op in args.ops.split(",") if op]
    unknown = sorted(set(ops) - set(OPS))
    if unknown:
        raise SystemExit(f"--ops: unknown {', '.join(unknown)}; choose from {', '.join(OPS)}")
    if not (0 < args.small < args.large <= 2000 and 256 < args.tick_small < args.tick_large <= 500):
        raise SystemExit("sizes: 0 < small < large <= 2000, 256 < tick-small < tick-large <= 500 "
                         "(one batch, read with the same compiled statements)")
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        prepare(folder, (args.tick_small, args.tick_large))
        print("instructions per operation (valgrind callgrind, SQLite; the difference between "
              f"{args.large} and {args.small} operations, {args.tick_large} and "
              f"{args.tick_small} firings in one tick batch)")
        for op in ops:
            lo, hi = ((args.tick_small, args.tick_large) if op == "tick"
                      else (args.small, args.large))
            per_op = (counted(folder, op, hi) - counted(folder, op, lo)) / (hi - lo)
            print(f"{op:<6} {per_op:12,.0f}", flush=True)


if __name__ == "__main__":
    main()
