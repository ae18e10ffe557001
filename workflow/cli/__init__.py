"""The ``icsflow`` command line: the root group and its global options.

Each room's commands live in their own module (``calendar_cmd``, ``definitions_cmd``,
``case_cmd``, ``daemon_cmd``, ``demo_cmd``) and export ``commands``; this module only wires them.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys
from importlib.metadata import PackageNotFoundError, version

import click

from icsflow.workflow.cli.common import CliSettings

_COMMAND_MODULES = ("calendar_cmd", "definitions_cmd", "simulate_cmd", "case_cmd", "daemon_cmd",
                    "demo_cmd", "change_cmd", "child_cmd", "report_cmd", "transfer_cmd",
                    "web_cmd", "audit_cmd")


def _version() -> str:
    try:
        return version("icsflow")
    except PackageNotFoundError:  # running from a source tree without installing
        return "0+unknown"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(_version(), prog_name="icsflow")
@click.option("--db", envvar="ICSFLOW_DB", default=None, metavar="URL",
              help="SQLAlchemy database URL [env ICSFLOW_DB; default sqlite:///icsflow.db].")
@click.option("--definitions", "definitions_dir", envvar="ICSFLOW_DEFINITIONS", default=None,
              metavar="DIR", help="Folder of YAML definitions [env ICSFLOW_DEFINITIONS; "
              "default the shipped ones].")
@click.option("--config", "config_file", envvar="ICSFLOW_CONFIG", default=None, metavar="FILE",
              help="Configuration file, YAML or TOML [env ICSFLOW_CONFIG].")
@click.option("--smtp", "smtp_url", envvar="ICSFLOW_SMTP_URL", default=None, metavar="URL",
              help="smtp://host:port, smtp+starttls://user@host:587 or smtps://user@host:465 "
              "[env ICSFLOW_SMTP_URL; password from ICSFLOW_SMTP_PASSWORD].")
@click.option("--mail-from", envvar="ICSFLOW_MAIL_FROM", default=None, metavar="ADDRESS",
              help="Sender address [env ICSFLOW_MAIL_FROM].")
@click.option("--log-level", envvar="ICSFLOW_LOG_LEVEL", default="warning", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
              help="Log lines on stderr from this level up (`run` logs info by default).")
@click.pass_context
def cli(ctx: click.Context, db: str | None, definitions_dir: str | None,
        config_file: str | None, smtp_url: str | None, mail_from: str | None,
        log_level: str) -> None:
    """icsflow: working-day deadlines, reminders and escalations for the Independent Chair
    Service, as YAML state machines on durable timers."""
    from icsflow.workflow.logging import configure_logging

    # Results go to stdout, logs to stderr: `--json` output stays parseable.
    configure_logging(level=log_level)
    ctx.obj = CliSettings(db=db, definitions_dir=definitions_dir, config_file=config_file,
                          smtp_url=smtp_url, mail_from=mail_from)


def _definitions_here(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """``icsflow validate --definitions DIR``: the global option, written after the command."""
    if value is None:
        return
    settings = ctx.obj if isinstance(ctx.obj, CliSettings) else CliSettings()
    ctx.obj = dataclasses.replace(settings, definitions_dir=value)


def _accept_definitions_after(command: click.Command) -> None:
    """Give every command (each leaf of a group) ``--definitions``, unless it has its own."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _accept_definitions_after(sub)
        return
    if any("--definitions" in getattr(p, "opts", ()) for p in command.params):
        return
    command.params.append(click.Option(
        ["--definitions", "_definitions_here"], metavar="DIR", expose_value=False,
        callback=_definitions_here,
        help="Folder of YAML definitions (the global option, accepted here too)."))


def _register() -> None:
    for name in _COMMAND_MODULES:
        qualified = f"icsflow.workflow.cli.{name}"
        if importlib.util.find_spec(qualified) is None:
            continue
        module = importlib.import_module(qualified)
        for command in module.commands:
            _accept_definitions_after(command)
            cli.add_command(command)


_register()


# Every character str.splitlines() breaks a line at (NEL and the Unicode separators too).
_LINE_BREAKS: dict[str, str | int | None] = {
    "\r": "\\r", "\n": "\\n", "\x0b": "\\x0b", "\x0c": "\\x0c",
                "\x1c": "\\x1c", "\x1d": "\\x1d", "\x1e": "\\x1e", "\x85": "\\x85",
                "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _on_one_line(message: str) -> str:
    """A message quoting what was typed keeps a typed line break visible, on one line."""
    return message.translate(str.maketrans(_LINE_BREAKS))


def main() -> None:
    """Console-script entry point: every bad input ends in one line, never a traceback.

    Usage errors (a malformed date, an unknown option) exit 2; an unreachable or broken
    database exits 1 naming the cause; results of commands keep their own exit codes.
    """
    from sqlalchemy.exc import DBAPIError, OperationalError

    try:
        code = cli.main(prog_name="icsflow", standalone_mode=False)
    except click.UsageError as error:
        no_args = getattr(click.exceptions, "NoArgsIsHelpError", ())
        if no_args and isinstance(error, no_args):  # a bare group: its help is the answer
            error.show()
            sys.exit(error.exit_code)
        click.echo(f"Error: {_on_one_line(error.format_message())}", err=True)
        sys.exit(2)
    except click.ClickException as error:
        click.echo(f"Error: {_on_one_line(error.format_message())}", err=True)
        sys.exit(error.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except (OperationalError, DBAPIError) as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        click.echo(f"error: the database could not be used: {reason}", err=True)
        sys.exit(1)
    except OSError as error:  # a path no file system takes (too long, ...): one line
        where = f" {str(error.filename)[:80]!r}" if error.filename else ""
        click.echo(f"error: cannot use path{where}: {error.strerror or error}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["cli", "main"]
