"""Acceptance fixtures: the CLI and daemon as subprocesses, a real SMTP server on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message as EmailMessage
from pathlib import Path
from typing import Any

import forked_cli
import pytest
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "definitions" / "examples" / "alert_example.yaml"
CLI = [sys.executable, "-c", "from icsflow.workflow.cli import main; main()"]


@dataclass
class Received:
    """What the SMTP server accepted: envelope recipients and the parsed message."""

    rcpt: list[str]
    message: EmailMessage


@dataclass
class _Handler:
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            self.received.append(Received(list(envelope.rcpt_tos),
                                          message_from_bytes(envelope.content)))
        return "250 OK"


class SmtpServer:
    """An aiosmtpd server on a fixed loopback port that can be stopped and started again."""

    def __init__(self) -> None:
        self.handler = _Handler()
        self.port = free_port()
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def message_ids(self) -> list[str]:
        return [str(r.message["Message-ID"]) for r in self.received]


class TcpProxy:
    """A loopback forwarder in front of PostgreSQL that the test can cut and restore."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and cut every open one (as a network outage would)."""
        if self._listener is not None:
            try:  # wakes the thread blocked in accept(), which else keeps the port bound
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            for conn in self._conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@dataclass
class Workspace:
    """A tmp dir with definitions, a database URL and the environment for subprocesses."""

    path: Path
    db: str
    env: dict[str, str]

    def icsflow(self, *args: str, check: bool = True, timeout: float = 60,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run the CLI in the workspace (``env``: variables added for this run only)."""
        proc = forked_cli.run(args, cwd=self.path, env={**self.env, **(env or {})},
                              text=True, capture_output=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"icsflow {' '.join(args)} -> {proc.returncode}\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def spawn(self, *args: str, **env: str) -> forked_cli.ForkedProcess | subprocess.Popen[str]:
        """Start a daemon (or a long command) the test signals and waits for, forked as the
        other commands are; its output goes to a daemon-*.log file in the workspace."""
        with open(self.path / f"daemon-{time.monotonic_ns()}.log", "w") as log:
            return forked_cli.spawn(args, cwd=self.path, env={**self.env, **env}, output=log)

    def python(self, code: str) -> str:
        proc = forked_cli.run_python(code, cwd=self.path, env=self.env, text=True,
                                     capture_output=True, timeout=60)
        if proc.returncode != 0:
            raise AssertionError(proc.stderr)
        return proc.stdout

    def start_cases(self, refs: list[str]) -> None:
        """Start many alerts in one process (through the Python API) to keep tests fast."""
        if refs:
            self.start_case(refs[0], batch=refs)

    def start_case(self, ref: str, *, at: str = "2012-01-02T10:00:00+00:00",
                   team_manager: str = "tm@example.org", batch: list[str] | None = None) -> str:
        """Start an alert through the CLI when ``start`` exists, else through the Python API."""
        data = {"concern": "Care plan not updated", "iro_email": "iro@example.org",
                "team_manager_email": team_manager}
        if _has_command(self, "start") and not batch:
            sets = [a for k, v in data.items() for a in ("--set", f"{k}={v}")]
            out = self.icsflow("start", "alert_example", "--ref", ref, "--actor", "iro-1",
                               "--role", "iro", *sets, "--at", at, "--json").stdout
            import json
            return str(json.loads(out)["id"])
        code = (
            "import os\nfrom datetime import datetime\nfrom icsflow.workflow.engine import Engine\n"
            "from icsflow.workflow.instance import Actor\n"
            f"e = Engine.open(db={self.db!r}, definitions={str(self.path / 'defs')!r})\n"
            f"for ref in {batch or [ref]!r}:\n"
            f"    i = e.start('alert_example', ref=ref, data={data!r}, "
            f"actor=Actor('iro-1', 'iro'), at=datetime.fromisoformat({at!r}))\n"
            "    print(i.id)\n")
        return self.python(code).strip()


_COMMANDS: dict[str, bool] = {}


def _has_command(ws: Workspace, name: str) -> bool:
    if name not in _COMMANDS:
        proc = ws.icsflow(name, "--help", check=False)
        _COMMANDS[name] = proc.returncode == 0
    return _COMMANDS[name]


def write_config(path: Path, smtp_url: str | None, **extra: Any) -> Path:
    import yaml

    config: dict[str, Any] = {
        "directory": {"iro_service_manager": ["ism@example.org"],
                      "head_of_service": ["hos@example.org"]},
        "admin_address": "iro-admin@example.org",
        "smtp": {"mail_from": "icsflow@example.org", "timeout": 5},
        "intervals": {"sweep_seconds": 1, "dispatch_seconds": 0.5, "backoff_base_seconds": 1,
                      "lease_seconds": 3},
    }
    if smtp_url:
        config["smtp"]["url"] = smtp_url
    for key, value in extra.items():
        config.setdefault(key, {}).update(value) if isinstance(value, dict) else None
    target = path / "icsflow.yaml"
    target.write_text(yaml.safe_dump(config), encoding="utf-8")
    return target


@pytest.fixture
def workspace(tmp_path: Path, smtp: SmtpServer) -> Workspace:
    return make_workspace(tmp_path, f"sqlite:///{tmp_path / 'icsflow.db'}", smtp.url)


def make_workspace(tmp_path: Path, db: str, smtp_url: str | None, **extra: Any) -> Workspace:
    defs = tmp_path / "defs"
    defs.mkdir(exist_ok=True)
    shutil.copy(EXAMPLE, defs / EXAMPLE.name)
    config = write_config(tmp_path, smtp_url, **extra)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICSFLOW_")}
    env.update(ICSFLOW_DB=db, ICSFLOW_DEFINITIONS=str(defs), ICSFLOW_CONFIG=str(config),
               PYTHONPATH=str(ROOT))
    return Workspace(tmp_path, db, env)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll (bounded) for a subprocess to reach a state; never used to reach a deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
