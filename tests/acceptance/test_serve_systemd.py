"""`icsflow serve` under systemd Type=notify, with a fake NOTIFY_SOCKET (a unix datagram socket
the test reads) standing in for systemd: READY=1 once it listens, WATCHDOG=1 while /healthz
answers, STOPPING=1 on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import forked_cli
import pytest
from acceptance_support import CLI, free_port

from icsflow.workflow.web.systemd_notify import Watchdog, healthz_probe, watchdog_interval


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    # AF_UNIX paths are limited to about 100 bytes: pytest's tmp_path may be longer.
    path = f"/tmp/icsflow-notify-{os.getpid()}-{time.monotonic_ns()}.sock"  # noqa: S108
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.5)
    try:
        yield path, sock
    finally:
        sock.close()
        os.unlink(path)


def _messages_until(sock: socket.socket, wanted: str, seconds: float) -> list[str]:
    """Every datagram received until one holding ``wanted`` (or the time runs out)."""
    got: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(4096).decode("ascii"))
        except TimeoutError:
            continue
        if wanted in got[-1].splitlines():
            break
    return got


def test_serve_tells_systemd_ready_then_watchdog_then_stopping(
        tmp_path: Path, notify_socket: tuple[str, socket.socket]) -> None:
    path, sock = notify_socket
    db = f"sqlite:///{tmp_path / 'icsflow.db'}"
    forked_cli.run(["--db", db, "db", "upgrade"], check=True, capture_output=True)
    port = free_port()
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen([*CLI, "--db", db, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        ready = _messages_until(sock, "READY=1", 60)
        assert ready and "READY=1" in ready[-1].splitlines(), ready
        assert f"STATUS=serving on 127.0.0.1:{port}" in ready[-1].splitlines()
        pings = _messages_until(sock, "WATCHDOG=1", 10)
        assert pings[-1:] == ["WATCHDOG=1"]
        proc.send_signal(signal.SIGTERM)
        stopping = _messages_until(sock, "STOPPING=1", 20)
        assert stopping[-1:] == ["STOPPING=1"], stopping
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


def test_serve_without_notify_socket_serves_as_before(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'icsflow.db'}"
    forked_cli.run(["--db", db, "db", "upgrade"], check=True, capture_output=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    proc = subprocess.Popen([*CLI, "--db", db, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        probe = healthz_probe("127.0.0.1", port, timeout=1)
        deadline = time.monotonic() + 60
        while not probe() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert probe()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def test_the_watchdog_pings_only_while_the_probe_answers() -> None:
    sent: list[str] = []
    answering = threading.Event()
    answering.set()
    dog = Watchdog(answering.is_set, 0.02, notify=sent.append)
    dog.start()
    try:
        deadline = time.monotonic() + 10
        while len(sent) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sent[:2] == ["WATCHDOG=1", "WATCHDOG=1"]
        answering.clear()
        time.sleep(0.05)  # a ping already past its probe may still land
        before = len(sent)
        time.sleep(0.2)
        assert len(sent) == before
    finally:
        dog.stop()


def test_a_server_that_accepts_but_never_answers_fails_the_probe() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert healthz_probe("0.0.0.0", port, timeout=0.3)() is False  # noqa: S104


def test_nothing_is_listening_fails_the_probe() -> None:
    assert healthz_probe("127.0.0.1", free_port(), timeout=0.3)() is False


def test_the_watchdog_interval_is_half_of_watchdog_usec_for_this_process_only() -> None:
    mine = str(os.getpid())
    assert watchdog_interval({"WATCHDOG_USEC": "60000000"}) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": mine}) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
