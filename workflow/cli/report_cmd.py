"""``icsflow report``: the service's figures for a period, as at a day, as known at a moment.

The period defaults to the financial year containing ``--as-at`` (itself today by default);
``--list PATH`` prints the cases behind one figure (``lac_reviews.late``, ``alerts.raised``...).
"""

from __future__ import annotations

import difflib
import json
from datetime import date, datetime
from pathlib import Path

import click

from icsflow.workflow.cli.audit_cmd import audit_cli_read
from icsflow.workflow.cli.common import DATE, DATETIME, Mode, fail, opened

_SUFFIX_FORMATS = {".html": "html", ".htm": "html", ".json": "json", ".csv": "csv"}


@click.command()
@click.option("--from", "start", type=DATE, default=None,
              help="First day of the period [default: 1 April of the financial year of "
              "--as-at].")
@click.option("--to", "end", type=DATE, default=None,
              help="Last day of the period [default: 31 March after --from].")
@click.option("--as-at", "as_at", type=DATE, default=None,
              help="Count what had happened by the end of this day (the events' own dates) "
              "[default: today].")
@click.option("--known-at", "known_at", type=DATETIME, default=None,
              help="Also leave out everything recorded after this moment: reproduces a report "
              "as it was sent.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "html"]),
              default=None, help="Output format [default: table, or from --out's suffix].")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of standard output.")
@click.option("--list", "list_path", metavar="FIGURE", default=None,
              help="Print the cases behind one figure, e.g. lac_reviews.late or "
              "dual_status.month_end.2011-09.")
@click.option("--band", type=click.IntRange(min=1), default=None,
              help="Caseload above which a chair is listed [default 70, the IRO Handbook's].")
@click.pass_context
def report(ctx: click.Context, start: date | None, end: date | None, as_at: date | None,
           known_at: datetime | None, fmt: str | None, as_json: bool, out: Path | None,
           list_path: str | None, band: int | None) -> None:
    """The service's report: Alerts, looked-after reviews, conferences, dual status and
    caseloads for a period (financial year by default)."""
    from icsflow.workflow.commands import sql_engine
    from icsflow.workflow.labels import Labels
    from icsflow.workflow.reports import Window, build_report, final_states, render
    from icsflow.workflow.reports.figures import DEFAULT_BAND
    from icsflow.workflow.reports.render import list_items

    if as_json and fmt not in (None, "json"):
        raise click.UsageError(f"--json and --format {fmt} disagree: give one")
    fmt = "json" if as_json else fmt
    fmt = fmt or (_SUFFIX_FORMATS.get(out.suffix.lower(), "table") if out else "table")
    with opened(ctx, Mode.READ) as engine:
        today = engine.calendar.local_date(engine.clock.now())
        try:
            window = Window.resolve(start=start, end=end, as_at=as_at, known_at=known_at,
                                    today=today, tz=engine.calendar.tz)
        except ValueError as error:
            raise click.UsageError(str(error)) from None
        result = build_report(sql_engine(engine), window, band=band or DEFAULT_BAND,
                              final_states=final_states(engine.definitions))
        labels = Labels(engine.definitions)  # the table and the page read labels
    if list_path is not None:
        if list_path not in result.figures.cases:
            near = difflib.get_close_matches(list_path, result.paths(), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(near)}?" if near else (
                "; figures: " + ", ".join(p for p in result.paths() if p.count(".") == 1))
            fail(f"--list: no figure {list_path!r}{hint}")
        audit_cli_read(ctx, f"report --list {list_path}", [],
                       children=[i.child for i in result.items(list_path) if i.child])
        if fmt == "json":
            text = json.dumps({"figure": list_path,
                               "cases": [i.to_json() for i in result.items(list_path)]},
                              indent=2) + "\n"
        else:
            text = list_items(result, list_path)
    else:
        text = render(result, fmt, labels)
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as error:
        fail(f"--out {out}: {error.strerror or error}")
    click.echo(f"report written to {out}", err=True)


commands = [report]
