"""``icsflow child ID``: one child's timeline across every process icsflow holds for them."""

from __future__ import annotations

import json
from datetime import datetime

import click

from icsflow.workflow.cli.audit_cmd import audit_cli_read
from icsflow.workflow.cli.common import DATETIME, Mode, fail, opened


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
    from icsflow.workflow.labels import Labels
    from icsflow.workflow.timeline import child_timeline

    with opened(ctx, Mode.READ) as engine:
        cases = engine.child_cases(child_id)
        timeline = child_timeline(child_id, cases, now or engine.clock.now(), engine.calendar)
        lab = Labels(engine.definitions)  # the human timeline in labels; --json keeps names
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
        state = lab.of(c.definition, "state", c.state)
        click.echo(f"\n{c.ref}: {lab.title(c.definition)}, \"{state}\"  {status}  {c.id}")
        for d in timeline.live_deadlines(c):
            left = timeline.days_left(d)
            word = f"{left} working days left" if left >= 0 else f"{-left} working days over"
            click.echo(f"    {lab.of(c.definition, 'deadline', d.name):<36} {d.due.isoformat()}  "
                       f"{d.status.value:<9} {word}")
    click.echo("\nlast events (newest first):")
    for e in timeline.events[:last]:
        h = e.entry
        of = lab.of
        before = of(e.definition, "state", h.from_state) if h.from_state else "-"
        click.echo(f"  {_local(h.at):<17} {lab.title(e.definition)}: "
                   f"{of(e.definition, 'event', h.event)}, {before} -> "
                   f"{of(e.definition, 'state', h.to_state)}  {h.actor} "
                   f"({of(e.definition, 'role', h.role)})")


commands = [child]

__all__ = ["commands", "child"]
