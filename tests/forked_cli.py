"""`icsflow` commands as processes forked from one that has already imported icsflow.

Most of the suite's CPU went on starting `icsflow` in a fresh interpreter for each command a
test runs: half a second of interpreter start-up and imports, and a third of a second loading
the shipped definitions, before the command itself (issue 24's four-minute suite). Here each
xdist worker starts one server that imports the CLI and loads the shipped definitions once,
then forks a child per command. The child is still a separate process with its own working
directory, environment, stdin, stdout, stderr and exit status (a signal shows as a negative
code, as with ``subprocess``), and nothing one command does is seen by the next: each starts
from the server's state, never from an earlier child's.

``run`` takes the arguments of ``subprocess.run`` that the tests use. A fresh interpreter is
still used where forking could not be faithful: when ``ICSFLOW_TEST_FORK=0``, when the
environment sets a variable that acts at interpreter start (``PYTHON*``, the locale), or
when forking is not available. The packaging tests, the demo's first run and the benches
keep using real interpreters, so start-up itself stays covered.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

CLI_CODE = "from icsflow.workflow.cli import main; main()"
CLI = [sys.executable, "-c", CLI_CODE]
# Variables an interpreter reads when it starts (PYTHONPATH is applied to the child's sys.path).
_AT_START = ("PYTHON", "LC_", "LANG")
_HEADER = struct.Struct("!I")
_STATUS = struct.Struct("!iq")  # the child's pid, then its wait status


def run(args: Sequence[str], *, cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None, input: str | None = None,  # noqa: A002
        capture_output: bool = False, text: bool = False, timeout: float | None = None,
        check: bool = False) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run([*CLI, *args], ...)``, forked from the worker's warm server."""
    return run_python(CLI_CODE, args, cwd=cwd, env=env, input=input,
                      capture_output=capture_output, text=text, timeout=timeout, check=check)


def run_python(code: str, args: Sequence[str] = (), *, cwd: str | Path | None = None,
               env: Mapping[str, str] | None = None, input: str | None = None,  # noqa: A002
               capture_output: bool = False, text: bool = False,
               timeout: float | None = None, check: bool = False,
               ) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run([python, "-c", code, *args], ...)``, forked from the warm server."""
    argv = [sys.executable, "-c", code, *args]
    environ = dict(os.environ if env is None else env)
    server = None if _fresh_interpreter_needed(environ) else _server()
    if server is None:
        return subprocess.run(argv, cwd=cwd, env=environ, input=input,
                              capture_output=capture_output, text=text, timeout=timeout,
                              check=check)
    with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as out, \
            tempfile.TemporaryFile() as err:
        if input is not None:
            stdin.write(input.encode() if text else input)  # type: ignore[arg-type]
            stdin.seek(0)
        fds = [stdin.fileno(),
               out.fileno() if capture_output else sys.stdout.fileno(),
               err.fileno() if capture_output else sys.stderr.fileno()]
        child = server.start(_request(code, args, cwd, environ), fds)
        try:
            code_ = child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise
        stdout, stderr = (_read(out, text), _read(err, text)) if capture_output else (None, None)
    done = subprocess.CompletedProcess(argv, code_, stdout, stderr)
    if check:
        done.check_returncode()
    return done


def spawn(args: Sequence[str], *, cwd: str | Path, env: Mapping[str, str], output: IO[Any],
          code: str = CLI_CODE) -> ForkedProcess | subprocess.Popen[Any]:
    """``subprocess.Popen([python, "-c", code, *args], stdout=output, stderr=STDOUT)`` (the CLI
    unless ``code`` says otherwise): a daemon the test signals and waits for."""
    environ = dict(env)
    server = None if _fresh_interpreter_needed(environ) else _server()
    if server is None:
        return subprocess.Popen([sys.executable, "-c", code, *args], cwd=cwd, env=environ,
                                text=True, stdout=output, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    with open(os.devnull, "rb") as stdin:
        return server.start(_request(code, args, cwd, environ),
                            [stdin.fileno(), output.fileno(), output.fileno()])


def _request(code: str, args: Sequence[str], cwd: str | Path | None,
             environ: Mapping[str, str]) -> dict[str, Any]:
    return {"code": code, "argv": ["-c", *args], "env": dict(environ),
            "cwd": str(Path(cwd or os.getcwd()).resolve())}


class _Options:
    fresh = False  # set for a test that counts on real start-up time (tests/acceptance/conftest)


options = _Options()


def _fresh_interpreter_needed(environ: Mapping[str, str]) -> bool:
    if (options.fresh or os.environ.get("ICSFLOW_TEST_FORK", "1") == "0"
            or not hasattr(os, "fork")):
        return True
    def at_start(env: Mapping[str, str]) -> dict[str, str]:
        return {k: v for k, v in env.items() if k.startswith(_AT_START) and k != "PYTHONPATH"}

    return at_start(os.environ) != at_start(environ)


def _read(file: IO[bytes], text: bool) -> str | bytes:
    file.seek(0)
    data = file.read()
    # As subprocess does with text=True: the locale's encoding, universal newlines.
    return io.TextIOWrapper(io.BytesIO(data), newline=None).read() if text else data


class _Server:
    """The worker's side of one warm server process."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="icsflow-fork-")
        self.path = os.path.join(self.folder, "server.sock")
        self.process = subprocess.Popen(
            [sys.executable, __file__, self.path, str(os.getpid())],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        ready = self.process.stdout.readline() if self.process.stdout else ""
        if ready.strip() != "ready":
            raise RuntimeError(f"the forking CLI server did not start: {ready!r}")

    def start(self, request: dict[str, Any], fds: list[int]) -> ForkedProcess:
        payload = json.dumps(request).encode()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(self.path)
        socket.send_fds(conn, [_HEADER.pack(len(payload))], fds)
        conn.sendall(payload)
        return ForkedProcess(conn, request["argv"])

    def stop(self) -> None:
        import shutil

        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)


class ForkedProcess:
    """The parts of ``subprocess.Popen`` the tests use, for a command the server forked: its
    reaper sends the pid, then the exact wait status."""

    def __init__(self, conn: socket.socket, args: Sequence[str]) -> None:
        self._conn = conn
        self.args = list(args)
        self.returncode: int | None = None
        self.pid = _STATUS.unpack(_recv_exactly(conn, _STATUS.size))[0]
        self._pending = b""

    def poll(self) -> int | None:
        if self.returncode is None:
            self._conn.setblocking(False)
            try:
                self._take()
            except BlockingIOError:
                pass
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._conn.settimeout(timeout)
            try:
                self._take()
            except TimeoutError:
                raise subprocess.TimeoutExpired(self.args, timeout or 0) from None
        assert self.returncode is not None
        return self.returncode

    def _take(self) -> None:
        while len(self._pending) < _STATUS.size:
            chunk = self._conn.recv(_STATUS.size - len(self._pending))
            if not chunk:
                raise ConnectionError("the forked command's reaper closed the connection")
            self._pending += chunk
        self.returncode = os.waitstatus_to_exitcode(_STATUS.unpack(self._pending)[1])
        self._conn.close()

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


_lock = threading.Lock()
_servers: dict[int, _Server] = {}


def _server() -> _Server:
    with _lock:
        server = _servers.get(os.getpid())
        if server is None or server.process.poll() is not None:
            server = _servers[os.getpid()] = _Server()
        return server


def stop_server() -> None:
    """End this process's server (the suite calls it when a worker finishes)."""
    with _lock:
        server = _servers.pop(os.getpid(), None)
    if server is not None:
        server.stop()


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the forked command's reaper closed the connection")
        data += chunk
    return data


# -- the server (runs in its own interpreter: `python forked_cli.py SOCKET PARENT_PID`) ---------

def _warm() -> None:
    """Import what the commands import, and load the shipped definitions once (remembered as
    tests/conftest.py remembers them: the same bytes under the same name give the same
    frozen Definition)."""
    import importlib
    import pkgutil

    from remembered_definitions import REMEMBERED

    # Every module of the four rooms (the CLI's commands import theirs when they run), but not
    # the web page's (`serve` runs as a daemon) nor Alembic's env.py (it runs only to migrate).
    for package in ("icsflow.workflow", "icsflow.storage", "icsflow.definitions",
                    "icsflow.notifiers"):
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            if not any(part in info.name for part in (".web", ".migrations", "__main__")):
                importlib.import_module(info.name)
    # Imported on first use by what the commands call: the SQL dialects, and every country of
    # `holidays` (its registry imports them all to find one: 0.12 s of each command's 0.19).
    for lazy in ("sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.postgresql.psycopg",
                 "holidays.countries"):
        importlib.import_module(lazy)
    REMEMBERED.install()
    from icsflow.definitions.registry import load_default

    load_default()


def _serve(path: str, parent: int) -> None:
    import gc

    _warm()  # sys.path[0] is this file's folder: remembered_definitions imports from it
    gc.collect()
    gc.freeze()  # children share the warm heap; collections in them do not touch it
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # reapers are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    listener.settimeout(1.0)
    print("ready", flush=True)
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            if os.getppid() != parent:  # the worker is gone
                return
            continue
        conn.settimeout(None)
        header, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 3)
        request = json.loads(_recv_exactly(conn, _HEADER.unpack(header)[0]))
        if os.fork() == 0:
            try:
                listener.close()
                _reap(conn, request, fds)
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)
        conn.close()


def _reap(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """In the forked reaper: fork the command, report its pid and exact wait status."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        conn.close()
        _command(request, fds)
    for fd in fds:
        os.close(fd)
    conn.sendall(_STATUS.pack(pid, 0))
    _, status = os.waitpid(pid, 0)
    conn.sendall(_STATUS.pack(pid, status))
    os._exit(0)


def _command(request: dict[str, Any], fds: list[int]) -> None:
    """In the command's process: its stdio, directory and environment, then the CLI's main."""
    import atexit
    import random
    import time
    import traceback
    import types

    code = 1
    try:
        for number, fd in enumerate(fds):
            os.dup2(fd, number)
        for fd in set(fds):
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        time.tzset()
        random.seed()
        sys.argv = list(request["argv"])
        sys.path[0] = ""  # as `python -c`: the working directory first
        _python_path(request["env"].get("PYTHONPATH", ""))
        main = types.ModuleType("__main__")
        sys.modules["__main__"] = main
        try:
            exec(compile(request["code"], "<string>", "exec"), main.__dict__)  # noqa: S102
            code = 0
        except SystemExit as exit_:
            code = _exit_code(exit_.code)
        except BaseException:  # noqa: BLE001 - as the interpreter would: traceback, exit 1
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed stream: nothing left to flush
                pass
        os._exit(code)


_SERVER_PATH = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]


def _python_path(value: str) -> None:
    """As an interpreter started with this PYTHONPATH: its entries after the script's folder."""
    rest = sys.path[1:]
    for entry in _SERVER_PATH:
        if entry in rest:
            rest.remove(entry)
    sys.path[1:] = [p for p in value.split(os.pathsep) if p] + rest


def _exit_code(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]))
