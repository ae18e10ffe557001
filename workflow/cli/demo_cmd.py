"""``icsflow demo``: the embedded end-to-end run (SQLite + Maildir), no configuration needed."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
              default=Path("icsflow-demo"), show_default=True,
              help="Where the demo database and Maildir go (made anew each run).")
def demo(folder: Path) -> None:
    """Replay the service's 2011-12 year: about 20 cases across the four shipped processes,
    every deadline, reminder and escalation, emails delivered into a Maildir."""
    from icsflow.workflow.cli.demo import run_demo

    result = run_demo(folder, echo=click.echo)
    click.echo(result.summary())


commands = [demo]
