"""``icsflow calendar`` through the real root group, as a manager would type it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result

from icsflow.workflow.cli import cli


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["calendar", *args])


def test_add() -> None:
    result = run("add", "2012-05-28", "20")
    assert result.exit_code == 0, result.output
    assert result.output == "2012-06-27\n"


def test_add_negative() -> None:
    result = run("add", "2012-05-28", "-5")
    assert result.exit_code == 0, result.output
    assert result.output == "2012-05-21\n"
    assert run("add", "2012-06-27", "-20").output == "2012-05-28\n"


def test_between() -> None:
    result = run("between", "2012-05-28", "2012-06-27")
    assert result.exit_code == 0, result.output
    assert result.output == "20\n"
    assert run("between", "2012-06-27", "2012-05-28").output == "-20\n"


def test_explain() -> None:
    result = run("explain", "2012-05-28", "20")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        "20 working days after Monday 28 May 2012 is Wednesday 27 June 2012")
    assert "Spring Bank Holiday" in result.output
    assert "Diamond Jubilee" in result.output


def test_holidays() -> None:
    result = run("holidays", "2022")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 10
    assert "2022-09-19  Monday     State Funeral of Queen Elizabeth II" in lines
    assert lines[0].startswith("2022-01-03  Monday")


@pytest.mark.parametrize(("args", "named"), [
    (("add", "2012-13-01", "5"), "2012-13-01"),
    (("between", "2012-05-28", "28/06/2012"), "28/06/2012"),
    (("explain", "yesterday", "3"), "yesterday"),
    (("add", "2012-05-28", "x"), "'x'"),
    (("add", "2012-05-28", "1.5"), "'1.5'"),
    (("holidays", "twenty"), "'twenty'"),
    (("holidays", "1900"), "1900"),
    (("add", "1850-01-01", "5"), "1850-01-01"),
    (("between", "2012-05-28", "2200-01-01"), "2200-01-01"),
    (("add", "2100-12-20", "30"), "2100-12-31"),
    (("add", "2012-05-28"), "N"),
])
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...], named: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert len(result.output.splitlines()) == 1, result.output
    assert named in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception,
                                                                     SystemExit)


def test_help_still_works() -> None:
    result = run("add", "--help")
    assert result.exit_code == 0
    assert "DATE N" in result.output
