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
    from icsflow.workflow.cli.demo import (
        LAST_WORKING_MOMENT,
        WEB_ADDRESS,
        command_name,
        run_demo,
    )
    from icsflow.workflow.web.demo_user import add_demo_user

    result = run_demo(folder, echo=click.echo)
    click.echo(result.summary())
    name, password = add_demo_user(result.db_url)
    click.echo("\nThe web page (as the demo year stood on its last working day):\n"
               f"  {command_name()} --db {result.db_url} serve --now {LAST_WORKING_MOMENT}\n"
               f"  then open {WEB_ADDRESS}/ and sign in as {name} with password "
               f"{password}")


commands = [demo]
