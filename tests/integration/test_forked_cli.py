"""The suite's forked commands (tests/forked_cli.py) behave as fresh interpreters do: the same
output, exit status, stdin, working directory, environment and signals, and no state carried
from one command to the next."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import forked_cli
import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="forking needs a POSIX system")


def both(code: str, *args: str, tmp_path: Path, **kwargs: object,
         ) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    env = {**os.environ, "FORKED_TEST_VALUE": "from the test", "PYTHONPATH": str(tmp_path)}
    forked = forked_cli.run_python(code, args, cwd=tmp_path, env=env, capture_output=True,
                                   text=True, timeout=60, **kwargs)  # type: ignore[arg-type]
    fresh = subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60,
                           **kwargs)  # type: ignore[call-overload]
    return forked, fresh


def test_the_cli_answers_the_same_forked_and_fresh(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    for args in (["--help"], ["--db", db, "show", "NO-SUCH-CASE"], ["--no-such-option"]):
        forked, fresh = both(forked_cli.CLI_CODE, *args, tmp_path=tmp_path)
        assert (forked.returncode, forked.stdout, forked.stderr) == \
            (fresh.returncode, fresh.stdout, fresh.stderr), args
    assert forked.returncode == 2  # the last one: a usage error


def test_stdin_argv_directory_environment_and_path_are_the_commands_own(tmp_path: Path,
                                                                         ) -> None:
    (tmp_path / "local_module.py").write_text("WHERE = 'found through PYTHONPATH'\n")
    code = ("import os, sys, local_module\n"
            "print(sys.stdin.read().upper(), sys.argv, os.getcwd(), sys.path[0] == '',\n"
            "      os.environ['FORKED_TEST_VALUE'], local_module.WHERE, __name__)\n")
    forked, fresh = both(code, "one", "two", tmp_path=tmp_path, input="typed in\n")
    assert forked.returncode == fresh.returncode == 0, forked.stderr
    assert forked.stdout == fresh.stdout
    assert "TYPED IN" in forked.stdout and "['-c', 'one', 'two']" in forked.stdout


@pytest.mark.parametrize("code, expected", [
    ("import sys; sys.exit(3)", 3),
    ("raise ValueError('bad')", 1),
    ("import sys; sys.exit('a message')", 1),
    ("import os; os._exit(5)", 5),
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", -signal.SIGKILL),
])
def test_exit_statuses_are_what_a_fresh_interpreter_gives(tmp_path: Path, code: str,
                                                           expected: int) -> None:
    forked, fresh = both(code, tmp_path=tmp_path)
    assert forked.returncode == fresh.returncode == expected
    assert forked.stderr.splitlines()[-1:] == fresh.stderr.splitlines()[-1:]


def test_nothing_a_command_changes_reaches_the_next(tmp_path: Path) -> None:
    change = ("import json, icsflow.workflow.cli as cli\n"
              "print(getattr(cli, 'CHANGED_BY_A_COMMAND', 'fresh'))\n"
              "cli.CHANGED_BY_A_COMMAND = 'changed'\n")
    first, _ = both(change, tmp_path=tmp_path)
    second, _ = both(change, tmp_path=tmp_path)
    assert first.stdout == second.stdout == "fresh\n"


def test_a_spawned_command_is_signalled_and_waited_for(tmp_path: Path) -> None:
    with open(tmp_path / "out.log", "w") as log:
        process = forked_cli.spawn([], cwd=tmp_path, env=dict(os.environ), output=log,
                                   code="import sys, time; print('up', flush=True); "
                                        "time.sleep(120)")
    log_file = tmp_path / "out.log"
    for _ in range(600):  # bounded: until the command is up (not a deadline)
        if log_file.read_text():
            break
        time.sleep(0.05)
    assert process.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(timeout=0.2)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == -signal.SIGTERM
    assert log_file.read_text() == "up\n"


def test_a_command_past_its_timeout_is_killed(tmp_path: Path) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        forked_cli.run_python("import time; time.sleep(120)", cwd=tmp_path, timeout=0.5)
