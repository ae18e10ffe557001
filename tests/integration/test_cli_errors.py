"""Every bad input to the real `icsflow` entry point ends in one line, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import forked_cli
import pytest


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICSFLOW_")}
    env["ICSFLOW_DB"] = f"sqlite:///{tmp_path / 'cli.db'}"
    return forked_cli.run(args, cwd=tmp_path, env=env, text=True, capture_output=True,
                          timeout=60)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("args", "code", "says"), [
    (["tick", "--now", "yesterday"], 2, "'yesterday' is not a valid date-time"),
    (["calendar", "add", "2012-13-01", "5"], 2, "'2012-13-01' is not a valid date"),
    (["nosuch"], 2, "No such command 'nosuch'"),
    (["start", "nope", "--ref", "C-1", "--actor", "a", "--role", "iro"], 1, "no definition 'nope'"),
    (["show", "no-such-id"], 1, "no database at"),  # a read command never creates one
    (["start", "alert_dispute", "--ref", "C-1", "--actor", "a", "--role", "iro", "--at",
      "9999-12-31"], 2, "is outside the supported dates (1990-01-01..2100-12-31)"),
    (["--db", "foo://x", "list"], 1, "unsupported database 'foo'"),
])
def test_bad_input_is_one_line_with_its_exit_code(tmp_path: Path, args: list[str], code: int,
                                                   says: str) -> None:
    done = run(tmp_path, *args)
    assert done.returncode == code
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and says in lines[0], done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    done = run(tmp_path, "--db", f"postgresql://postgres@127.0.0.1:{closed_port()}/x", "list")
    assert done.returncode == 1
    assert done.stderr.startswith("error: the database could not be used: ")
    assert len(done.stderr.strip().splitlines()) == 1
