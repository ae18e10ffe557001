"""``icsflow simulate``: the what-if preview of a definition, for managers before publishing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from icsflow.workflow.cli.common import DATE, CliSettings


@click.command()
@click.argument("name", metavar="NAME|FILE")
@click.option("--start", "start", type=DATE, required=True, help="The day the case starts.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Start data (required fields left out get placeholder values).")
@click.option("--events", default=None, metavar="EVENT@DATE,...",
              help="Scripted events, e.g. respond@2012-01-04 or "
              "schedule@2012-06-20+review_date=2012-06-25; EVENT:ROLE@DATE picks the role.")
@click.option("--until", type=DATE, default=None,
              help="Preview up to this day (default: until nothing is left, at most 2 years).")
@click.option("--emails", is_flag=True, help="Show each email's rendered body too.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def simulate(settings: CliSettings, name: str, start: object, sets: tuple[str, ...],
             events: str | None, until: object, emails: bool, as_json: bool) -> None:
    """Preview every deadline, reminder, email (its subject) and automatic escalation of NAME
    (the latest version) or of a YAML FILE, started on --start, if nobody acts (or along
    --events). Nothing is written anywhere."""
    from icsflow.definitions.errors import DefinitionLoadError
    from icsflow.definitions.loader import load_file
    from icsflow.workflow.data import split_assignments
    from icsflow.workflow.simulate import parse_events
    from icsflow.workflow.simulate import simulate as run

    settings = settings if isinstance(settings, CliSettings) else CliSettings()
    definitions: Any = settings.definitions_dir
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        try:
            definitions = load_file(path)
        except DefinitionLoadError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            raise SystemExit(1) from None
        name = definitions.name
    data = split_assignments(sets)
    scripted = parse_events(events)
    preview = run(definitions, name, start, data, scripted, until,  # type: ignore[arg-type]
                  calendar=settings.calendar())
    if as_json:
        click.echo(json.dumps(preview.to_json(), indent=2))
    else:
        click.echo(preview.text(emails=emails))


commands = [simulate]
