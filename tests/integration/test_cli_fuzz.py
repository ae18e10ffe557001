"""A fuzz harness over every command of the real entry point (``main``): each argument gets
values of its kind from the edges (dates at and past the calendar's range, huge numbers,
unicode, control characters, very long text). Whatever happens, the answer is exit 0, or one
line on stderr with exit 1 (refused) or 2 (usage), never a traceback.

``run`` (a daemon that blocks) and ``demo`` (a year's replay) are left out: their arguments
are the same kinds, parsed by the same types, as ``tick``'s.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from icsflow.workflow.cli import cli, main

SKIPPED = {("run",), ("demo",), ("serve",)}  # daemons and a year's replay
_PLACED = re.compile(r"^[^\s:]+:\d+(:\d+)?: \S")
EXAMPLES = int(os.environ.get("ICSFLOW_FUZZ_EXAMPLES", "12"))  # per command; more for a hunt
DATES = ["2012-01-06", "1990-01-01", "2100-12-31", "1989-12-31", "2101-01-01", "0001-01-01",
         "9999-12-31", "2012-02-30", "yesterday", "", "２０１２-01-06"]
DATETIMES = [*DATES, "2012-01-06T12:00:00+00:00", "9999-12-31T23:59", "0001-01-01T00:00+14:00",
             "2100-12-31T23:59:59-12:00", "1990-01-01T00:00+14:00", "2012-01-06T25:00"]
NUMBERS = ["0", "1", "-1", "5", "2147483648", "99999999999999999999999", "-9" * 30, "1e9",
           "١٢", "nan", ""]
TEXT = ["A-1", "", " ", "x" * 300, "x" * 25_000, "A-1\r\nBcc: all@example.org", "bell\x07",
        "tab\tin", "nel\x85line", "é漢字🙂", "--", "-x", "alert_dispute", "iro", "team_manager",
        "respond",
        "'; DROP TABLE instances; --", "{{ 9**9 }}", "../../etc/passwd"]
ASSIGNMENTS = ["concern=x", "team_manager_email=tm@example.org", "concern=\r\n",
               "team_manager_email=a@b.org\r\nBcc: x@y.org", "date=9999-12-31", "nosuch=1",
               "=", "novalue", "concern=" + "y" * 25_000, "category=plan_progress",
               "iro_email=é@例え.jp"]


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        here = (*path, name)
        if isinstance(command, click.Group):
            if command.invoke_without_command:
                yield here, command
            yield from _commands(command, here)
        elif here not in SKIPPED:
            yield here, command


COMMANDS = dict(_commands(cli))


def _values(param: click.Parameter) -> st.SearchStrategy[str]:
    kind = type(param.type).__name__
    if kind == "DateParam":
        return st.sampled_from(DATES)
    if kind == "DateTimeParam":
        return st.sampled_from(DATETIMES)
    if kind in ("IntParamType", "IntRange", "FloatParamType"):
        return st.sampled_from(NUMBERS)
    if isinstance(param.type, click.Choice):
        return st.sampled_from([*map(str, param.type.choices), "nope", ""])
    if kind == "Path":
        return st.sampled_from(["definitions/builtin", "nowhere.yaml", "", "x" * 300])
    if param.name == "assignments" or param.name == "sets":
        return st.sampled_from(ASSIGNMENTS)
    return st.one_of(st.sampled_from(TEXT), st.text(max_size=40).filter(lambda s: "\x00" not in s))


@st.composite
def argv(draw: st.DrawFn, path: tuple[str, ...], case_id: str) -> list[str]:
    command = COMMANDS[path]
    args: list[str] = [*path]
    for param in command.params:
        if param.name == "help":
            continue
        if isinstance(param, click.Argument):
            if param.name in ("instance_id",) and draw(st.booleans()):
                args.append(case_id)
                continue
            count = 1 if param.nargs == 1 else draw(st.integers(0, 2))
            args.extend(draw(_values(param)) for _ in range(count))
            continue
        assert isinstance(param, click.Option)
        if not draw(st.booleans()):
            continue
        flag = param.opts[0]
        if param.is_flag:
            args.append(flag)
        else:
            for _ in range(draw(st.integers(1, 2)) if param.multiple else 1):
                args.extend([flag, draw(_values(param))])
    return args


def _run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = ["icsflow", *args]
    code: object = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exit_:
        code = exit_.code
    finally:
        sys.argv = saved
    return (code if isinstance(code, int) else 1), out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database with one alert to act on, in a folder the commands may write to."""
    folder = tmp_path_factory.mktemp("fuzz")
    env = {"ICSFLOW_DB": f"sqlite:///{folder / 'fuzz.db'}", "ICSFLOW_MAILDIR": str(folder / "m"),
           "ICSFLOW_CONFIG": "", "ICSFLOW_DEFINITIONS": ""}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value) if value else mp.delenv(key, raising=False)
        mp.chdir(folder)
        code, out, err = _run(["start", "alert_dispute", "--ref", "A-1", "--actor", "iro-1",
                               "--role", "iro", "--set", "concern=x", "--set",
                               "team_manager_email=tm@example.org", "--set",
                               "iro_email=iro@example.org", "--json"])
        assert code == 0, err
        import json

        yield str(json.loads(out)["id"])


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_input_ends_in_one_line_and_the_right_exit_code(
        workspace: str, path: tuple[str, ...], tmp_path: Path) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 12,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(args=argv(path, workspace))
    def one(args: list[str]) -> None:
        code, out, err = _run(args)
        shown = repr(args)[:300]
        assert "Traceback" not in out + err, f"{shown}\n{err}"
        assert code in (0, 1, 2), f"{shown} -> {code}\n{err}"
        if code:
            lines = [line for line in err.splitlines() if line.strip()]
            # A file checked whole (import, validate) lists each bad row or line first, as
            # FILE:LINE: message, then its one-line verdict.
            listed = [line for line in lines[:-1] if not _PLACED.match(line)]
            assert lines and not listed, f"{shown} -> {code}\n{err}"

    one()
