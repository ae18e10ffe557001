"""``icsflow calendar``: ask the working-day calendar directly (add, between, holidays, explain),
and move open deadlines when it changed (reproject).

Every bad input (malformed date or number, date outside 1990-2100) is one line and exit 2, so a
manager checking a deadline by hand never sees a traceback or a page of usage text.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, NoReturn, TypeVar

import click

from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.cli.common import DATE, DATETIME, CliSettings

_F = TypeVar("_F", bound=Callable[..., Any])
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class InputError(click.ClickException):
    """A usage error shown as a single line (no usage text), exit status 2."""

    exit_code = 2


class _OneLineCommand(click.Command):
    """A command whose argument errors are one line, and where "-5" is a number, not an option."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # "--" ends option parsing, so a negative number reaches its argument; options that
        # come before it (--help) still work.
        options = [a for a in args if a in ("-h", "--help")]
        rest = [a for a in args if a not in ("-h", "--help")]
        try:
            return super().parse_args(ctx, [*options, "--", *rest])
        except click.UsageError as error:
            raise InputError(error.format_message()) from None


def _command(name: str) -> Callable[[_F], _F]:
    return calendar.command(name, cls=_OneLineCommand)  # type: ignore[return-value]


@click.group("calendar")
def calendar() -> None:
    """Working days in England and Wales: count, explain and list bank holidays."""


def _refuse(error: ValueError) -> NoReturn:
    raise InputError(str(error)) from None


@_command("add")
@click.argument("start", metavar="DATE", type=DATE)
@click.argument("n", type=int)
@click.pass_obj
def add(obj: CliSettings, start: date, n: int) -> None:
    """Print the N-th working day after DATE (DATE not counted; N < 0 counts back)."""
    try:
        click.echo(_calendar(obj).add_working_days(start, n).isoformat())
    except ValueError as error:
        _refuse(error)


@_command("between")
@click.argument("first", metavar="DATE1", type=DATE)
@click.argument("second", metavar="DATE2", type=DATE)
@click.pass_obj
def between(obj: CliSettings, first: date, second: date) -> None:
    """Print the working days from DATE1 to DATE2 (DATE1 excluded, DATE2 included)."""
    try:
        click.echo(str(_calendar(obj).working_days_between(first, second)))
    except ValueError as error:
        _refuse(error)


@_command("holidays")
@click.argument("year", type=int)
@click.pass_obj
def holidays(obj: CliSettings, year: int) -> None:
    """List the non-working weekdays of YEAR: bank holidays and local closures."""
    try:
        days = _calendar(obj).holidays_in(year)
    except ValueError as error:
        _refuse(error)
    for day, name in days:
        click.echo(f"{day.isoformat()}  {_WEEKDAYS[day.weekday()]:<9}  {name}")


@_command("explain")
@click.argument("start", metavar="DATE", type=DATE)
@click.argument("n", type=int)
@click.pass_obj
def explain(obj: CliSettings, start: date, n: int) -> None:
    """Show how the N-th working day after DATE is reached, naming every day skipped."""
    try:
        click.echo(str(_calendar(obj).explain(start, n)))
    except ValueError as error:
        _refuse(error)


@calendar.command("reproject")
@click.option("--dry-run", is_flag=True, help="List the deadlines that would move; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the moves as JSON.")
@click.option("--now", type=DATETIME, default=None,
              help="When the move happens (a replayed year's moment) [default: now]; a "
              "deadline already past due then is breached and does not move.")
@click.pass_obj
def reproject(obj: CliSettings | None, dry_run: bool, as_json: bool,
              now: datetime | None) -> None:
    """Move open working-day deadlines whose window a calendar change touches (closure days,
    extra working days, new bank holidays); met and breached deadlines never move."""
    import json

    from icsflow.workflow import commands

    settings = obj if obj is not None else CliSettings()
    plan = commands.reproject(settings.resolved(), dry_run=dry_run, now=now,
                              calendar=settings.calendar())
    if as_json:
        click.echo(json.dumps(plan.to_json(), indent=2))
        return
    n = len(plan.shifts)
    noun = "deadline" if n == 1 else "deadlines"
    if plan.dry_run:
        click.echo(f"Dry run: {n} open {noun} would move (nothing written)")
    else:
        click.echo(f"Moved {n} open {noun}")
    if not plan.baseline_recorded:
        click.echo("(no calendar was recorded before: compared with the bank holidays alone)")
    if n:
        click.echo(f"{'ref':<14} {'definition':<16} {'deadline':<18} old -> new  reason")
    for shift in plan.shifts:
        click.echo(str(shift))
    if any(c.outcome == "conflict" for c in plan.cases):
        click.echo("some cases changed meanwhile and were not moved: run it again", err=True)
        raise SystemExit(1)


def _calendar(obj: CliSettings | None) -> WorkingCalendar:
    """The configured calendar; the default one when the group is used without the root."""
    return obj.calendar() if obj is not None else WorkingCalendar()


commands = [calendar]

__all__ = ["commands", "calendar"]
