"""``icsflow validate`` and ``icsflow graph``: what a service manager runs after editing YAML."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from icsflow.definitions.errors import DefinitionLoadError, Problem
from icsflow.definitions.graph import FORMATS, graph_text
from icsflow.definitions.loader import (
    definition_files,
    duplicate_versions,
    load_file,
    set_problems,
)
from icsflow.definitions.model import Definition
from icsflow.definitions.registry import DefinitionSet, builtin_dir
from icsflow.workflow.cli.common import CliSettings

if TYPE_CHECKING:
    from icsflow.storage.reads import UsedVersion


def _definitions_dir(ctx: click.Context) -> Path:
    settings = ctx.obj if isinstance(ctx.obj, CliSettings) else None
    if settings is not None and settings.definitions_dir:
        return Path(settings.definitions_dir)
    return builtin_dir()


def _print_problems(exc: DefinitionLoadError) -> None:
    for problem in exc.problems:
        click.echo(str(problem), err=True)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.pass_context
def validate(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Check definition files or folders (default: the configured definitions).

    Prints "N definitions OK", or every problem as FILE:LINE: message and exits 1. With a
    database (global --db or ICSFLOW_DB) it also compares the files with the versions cases
    already use there, and names a version changed since first used before anything else.
    """
    targets = [Path(p) for p in paths] or [_definitions_dir(ctx)]
    files = definition_files(targets)
    if not files:  # a wrong folder must not pass as "0 definitions OK"
        click.echo("error: no definitions (*.yaml, *.yml) found in "
                   + ", ".join(str(t) for t in targets), err=True)
        raise SystemExit(1)
    loaded: list[Definition] = []
    problems: list[Problem] = []
    for f in files:
        try:
            loaded.append(load_file(f))
        except DefinitionLoadError as exc:
            problems.extend(exc.problems)
    problems.extend(duplicate_versions(loaded))
    problems.extend(set_problems(loaded))  # signal loops across files
    settings = ctx.obj if isinstance(ctx.obj, CliSettings) else None
    changed: list[str] = []
    used_count = None
    if settings is not None and settings.db:
        used = _used_versions(settings.db)
        used_count = len(used)
        changed = changed_since_used(loaded, used)
    for line in changed:
        click.echo(line, err=True)
    for problem in problems:
        click.echo(str(problem), err=True)
    if changed or problems:
        raise SystemExit(1)
    from icsflow.definitions.validate import duration_warnings

    for defn in loaded:  # text that would go on stating an old duration: warn, still OK
        for warning in duration_warnings(defn):
            click.echo(str(warning), err=True)
    noun = "definition" if len(loaded) == 1 else "definitions"
    suffix = ""
    if used_count is not None:
        suffix = (f"; none changed since first used ({used_count} version"
                  f"{'' if used_count == 1 else 's'} used in the database)")
    click.echo(f"{len(loaded)} {noun} OK{suffix}")


def _used_versions(url: str) -> list[UsedVersion]:
    from sqlalchemy.engine import make_url

    from icsflow.storage.db import create_db_engine, normalise_url
    from icsflow.storage.reads import used_definitions
    from icsflow.workflow.cli.common import fail

    try:
        parsed = make_url(normalise_url(url))
    except Exception:  # noqa: BLE001 - sqlalchemy raises ArgumentError
        fail("--db is not a database URL (e.g. sqlite:///icsflow.db)")
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:") \
            and not Path(database).exists():
        return []  # checking must not leave an empty database file behind
    sql = create_db_engine(url)
    try:
        return used_definitions(sql)
    finally:
        sql.dispose()


def changed_since_used(loaded: Sequence[Definition], used: Sequence[UsedVersion]) -> list[str]:
    """One line per file whose name and version the database knows with other content.

    Cases keep the version they started on, so a change must come as a new version: the
    line says which number to give it and how many open cases stay on the old one.
    """
    known = {(u.name, u.version): u for u in used}
    highest: dict[str, int] = {}
    for name, version in [(u.name, u.version) for u in used] + [d.key for d in loaded]:
        highest[name] = max(highest.get(name, 0), version)
    lines = []
    for d in sorted(loaded, key=lambda d: d.key):
        u = known.get(d.key)
        if u is None or not u.content_hash or u.content_hash == d.content_hash:
            continue
        cases = "1 open case stays" if u.open_cases == 1 else f"{u.open_cases} open cases stay"
        lines.append(f"{d.source.file}:{d.source.line}: {d.name} v{d.version} changed since "
                     f"first used: bump version to {highest[d.name] + 1} ({cases} on "
                     f"v{d.version})")
    return lines


def _find(ctx: click.Context, name: str) -> Definition:
    path = Path(name)
    try:
        is_file = path.is_file()
    except (OSError, ValueError):  # a name too long for a path, or with NUL: not a file
        is_file = False
    if path.suffix in (".yaml", ".yml") or is_file:
        return load_file(path)
    folder = _definitions_dir(ctx)
    defs = DefinitionSet.load([folder]) if folder.exists() else DefinitionSet()
    if name not in defs:
        known = ", ".join(defs.names()) or "none"
        click.echo(f"error: no definition named {name[:100]!r} in {folder} (known: {known})",
                   err=True)
        raise SystemExit(1)
    return defs.latest(name)


@click.command()
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="mermaid",
              show_default=True, help="Mermaid stateDiagram-v2 or Graphviz dot.")
@click.pass_context
def graph(ctx: click.Context, name: str, fmt: str) -> None:
    """Print the diagram of definition NAME (its latest version) or of a YAML file."""
    try:
        defn = _find(ctx, name)
    except DefinitionLoadError as exc:
        _print_problems(exc)
        raise SystemExit(1) from None
    click.echo(graph_text(defn, fmt), nl=False)


@click.command()
@click.option("--path", "show_path", is_flag=True,
              help="Print where the installed schema file is instead of the schema.")
def schema(show_path: bool) -> None:
    """Print the JSON Schema of definition files (for editors: completion and hover help).

    Save it beside your definitions (icsflow schema > definition.schema.json) and start each
    file with: # yaml-language-server: $schema=./definition.schema.json
    """
    from icsflow.definitions.schema import schema_text, shipped_schema_path

    if show_path:
        click.echo(str(shipped_schema_path()))
        return
    click.echo(schema_text(), nl=False)


commands = [validate, graph, schema]

__all__ = ["commands", "validate", "graph", "schema"]
