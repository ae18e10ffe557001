"""What every command shares: global settings and the parsing of dates and numbers into exit 2."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, NoReturn

import click

from icsflow.workflow.commands import Mode

if TYPE_CHECKING:
    from icsflow.workflow.calendar import WorkingCalendar
    from icsflow.workflow.clock import Clock
    from icsflow.workflow.config import Config
    from icsflow.workflow.engine import Engine


@dataclass(frozen=True)
class CliSettings:
    """Global options as given (None when not given); resolved with the configuration later."""

    db: str | None = None
    definitions_dir: str | None = None
    config_file: str | None = None
    smtp_url: str | None = None
    mail_from: str | None = None

    def resolved(self) -> Config:
        """The configuration: these options > environment > ``--config`` file > defaults.

        A bad value is one line on stderr and exit 1 (ConfigurationError names file and key).
        """
        from icsflow.workflow.config import load_config
        from icsflow.workflow.errors import ConfigurationError

        overrides = {
            "database_url": ("--db", self.db),
            "definitions_dir": ("--definitions", self.definitions_dir),
            "smtp.url": ("--smtp", self.smtp_url),
            "smtp.mail_from": ("--mail-from", self.mail_from),
        }
        try:
            return load_config(self.config_file, overrides=overrides)
        except ConfigurationError as error:
            fail(str(error))

    def calendar(self) -> WorkingCalendar:
        """The working-day calendar every command counts with (closures come from configuration)."""
        from icsflow.workflow.calendar import WorkingCalendar
        from icsflow.workflow.config import calendar_from

        if self.config_file is None and not os.environ.get("ICSFLOW_CONFIG"):
            return WorkingCalendar()
        return calendar_from(self.resolved())

    def open_engine(self, mode: Mode, clock: Clock | None = None) -> Engine:
        """The engine wired from configuration, opened as the command's ``mode`` allows
        (``commands.Mode``: create a missing database, write an existing one, or read)."""
        from icsflow.workflow.commands import open_engine

        return open_engine(self.resolved(), mode=mode, clock=clock, calendar=self.calendar())


def settings_of(ctx: click.Context) -> CliSettings:
    """The global options of this invocation (defaults when a command runs on its own)."""
    obj = ctx.find_root().obj if ctx.find_root().obj is not None else ctx.obj
    return obj if isinstance(obj, CliSettings) else CliSettings()


@contextmanager
def opened(ctx: click.Context, mode: Mode, clock: Clock | None = None) -> Iterator[Engine]:
    """The engine for one command, closed after it. A refusal (``WorkflowError``) goes on to
    ``main``, the one place that turns it into one line and exit 1."""
    engine = settings_of(ctx).open_engine(mode, clock)
    try:
        yield engine
    finally:
        engine.close()


class DateParam(click.ParamType):
    """A calendar date written YYYY-MM-DD; anything else is a usage error (exit 2)."""

    name = "DATE"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        try:
            parsed = date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a valid date (expected YYYY-MM-DD, e.g. 2012-05-28)",
                      param, ctx)
        _in_range(self, parsed, param, ctx)
        return parsed


class DateTimeParam(click.ParamType):
    """An ISO date-time; a bare date means its midnight, a missing offset means Europe/London."""

    name = "ISO"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> datetime:
        from icsflow.workflow.clock import LONDON

        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a valid date-time (expected ISO 8601, e.g. "
                      "2012-01-06T12:00 or 2012-01-06T12:00+00:00)", param, ctx)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=LONDON)
        _in_range(self, parsed, param, ctx)
        return parsed


def _in_range(kind: click.ParamType, value: date, param: click.Parameter | None,
              ctx: click.Context | None) -> None:
    """Dates outside the working-day calendar's range are a usage error (one line, exit 2)."""
    from icsflow.workflow.limits import RANGE, in_range

    if not in_range(value):
        kind.fail(f"{value.isoformat()} is outside the supported dates ({RANGE})", param, ctx)


DATE = DateParam()
DATETIME = DateTimeParam()


def fail(message: str) -> NoReturn:
    """Refuse an action: one line on stderr, exit 1, nothing changed (a message that carries
    line breaks, several problems or a value with CR/LF in it, is kept on one line)."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    click.echo(f"error: {'; '.join(lines) or message}", err=True)
    raise SystemExit(1)


__all__ = ["CliSettings", "DATE", "DATETIME", "Mode", "fail", "opened", "settings_of"]
