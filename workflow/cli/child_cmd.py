"""``icsflow child ID``: one child's timeline across every process icsflow holds for them."""

from __future__ import annotations

import json
from datetime import datetime

import click

from icsflow.workflow.cli.audit_cmd import audit_cli_read
from icsflow.workflow.cli.common import DATETIME, CliSettings, fail


def _local(moment: datetime) -> str:
    from icsflow.workflow.clock import LONDON

    return moment.astimezone(LONDON).strftime("%Y-%m-%d %H:%M")


@click.command()
@click.argument("child_id", metavar="CHILD_ID")
@click.option("--last", type=click.IntRange(min=1), default=15, show_default=True,
              help="How many of the latest events to show.")
@click.option("--now", type=DATETIME, default=None,
              help="Count working days left as of this moment (ISO; default now).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (every event).")
@click.pass_context
def child(ctx: click.Context, child_id: str, last: int, now: datetime | None,
          as_json: bool) -> None:
    """A child's timeline: every process, its state, live deadlines and the last events,
    newest first."""
    from icsflow.workflow.errors import WorkflowError
    from icsflow.workflow.timeline import child_timeline

    settings = ctx.obj if isinstance(ctx.obj, CliSettings) else CliSettings()
    engine = None
    try:
        engine = settings.open_engine()
        cases = engine.child_cases(child_id)
        timeline = child_timeline(child_id, cases, now or engine.clock.now(), engine.calendar)
    except WorkflowError as error:
        fail(str(error).splitlines()[0])
    finally:
        if engine is not None:
            engine.close()
    if not timeline.cases:
        fail(f"no cases for child {child_id!r} (start one with --child {child_id})")
    audit_cli_read(ctx, "child", [], children=[child_id])
    if as_json:
        click.echo(json.dumps(timeline.to_json(), indent=2, default=str))
        return
    families = ", ".join(timeline.families) or "-"
    click.echo(f"child {timeline.child}  family {families}  ({len(timeline.cases)} cases, "
               f"as of {timeline.today.isoformat()})")
    for c in timeline.cases:
        status = "closed" if c.closed else "open"
        click.echo(f"\n{c.definition:<16} {c.ref:<14} {c.state:<22} {status}  {c.id}")
        for d in timeline.live_deadlines(c):
            left = timeline.days_left(d)
            word = f"{left} working days left" if left >= 0 else f"{-left} working days over"
            click.echo(f"    {d.name:<24} {d.due.isoformat()}  {d.status.value:<9} {word}")
    click.echo("\nlast events (newest first):")
    for e in timeline.events[:last]:
        h = e.entry
        click.echo(f"  {_local(h.at):<17} {e.definition:<16} {h.event:<20} "
                   f"{h.from_state or '-'} -> {h.to_state}  {h.actor} ({h.role})")


commands = [child]

__all__ = ["commands", "child"]
