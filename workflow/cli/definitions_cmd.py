"""``icsflow validate`` and ``icsflow graph``: what a service manager runs after editing YAML."""

from __future__ import annotations

from pathlib import Path

import click

from icsflow.definitions.errors import DefinitionLoadError
from icsflow.definitions.graph import FORMATS, graph_text
from icsflow.definitions.loader import load_file, load_paths
from icsflow.definitions.model import Definition
from icsflow.definitions.registry import DefinitionSet, builtin_dir
from icsflow.workflow.cli.common import CliSettings


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

    Prints "N definitions OK", or every problem as FILE:LINE: message and exits 1.
    """
    targets = [Path(p) for p in paths] or [_definitions_dir(ctx)]
    try:
        loaded = load_paths(targets)
    except DefinitionLoadError as exc:
        _print_problems(exc)
        raise SystemExit(1) from None
    if not loaded:  # a wrong folder must not pass as "0 definitions OK"
        click.echo("error: no definitions (*.yaml, *.yml) found in "
                   + ", ".join(str(t) for t in targets), err=True)
        raise SystemExit(1)
    from icsflow.definitions.validate import duration_warnings

    for defn in loaded:  # text that would go on stating an old duration: warn, still OK
        for warning in duration_warnings(defn):
            click.echo(str(warning), err=True)
    noun = "definition" if len(loaded) == 1 else "definitions"
    click.echo(f"{len(loaded)} {noun} OK")


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


commands = [validate, graph]

__all__ = ["commands", "validate", "graph"]
