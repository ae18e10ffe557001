"""``icsflow diff`` and ``icsflow migrate``: see what a new version changes, then move cases.

``diff`` reads versions from the definition files, and from the database's stored texts for
versions whose files are gone. ``migrate`` plans every case first: a refusal (a state the new
version lacks, with no ``--map``) is one line and exit 1 with nothing written; ``--dry-run``
prints the plan and writes nothing.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

import click

from icsflow.definitions.diff import diff_definitions
from icsflow.definitions.model import Definition
from icsflow.workflow.cli.common import DATETIME, CliSettings, Mode, fail, settings_of

if TYPE_CHECKING:
    from icsflow.workflow.changes.migration import MigrationPlan


def _settings(ctx: click.Context) -> CliSettings:
    return settings_of(ctx)


def _from_files(settings: CliSettings, name: str) -> dict[int, Definition]:
    from icsflow.definitions.errors import DefinitionLoadError
    from icsflow.definitions.registry import load_default

    try:
        defs = load_default(settings.resolved().definitions_dir)
    except DefinitionLoadError as exc:
        fail("; ".join(str(p) for p in exc.problems))
    return {v: defs.get(name, v) for v in defs.versions(name)}


def _from_database(settings: CliSettings, name: str) -> dict[int, Definition]:
    """Versions kept in the database (their texts were stored when first used)."""
    from icsflow.workflow.errors import WorkflowError

    engine = settings.open_engine(Mode.READ)
    try:
        found: dict[int, Definition] = {}
        for kept_name, version, _text in engine.store.kept_definitions():
            if kept_name == name:
                try:
                    found[version] = engine.definition(name, version)
                except WorkflowError:
                    continue  # a stored text that no longer loads: not comparable
        return found
    finally:
        engine.close()


@click.command("diff")
@click.argument("name")
@click.option("--from-version", "from_version", type=int, default=None,
              help="The version compared from (default the one before --to-version).")
@click.option("--to-version", "to_version", type=int, default=None,
              help="The version compared to (default the latest).")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
@click.pass_context
def diff(ctx: click.Context, name: str, from_version: int | None, to_version: int | None,
         as_json: bool) -> None:
    """Show what changed between two versions of process NAME, in words."""
    settings = _settings(ctx)
    versions = _from_files(settings, name)
    wanted = [v for v in (from_version, to_version) if v is not None]
    if any(v not in versions for v in wanted) or len(versions) < 2:
        for version, defn in _from_database(settings, name).items():
            versions.setdefault(version, defn)
    if not versions:
        fail(f"no definition named {name!r} in the definition files or the database")
    to_v = to_version if to_version is not None else max(versions)
    older = [v for v in versions if v < to_v]
    from_v = from_version if from_version is not None else (max(older) if older else None)
    missing = [v for v in (from_v, to_v) if v is not None and v not in versions]
    if from_v is None or missing:
        known = ", ".join(map(str, sorted(versions)))
        what = (f"version {missing[0]}" if missing else f"a version before {to_v}")
        fail(f"{name} has no {what} to compare (known versions: {known})")
    old, new = versions[from_v], versions[to_v]
    changes = diff_definitions(old, new)
    if as_json:
        click.echo(json.dumps({"definition": name, "from_version": from_v,
                               "to_version": to_v,
                               "changes": [c.to_json() for c in changes]}, indent=2))
        return
    click.echo(f"{name}: version {from_v} -> version {to_v}")
    if not changes:
        click.echo("  no differences")
    for change in changes:
        click.echo(f"  {change}")


@click.command("migrate")
@click.argument("name")
@click.option("--to-version", "to_version", type=int, required=True,
              help="The version to move the open cases to.")
@click.option("--where", "where", multiple=True, metavar="STATE",
              help="Only cases in this state (repeat for several).")
@click.option("--map", "mappings", multiple=True, metavar="OLD=NEW",
              help="Move cases in state OLD to state NEW of the new version (repeat).")
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@click.option("--actor", "actor_id", default="system", show_default=True, metavar="ID",
              help="Who is recorded in the history as moving the cases.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan (or result) as JSON.")
@click.option("--now", type=DATETIME, default=None,
              help="When the move happens (a replayed year's moment) [default: now]; a "
              "deadline already past due then is breached and does not move.")
@click.pass_context
def migrate(ctx: click.Context, name: str, to_version: int, where: tuple[str, ...],
            mappings: tuple[str, ...], dry_run: bool, actor_id: str, as_json: bool,
            now: datetime | None) -> None:
    """Move the open cases of process NAME to another version of its definition."""
    from icsflow.workflow import commands
    from icsflow.workflow.changes.migration import parse_mapping
    from icsflow.workflow.instance import Actor

    mapping = parse_mapping(mappings)
    settings = settings_of(ctx)
    plan = commands.migrate(settings.resolved(), name, to_version, where=where, mapping=mapping,
                            dry_run=dry_run, actor=Actor(actor_id, "system"), now=now,
                            calendar=settings.calendar())
    if as_json:
        click.echo(json.dumps(plan.to_json(), indent=2))
    else:
        _print_plan(plan)
    if any(c.outcome == "conflict" for c in plan.cases):
        raise SystemExit(1)


def _print_plan(plan: MigrationPlan) -> None:
    n = len(plan.cases)
    noun = "case" if n == 1 else "cases"
    if plan.dry_run:
        click.echo(f"Dry run: {n} open {plan.definition} {noun} would move to version "
                   f"{plan.to_version} (nothing written)")
    else:
        done = sum(c.outcome == "migrated" for c in plan.cases)
        click.echo(f"Migrated {done} of {n} open {plan.definition} {noun} to version "
                   f"{plan.to_version}")
    for case in plan.cases:
        state = case.from_state if case.from_state == case.to_state \
            else f"{case.from_state} -> {case.to_state}"
        flag = "  CONFLICT: changed meanwhile, run again" if case.outcome == "conflict" else ""
        click.echo(f"{case.ref}  ({case.instance_id})  v{case.from_version} -> "
                   f"v{case.to_version}  state {state}{flag}")
        if not case.deadlines:
            click.echo("    deadlines: no change")
        for move in case.deadlines:
            click.echo(f"    {move}")
        if case.timers_added:
            click.echo(f"    timers added: {', '.join(case.timers_added)}")
        if case.timers_cancelled:
            click.echo(f"    timers cancelled: {', '.join(case.timers_cancelled)}")


commands = [diff, migrate]

__all__ = ["commands", "diff", "migrate"]
