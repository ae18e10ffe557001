"""``icsflow simulate``: the what-if preview of a definition, for managers before publishing."""

from __future__ import annotations

import json

import click

from icsflow.workflow.cli.common import DATE, CliSettings, fail


@click.command()
@click.argument("name")
@click.option("--start", "start", type=DATE, required=True, help="The day the case starts.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Start data (required fields left out get placeholder values).")
@click.option("--events", default=None, metavar="EVENT@DATE,...",
              help="Scripted events, e.g. respond@2012-01-04 or "
              "schedule@2012-06-20+review_date=2012-06-25; EVENT:ROLE@DATE picks the role.")
@click.option("--until", type=DATE, default=None,
              help="Preview up to this day (default: until nothing is left, at most 2 years).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def simulate(settings: CliSettings, name: str, start: object, sets: tuple[str, ...],
             events: str | None, until: object, as_json: bool) -> None:
    """Preview every deadline, reminder, notification and automatic escalation of NAME
    started on --start, if nobody acts (or along --events). Nothing is written anywhere."""
    from icsflow.workflow.data import split_assignments
    from icsflow.workflow.errors import WorkflowError
    from icsflow.workflow.simulate import parse_events
    from icsflow.workflow.simulate import simulate as run

    try:
        data = split_assignments(sets)
        scripted = parse_events(events)
        definitions = settings.definitions_dir
        preview = run(definitions, name, start, data, scripted, until,  # type: ignore[arg-type]
                      calendar=settings.calendar())
    except WorkflowError as exc:
        fail(str(exc))
        return
    if as_json:
        click.echo(json.dumps(preview.to_json(), indent=2))
    else:
        click.echo(preview.text())


commands = [simulate]
