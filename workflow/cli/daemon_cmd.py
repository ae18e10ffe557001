"""``icsflow run`` (the daemon) and ``icsflow outbox`` (see, and retry, queued messages)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from icsflow.workflow.cli.common import DATETIME, CliSettings, Mode, fail
from icsflow.workflow.errors import WorkflowError

if TYPE_CHECKING:
    from icsflow.storage.outbox import SqlOutbox
    from icsflow.workflow.ports import OutboxMessage

_COLUMNS = ("id", "status", "attempts", "ref", "template", "next_attempt_at", "last_error")


@click.command("run")
@click.option("--now", "now", type=DATETIME, default=None,
              help="Act as if the daemon started at this moment (a clock offset for every "
              "decision, office hours included).")
@click.option("--log-level", default=None,
              type=click.Choice(["debug", "info", "warning", "error"]),
              help="Log lines from this level up [default: the global --log-level if given, "
              "else info].")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None, metavar="PORT",
              help="Serve /healthz, /readyz and /metrics (Prometheus) on this port "
              "[default: off].")
@click.option("--metrics-host", default="127.0.0.1", show_default=True, metavar="HOST",
              help="Address the health and metrics server binds.")
@click.pass_obj
def run(settings: CliSettings, now: datetime | None, log_level: str | None,
        metrics_port: int | None, metrics_host: str) -> None:
    """Run the daemon: fire timers, send the outbox, queue digests, until SIGTERM.

    Refuses to start (exit 1, one line per problem) when a definition does not load or a
    file changed under a version already used in the database."""
    from click.core import ParameterSource

    from icsflow.workflow.daemon import Daemon, OffsetClock, system_clock
    from icsflow.workflow.logging import configure_logging

    root = click.get_current_context().find_root()
    if log_level is None:
        explicit = root.get_parameter_source("log_level") is not ParameterSource.DEFAULT
        log_level = root.params["log_level"] if explicit else "info"
    configure_logging(level=log_level)
    address = (metrics_host, metrics_port) if metrics_port is not None else None
    try:
        config = settings.resolved()
        base = system_clock(config)
        clock = OffsetClock(now, base=base) if now is not None else base
        status = Daemon(config, clock=clock, metrics_address=address).run()
    except WorkflowError as error:
        problems = getattr(error, "problems", None) or [str(error)]
        for problem in problems[:-1]:
            click.echo(f"error: {problem}", err=True)
        fail(problems[-1])
    sys.exit(status)


@click.group("outbox", invoke_without_command=True)
@click.option("--status", type=click.Choice(["pending", "sent", "failed", "replayed"]),
              default=None, help="Only rows with this status.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def outbox(ctx: click.Context, status: str | None, as_json: bool) -> None:
    """List queued, sent and failed messages (``outbox retry ID`` re-queues a failed one)."""
    if ctx.invoked_subcommand is not None:
        return
    settings: CliSettings = ctx.obj
    rows = [_json_row(m) for m in _outbox(settings).list(status)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no messages" + (f" with status {status}" if status else ""))
        return
    for row in rows:
        # The subject a person reads (the template's name stays in --json).
        error = f"\n          why: {row['last_error']}" if row["last_error"] else ""
        nxt = f" next {row['next_attempt_at']}" if row["status"] == "pending" else ""
        channel = f" ({row['channel']} copy)" if row["channel"] != "email" else ""
        what = row["subject"] or f"{row['ref'] or '-'} {row['template'] or '-'}"
        click.echo(f"{row['id']:>6}  {row['status']:<7} attempts={row['attempts']} "
                   f"{what}{channel}{nxt}{error}")


@outbox.command("retry")
@click.argument("message_id", metavar="[ID]", type=click.IntRange(1, 2**63 - 1), required=False)
@click.option("--case", "case_key", metavar="CASE",
              help="Every failed message of this case (its reference or id) instead of one ID.")
@click.pass_obj
def retry(settings: CliSettings, message_id: int | None, case_key: str | None) -> None:
    """Put a failed message back in the queue with its attempts reset, addressed again from
    today's directory and case data (fix the address first, then retry); ``--case REF`` does
    it for every failed message of one case, as the administrator's notice says."""
    if (message_id is None) == (case_key is None):
        fail("give a message ID or --case REF (icsflow outbox --status failed lists them)")
    outbox = _outbox(settings)
    if message_id is not None:
        _retry_one(settings, outbox, message_id)
        return
    failed = [m for m in outbox.list("failed")
              if case_key in (m.ref, m.instance_id) and m.channel == "email"]
    if not failed:
        fail(f"no failed message for case {case_key} (icsflow outbox --status failed lists "
             "them)")
    for m in failed:
        _retry_one(settings, outbox, m.id)


def _retry_one(settings: CliSettings, outbox: SqlOutbox, message_id: int) -> None:
    from icsflow.workflow.daemon.readdress import Unresolvable, current_recipients
    from icsflow.workflow.instance import OutboxStatus

    message = outbox.get(message_id)
    if message is None or message.status is not OutboxStatus.FAILED:
        fail(f"no failed message with id {message_id} (icsflow outbox --status failed lists them)")
    engine = settings.open_engine(Mode.READ) if message.instance_id else None
    try:
        siblings = outbox.list(instance_id=message.instance_id) if engine else []
        recipients = current_recipients(message, settings.resolved(), engine, siblings)
    except Unresolvable as error:
        fail(f"message {message_id} still has nobody to go to: {error}; fix the address "
             "(configuration directory or case data) and retry")
    finally:
        if engine is not None:
            engine.close()
    if not outbox.retry(message_id, datetime.now(UTC), recipients=recipients):
        fail(f"no failed message with id {message_id} (icsflow outbox --status failed lists them)")
    count = len(recipients)
    click.echo(f"message {message_id} queued again for {count} "
               f"recipient{'' if count == 1 else 's'}")


def _json_row(m: OutboxMessage) -> dict[str, Any]:
    """One row of ``icsflow outbox --json`` (times in UTC, ISO 8601)."""

    def iso(value: datetime | None) -> str | None:
        return value.astimezone(UTC).isoformat() if value else None

    return {"id": m.id, "instance_id": m.instance_id, "ref": m.ref, "template": m.template,
            "recipients": list(m.recipients), "subject": m.subject, "status": m.status.value,
            "attempts": m.attempts, "next_attempt_at": iso(m.next_attempt_at),
            "last_error": m.last_error, "urgent": m.urgent, "created_at": iso(m.created_at),
            "sent_at": iso(m.sent_at), "channel": m.channel}


def _outbox(settings: CliSettings) -> SqlOutbox:
    from icsflow.storage.outbox import SqlOutbox
    from icsflow.workflow.daemon import db_engine, ensure_schema

    sql = db_engine(settings.resolved(), create=False)  # never creates a database
    ensure_schema(sql, create=False)
    return SqlOutbox(sql)


commands = [run, outbox]
