"""``icsflow import | reconcile | export``: extracts in and out (workflow/transfer/).

A refused import prints every bad row as ``FILE:LINE: message`` on stderr and exits 1 with
nothing written; ``--json`` prints the same report as JSON on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import click

from icsflow.workflow.cli.common import DATE, CliSettings, fail


@contextmanager
def _engine(ctx: click.Context) -> Iterator[Any]:
    from icsflow.workflow.errors import WorkflowError

    settings = ctx.obj if isinstance(ctx.obj, CliSettings) else CliSettings()
    engine: Any = None
    try:
        engine = settings.open_engine()
        yield engine
    except WorkflowError as error:
        fail("; ".join(ln for ln in str(error).splitlines() if ln.strip()))
    finally:
        if engine is not None:
            engine.close()


def _profile(path: str | None) -> Any:
    from icsflow.workflow.transfer.mapping import load_profile

    return load_profile(path) if path else None


@click.command("import")
@click.argument("file", metavar="FILE.csv|FILE.xlsx")
@click.option("--dry-run", is_flag=True, help="Check and replay in a scratch database only.")
@click.option("--until", type=DATE, default=None,
              help="Run timers (and take rows) up to the end of this day [default: now].")
@click.option("--map", "map_file", default=None, metavar="MAP.yaml",
              help="A mapping profile from the source system's columns and values.")
@click.option("--send", is_flag=True,
              help="Queue the replay's emails for sending (default: record them as "
              "'replayed', never sent).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def import_(ctx: click.Context, file: str, dry_run: bool, until: date | None,
            map_file: str | None, send: bool, as_json: bool) -> None:
    """Import an extract (one row per event), replaying it in logical time: timers,
    escalations and emails on their own dates. All or nothing; importing again changes
    nothing."""
    from icsflow.workflow.transfer.importer import import_rows, load_rows

    with _engine(ctx) as engine:
        table, rows, problems = load_rows(file, engine, _profile(map_file))
        show_bar = not as_json and sys.stderr.isatty()
        bar: Any = None

        def on_total(total: int) -> None:
            nonlocal bar
            if show_bar and total:
                bar = click.progressbar(length=total, label="importing", file=sys.stderr)
                bar.__enter__()

        def progress(n: int) -> None:
            if bar is not None:
                bar.update(n)

        try:
            report = import_rows(engine, table, rows, problems, until=until,
                                 dry_run=dry_run, send=send, progress=progress,
                                 on_total=on_total)
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
        if not report.ok:
            raise SystemExit(1)
        return
    if not report.ok:
        for problem in report.problems:
            click.echo(str(problem), err=True)
        fail(f"{file}: {len(report.problems)} bad row(s); nothing was imported")
    t = report.timers
    verb = "would import" if report.dry_run else "imported"
    click.echo(f"{verb} {report.applied} row(s) ({report.started} case(s) started); "
               f"{report.already_imported} already imported"
               + (f"; {report.held_back} after --until left for later" if report.held_back
                  else ""))
    click.echo(f"timers: {t.fired} fired, {t.breached} deadline(s) breached, {t.skipped} "
               f"skipped; {t.queued} email(s) "
               + ("queued to send" if report.emails == "pending" else
                  "recorded as replayed (not sent)"))


@click.command("reconcile")
@click.argument("file", metavar="FILE.csv|FILE.xlsx")
@click.option("--map", "map_file", default=None, metavar="MAP.yaml",
              help="A mapping profile from the source system's columns and values.")
@click.option("--until", type=DATE, default=None,
              help="Judge deadlines as at the end of this day [default: now].")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
@click.option("--csv", "csv_path", default=None, metavar="PATH",
              help="Also write the differences as CSV ('-' for stdout).")
@click.pass_context
def reconcile(ctx: click.Context, file: str, map_file: str | None, until: date | None,
              as_json: bool, csv_path: str | None) -> None:
    """List where an extract and icsflow disagree (dates, missing events, deadline
    verdicts), changing nothing."""
    from icsflow.workflow.transfer import reconcile as rec
    from icsflow.workflow.transfer.importer import load_rows

    with _engine(ctx) as engine:
        _table, rows, problems = load_rows(file, engine, _profile(map_file))
        if problems:
            for problem in problems:
                click.echo(str(problem), err=True)
            fail(f"{file}: {len(problems)} unreadable row(s); nothing compared")
        found = rec.reconcile(engine, rows, until=until)
    if csv_path == "-":
        rec.write_csv(found, sys.stdout)
    elif csv_path:
        with Path(csv_path).open("w", encoding="utf-8", newline="") as fh:
            rec.write_csv(found, fh)
    if as_json:
        click.echo(json.dumps({"file": file, "differences": [d.to_json() for d in found]},
                              indent=2))
    elif csv_path != "-":
        click.echo(rec.render_table(found, Path(file).name))


@click.command("export")
@click.option("--from", "date_from", type=DATE, default=None, help="First day (YYYY-MM-DD).")
@click.option("--to", "date_to", type=DATE, default=None, help="Last day (YYYY-MM-DD).")
@click.argument("file", metavar="FILE.csv")
@click.pass_context
def export(ctx: click.Context, date_from: date | None, date_to: date | None,
           file: str) -> None:
    """Write the history in the canonical import format ('-' for stdout)."""
    from icsflow.workflow.cli.audit_cmd import audit_cli_read
    from icsflow.workflow.transfer.export import export_rows, write_rows

    with _engine(ctx) as engine:
        rows = export_rows(engine, date_from=date_from, date_to=date_to)
        audit_cli_read(ctx, "export", [], children=[r["child"] for r in rows if r["child"]])
        if file == "-":
            write_rows(rows, sys.stdout)
            return
        with open(file, "w", encoding="utf-8", newline="") as out:
            write_rows(rows, out)
    click.echo(f"exported {len(rows)} row(s) to {file}")


commands = [import_, reconcile, export]

__all__ = ["commands"]
