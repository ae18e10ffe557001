"""Benchmark: the *Today* page for a county under load (20 users for 30 s) on loopback.

Run as ``python bench/web.py [--children 1500] [--users 20] [--seconds 30]``. It builds a
county year with ``bench/report.py``'s generator (about 1,500 children, 15,000 history rows,
SQLite in tmpfs), adds a web user, starts ``icsflow serve`` in its own process with the clock at
31 March 2012 noon, then:

* times 50 sequential requests of ``/`` (one user, nothing else running): what one page costs;
* runs ``--users`` signed-in clients in threads, each requesting ``/`` back to back for
  ``--seconds``, and reports requests per second and latency p50/p95/p99 (all must be 200).

The load generator is Python (httpx) on the same machine: on a small machine it competes with
the server for the CPU, so the numbers are a ceiling on what the server alone would take.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import httpx  # noqa: E402

PASSWORD = "bench-password-123"


def _report_bench() -> object:
    spec = importlib.util.spec_from_file_location("bench_report", _HERE / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sign_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, "no sign-in form"
    r = client.post("/login", data={"username": "bench", "password": PASSWORD, "next": "/",
                                    "csrf_token": token.group(1)})
    assert r.status_code in (200, 303), r.text[:200]
    return client


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=1500)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--reuse", default=None, metavar="FILE",
                        help="a county database an earlier run built (skips building)")
    args = parser.parse_args()

    rb: object = _report_bench()
    from icsflow.storage.web_users import UserStore
    from icsflow.workflow import Engine
    from icsflow.workflow.clock import FakeClock
    from icsflow.workflow.logging import configure_logging
    from icsflow.workflow.web.auth import hash_password

    configure_logging(level="warning")
    shm = Path("/dev/shm")
    folder = tempfile.mkdtemp(prefix="icsflow-web-bench-", dir=shm if shm.is_dir() else None)
    url = f"sqlite:///{args.reuse or folder + '/county.db'}"
    if args.reuse is None:
        clock = FakeClock(rb.at(rb.YEAR_START))  # type: ignore[attr-defined]
        engine = Engine.open(db=url, clock=clock, directory=rb.DIRECTORY)  # type: ignore
        t0 = time.perf_counter()
        gen = rb.Generator(engine, clock)  # type: ignore[attr-defined]
        gen.year(args.children)
        UserStore(engine.store.engine).add("bench", "iro_service_manager",
                                           hash_password(PASSWORD), clock.now())
        engine.close()
        print(f"county built: {args.children} children, {gen.events} events in "
              f"{time.perf_counter() - t0:.1f} s ({url})")

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-c", "from icsflow.workflow.cli import main; main()", "--db", url,
         "serve", "--port",
         str(port), "--now", "2012-03-31T12:00"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "ICSFLOW_WEB_SECRET": "bench-secret-bench-secret"})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise SystemExit("the server did not start")
        client = sign_in(base)
        page = client.get("/")
        rows = page.text.count("<tr class=")
        print(f"Today page: {len(page.content) / 1024:.0f} KiB, {rows} deadlines listed")
        single = []
        for _ in range(50):
            t = time.perf_counter()
            assert client.get("/").status_code == 200
            single.append(time.perf_counter() - t)
        print(f"one user, 50 sequential requests: p50 {statistics.median(single) * 1000:.0f} ms"
              f", p95 {percentile(single, 0.95) * 1000:.0f} ms")

        latencies: list[float] = []
        failures: list[int] = []
        lock = threading.Lock()
        clients = [sign_in(base) for _ in range(args.users)]
        stop = time.monotonic() + args.seconds

        def work(c: httpx.Client) -> None:
            mine: list[float] = []
            bad = 0
            while time.monotonic() < stop:
                t = time.perf_counter()
                r = c.get("/")
                mine.append(time.perf_counter() - t)
                bad += r.status_code != 200
            with lock:
                latencies.extend(mine)
                failures.append(bad)

        threads = [threading.Thread(target=work, args=(c,)) for c in clients]
        started = time.monotonic()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        elapsed = time.monotonic() - started
        print(f"{args.users} users for {args.seconds:.0f} s: {len(latencies)} requests "
              f"({len(latencies) / elapsed:.1f}/s), non-200: {sum(failures)}; latency p50 "
              f"{percentile(latencies, 0.5) * 1000:.0f} ms, p95 "
              f"{percentile(latencies, 0.95) * 1000:.0f} ms, p99 "
              f"{percentile(latencies, 0.99) * 1000:.0f} ms")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
