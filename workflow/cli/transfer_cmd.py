"""``icsflow import | reconcile | export``: extracts in and out (workflow/transfer/).

A refused import prints every bad row as ``FILE:LINE: message`` on stderr and exits 1 with
nothing written; ``--json`` prints the same report as JSON on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from icsflow.workflow.cli.common import DATE, Mode, fail, opened

if TYPE_CHECKING:
    from icsflow.workflow.engine import Engine
    from icsflow.workflow.transfer.importer import ImportReport
    from icsflow.workflow.transfer.mapping import MappingProfile
    from icsflow.workflow.transfer.returns.importing import ReturnsReport


@contextmanager
def _engine(ctx: click.Context, mode: Mode) -> Iterator[Engine]:
    with opened(ctx, mode) as engine:
        yield engine


def _profile(path: str | None) -> MappingProfile | None:
    from icsflow.workflow.transfer.mapping import load_profile

    return load_profile(path) if path else None


RETURNS = ("ssda903", "cin-census")


@click.command("import")
@click.argument("file", metavar="FILE.csv|FILE.xlsx|DIR|FILE.xml")
@click.option("--format", "fmt", type=click.Choice(["csv", *RETURNS]), default="csv",
              show_default=True,
              help="csv: the canonical format (or XLSX); ssda903: a folder of the DfE's "
              "header.csv, episodes.csv, reviews.csv; cin-census: a CIN census XML file.")
@click.option("--with", "also", multiple=True, metavar="DIR|FILE.xml",
              help="Another return replayed in the same import (a 903 folder or a census "
              "file): a child's periods of care and plans must go in together for dual "
              "status to follow them.")
@click.option("--skip-invalid", is_flag=True,
              help="Returns: import every usable child; a child with an unusable row is left "
              "out whole and its rows written to the rejects file.")
@click.option("--rejects", default=None, metavar="PATH",
              help="Where --skip-invalid writes the unusable rows [default: "
              "<FILE>-rejects.csv in the current folder].")
@click.option("--contact", default=None, metavar="EMAIL",
              help="Returns: the address standing for the staff a return does not name "
              "(team manager, IRO) [default: the configured admin_address].")
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
def import_(ctx: click.Context, file: str, fmt: str, also: tuple[str, ...],
            skip_invalid: bool, rejects: str | None, contact: str | None, dry_run: bool,
            until: date | None, map_file: str | None, send: bool, as_json: bool) -> None:
    """Import an extract (one row per event), replaying it in logical time: timers,
    escalations and emails on their own dates. All or nothing; importing again changes
    nothing. With --format ssda903 or cin-census, a statutory return (docs/returns.md)."""
    if fmt == "csv" and (also or skip_invalid or rejects or contact):
        raise click.UsageError("--with, --skip-invalid, --rejects and --contact are for "
                               "returns (--format ssda903 or cin-census)")
    if fmt != "csv" and map_file:
        raise click.UsageError("--map is for the canonical format (--format csv)")
    returns: ReturnsReport | None = None  # with --format ssda903 or cin-census
    with _engine(ctx, Mode.CREATE) as engine, _progress(as_json) as (progress, on_total):
        if fmt == "csv":
            from icsflow.workflow.transfer.importer import import_rows, load_rows

            table, rows, problems = load_rows(file, engine, _profile(map_file))
            imported = import_rows(engine, table, rows, problems, until=until, dry_run=dry_run,
                                   send=send, progress=progress, on_total=on_total)
        else:
            from icsflow.workflow.transfer.returns.importing import format_of, import_returns

            sources = [(fmt, file), *((format_of(p), p) for p in also)]
            returns = import_returns(
                engine, sources, skip_invalid=skip_invalid,
                rejects=rejects or f"{Path(file).stem or 'returns'}-rejects.csv",
                contact=contact, until=until, dry_run=dry_run, send=send, progress=progress,
                on_total=on_total)
            imported = returns.imported
    if as_json:
        shown = returns.to_json() if returns is not None else imported.to_json()
        click.echo(json.dumps(shown, indent=2))
        if not imported.ok:
            raise SystemExit(1)
        return
    if not imported.ok:
        for problem in imported.problems:
            click.echo(str(problem), err=True)
        fail(f"{file}: {len(imported.problems)} bad row(s); nothing was imported")
    _summary(imported)
    if returns is not None:
        _returns_summary(returns)


@contextmanager
def _progress(as_json: bool,
              ) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """A progress bar on a terminal (not with --json)."""
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
        yield progress, on_total
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def _summary(report: ImportReport) -> None:
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


def _returns_summary(report: ReturnsReport) -> None:
    click.echo(f"children: {report.children} in the return(s), {report.children_imported} "
               f"with new events, {len(report.skipped_children)} left out")
    if report.rejected:
        click.echo(f"{len(report.rejected)} unusable row(s)"
                   + (f" written to {report.rejects_file}" if report.rejects_file else ""))
    for notice in report.notices:
        click.echo(str(notice))
    if report.unplaced_notes:
        click.echo(f"{report.unplaced_notes} episode change(s) after a case's last event wait "
                   "for its next event to reach the timeline")


@click.command("reconcile")
@click.argument("file", metavar="FILE.csv|FILE.xlsx|DIR|FILE.xml")
@click.option("--format", "fmt", type=click.Choice(["csv", *RETURNS]), default="csv",
              show_default=True, help="csv: the canonical format; ssda903 or cin-census: a "
              "statutory return.")
@click.option("--map", "map_file", default=None, metavar="MAP.yaml",
              help="A mapping profile from the source system's columns and values.")
@click.option("--until", type=DATE, default=None,
              help="Judge deadlines as at the end of this day [default: now].")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
@click.option("--csv", "csv_path", default=None, metavar="PATH",
              help="Also write the differences as CSV ('-' for stdout).")
@click.pass_context
def reconcile(ctx: click.Context, file: str, fmt: str, map_file: str | None,
              until: date | None, as_json: bool, csv_path: str | None) -> None:
    """List where an extract (or a return) and icsflow disagree, changing nothing."""
    if fmt != "csv":
        if map_file or until or csv_path:
            raise click.UsageError("--map, --until and --csv are for --format csv")
        _reconcile_return(ctx, file, fmt, as_json)
        return
    from icsflow.workflow.cli.audit_cmd import audit_cli_read
    from icsflow.workflow.transfer import reconcile as rec
    from icsflow.workflow.transfer.importer import load_rows

    with _engine(ctx, Mode.READ) as engine:
        _table, rows, problems = load_rows(file, engine, _profile(map_file))
        if problems:
            for problem in problems:
                click.echo(str(problem), err=True)
            fail(f"{file}: {len(problems)} unreadable row(s); nothing compared")
        found = rec.reconcile(engine, rows, until=until)
    audit_cli_read(ctx, "reconcile", [], children=[r.child for r in rows if r.child])
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


def _reconcile_return(ctx: click.Context, file: str, fmt: str, as_json: bool) -> None:
    from icsflow.workflow.cli.audit_cmd import audit_cli_read
    from icsflow.workflow.transfer.returns import reconcile as rec
    from icsflow.workflow.transfer.returns.importing import read_return

    with _engine(ctx, Mode.READ) as engine:
        found = rec.reconcile_returns(engine, read_return(fmt, file))
    audit_cli_read(ctx, f"reconcile {fmt}", [], children=[d.child for d in found if d.child])
    click.echo(rec.to_json(file, found) if as_json else rec.render_table(found))


@click.command("export")
@click.option("--from", "date_from", type=DATE, default=None, help="First day (YYYY-MM-DD).")
@click.option("--to", "date_to", type=DATE, default=None, help="Last day (YYYY-MM-DD).")
@click.option("--format", "fmt", type=click.Choice(["csv", *RETURNS]), default="csv",
              show_default=True,
              help="csv: the canonical format; ssda903: the year's reviews.csv into DIR; "
              "cin-census: the year's child protection module as XML.")
@click.option("--year", default=None, metavar="2012-13",
              help="Returns: the collection year (1 April to 31 March).")
@click.option("--header", "header", default=None, metavar="header.csv",
              help="ssda903: the council's header.csv, for the DOBs the review cases do "
              "not record.")
@click.option("--lea", default=None, metavar="CODE",
              help="cin-census: the local authority's code for the Header.")
@click.argument("file", metavar="FILE.csv|DIR|FILE.xml")
@click.pass_context
def export(ctx: click.Context, date_from: date | None, date_to: date | None, fmt: str,
           year: str | None, header: str | None, lea: str | None, file: str) -> None:
    """Write the history in the canonical import format ('-' for stdout), or with --format a
    return's part for one collection year (docs/returns.md)."""
    if fmt == "csv":
        if year or header or lea:
            raise click.UsageError("--year, --header and --lea are for --format ssda903 or "
                                   "cin-census")
        _export_csv(ctx, date_from, date_to, file)
        return
    if not year:
        raise click.UsageError(f"--format {fmt} needs --year (e.g. --year 2012-13)")
    if date_from or date_to:
        raise click.UsageError("--from/--to are for --format csv; a return takes --year")
    from icsflow.workflow.cli.audit_cmd import audit_cli_read
    from icsflow.workflow.transfer.returns.export import export_cin_census, export_ssda903
    from icsflow.workflow.transfer.returns.records import financial_year

    try:
        financial_year(year)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--year") from None
    with _engine(ctx, Mode.READ) as engine:
        if fmt == "ssda903":
            done = export_ssda903(engine, file, year, header=header)
            said = (f"exported {done.rows} review(s) of {done.children} child(ren) held in "
                    f"{year} to {done.path}")
        else:
            done = export_cin_census(engine, file, year, lea=lea)
            said = (f"exported {done.rows} enquiry and plan block(s) of {done.children} "
                    f"child(ren) in {year} to {done.path}")
    audit_cli_read(ctx, f"export {fmt} {year}", [], children=done.child_ids)
    click.echo(said)


def _export_csv(ctx: click.Context, date_from: date | None, date_to: date | None,
                file: str) -> None:
    from icsflow.workflow.cli.audit_cmd import audit_cli_read
    from icsflow.workflow.transfer.export import export_rows, write_rows

    with _engine(ctx, Mode.READ) as engine:
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
