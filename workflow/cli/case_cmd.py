"""``icsflow start | fire | show | list | tick | db upgrade``: cases from the command line.

Refusals (wrong role, event not allowed, bad data, unknown instance) are one ``error:`` line on
stderr and exit 1 with nothing changed; usage mistakes are click's exit 2.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import click

from icsflow.workflow.cli.audit_cmd import audit_cli_read
from icsflow.workflow.cli.common import DATE, DATETIME, Mode, fail, opened, settings_of
from icsflow.workflow.labels import Kind, Labels

if TYPE_CHECKING:
    from icsflow.storage.reads import DeadlineRowInfo
    from icsflow.workflow.cli.case_views import CaseView
    from icsflow.workflow.engine import Engine
    from icsflow.workflow.instance import Instance


def _one_line(error: BaseException) -> str:
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return "; ".join(lines) if lines else type(error).__name__


def _resolve(engine: Engine, key: str) -> Instance:
    """The case with id ``key``, else the one case with reference ``key`` (``find_case``);
    several sharing the reference are listed and refused: exit 1, so nobody fires an event on
    the wrong child's case."""
    from icsflow.workflow.commands import find_case
    from icsflow.workflow.errors import AmbiguousReference

    try:
        return find_case(engine, key)
    except AmbiguousReference as error:
        click.echo(f"error: reference {key!r} matches {len(error.matches)} cases; give the id "
                   "of one:", err=True)
        for case_id, definition, version, state, started, closed in error.matches:
            when = _local(started) if started is not None else "-"
            click.echo(f"  {case_id}  {definition} v{version}  {state}  started {when}"
                       f"{'  (closed)' if closed else ''}", err=True)
        raise SystemExit(1) from None


def _assignments(engine: Engine, name: str, version: int | None,
                 pairs: Sequence[str]) -> dict[str, Any]:
    from icsflow.workflow.data import parse_assignments

    return parse_assignments(engine.definition(name, version), pairs)


def _local(moment: datetime) -> str:
    """A moment as the service reads it: Europe/London wall time (JSON keeps full ISO)."""
    from icsflow.workflow.clock import LONDON

    return moment.astimezone(LONDON).strftime("%Y-%m-%d %H:%M")


def _print_instance(inst: Instance, as_json: bool,
                    explain: dict[str, dict[str, Any]] | None = None,
                    labels: Labels | None = None) -> None:
    """The case: ``--json`` with the names (the contract), else as a person reads it, in the
    process's labels (``labels``; names spaced when none are given)."""
    if as_json:
        payload = inst.to_json()
        for d in payload.get("deadline_details", []):  # why each live deadline falls there
            if explain and d["name"] in explain and d.get("met_at") is None \
                    and d["status"] in ("live", "breached"):
                d["explain"] = explain[d["name"]]
        click.echo(json.dumps(payload, indent=2, default=str))
        return
    from icsflow.definitions.model import humanize
    from icsflow.workflow.labels import Labels

    lab = labels or Labels()
    name = inst.definition

    def of(kind: Kind, key: str) -> str:
        return lab.of(name, kind, key)

    click.echo(f"{inst.id}  {lab.title(name)}, version {inst.version}  ref {inst.ref}")
    if inst.child or inst.family:
        click.echo(f"child: {inst.child or '-'}  family: {inst.family or '-'}")
    click.echo(f"state: {of('state', inst.state)}{'  (closed)' if inst.closed else ''}")
    if inst.data:
        click.echo("data:")
        for k, v in inst.data.items():
            click.echo(f"  {of('field', k)}: {lab.value(name, k, v) if isinstance(v, str) else v}")
    if inst.deadline_list:
        click.echo("deadlines:")
        for d in inst.deadline_list:
            # A breached deadline the case later left (answered late, or escalated) is
            # "closed", not "met": met means on time.
            word = "met" if d.status.value == "met" else "closed"
            extra = f", {word} {_local(d.met_at)}" if d.met_at else ""
            click.echo(f"  {of('deadline', d.name):<36} {d.due.isoformat()}  "
                       f"{d.status.value}{extra}")
            if explain and d.name in explain and d.active:
                click.echo(f"    why: {explain[d.name]['text']}")
    if inst.timers:
        click.echo("timers:")
        for t in inst.timers:
            click.echo(f"  {humanize(t.name):<36} {_local(t.due_at)}  {t.action}")
    click.echo("history:")
    click.echo(f"  {'at (London)':<17} {'event':<28} {'from':<28} {'to':<28} {'actor (role)'}")
    for h in inst.history:
        note = f"  - {h.note}" if h.note else ""
        before = of("state", h.from_state) if h.from_state else "-"
        click.echo(f"  {_local(h.at):<17} {of('event', h.event):<28} {before:<28} "
                   f"{of('state', h.to_state):<28} {h.actor} ({of('role', h.role)}){note}")


def _warn_addresses(ctx: click.Context, engine: Engine, inst: Instance) -> None:
    """Roles the process emails that no address reaches, one warning line each on stderr."""
    from icsflow.workflow.cli.addresses import address_warnings

    defn = engine.definition(inst.definition, inst.version)
    directory = settings_of(ctx).resolved().directory
    for line in address_warnings(defn, inst.ref, inst.state, inst.data, directory):
        click.echo(line, err=True)


@click.command()
@click.argument("name")
@click.option("--ref", required=True, help="The case reference (e.g. the child's case number).")
@click.option("--actor", "actor_id", required=True, metavar="ID", help="Who starts it.")
@click.option("--role", required=True, help="The actor's role (one of the start roles).")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="A data field (repeat); converted by the field's type.")
@click.option("--at", type=DATETIME, default=None, help="When it really happened (ISO).")
@click.option("--version", "def_version", type=int, default=None,
              help="Definition version (default the latest).")
@click.option("--child", default=None, metavar="ID",
              help="The child's identifier in the case-management system.")
@click.option("--family", default=None, metavar="ID", help="The family's identifier.")
@click.option("--json", "as_json", is_flag=True, help="Print the instance as JSON.")
@click.pass_context
def start(ctx: click.Context, name: str, ref: str, actor_id: str, role: str,
          assignments: tuple[str, ...], at: datetime | None, def_version: int | None,
          child: str | None, family: str | None, as_json: bool) -> None:
    """Start a case of process NAME."""
    from icsflow.workflow.instance import Actor

    with opened(ctx, Mode.CREATE) as engine:
        data = _assignments(engine, name, def_version, assignments)
        inst = engine.start(name, ref=ref, data=data, actor=Actor(actor_id, role), at=at,
                            version=def_version, child=child, family=family)
        _print_instance(inst, as_json, labels=Labels(engine.definitions))
        _warn_addresses(ctx, engine, inst)


@click.command()
@click.argument("instance_id", metavar="CASE")
@click.argument("event")
@click.option("--actor", "actor_id", required=True, metavar="ID", help="Who fires it.")
@click.option("--role", required=True, help="The actor's role.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="A data field the event carries (repeat).")
@click.option("--note", default=None, help="A note for the history.")
@click.option("--at", type=DATETIME, default=None, help="When it really happened (ISO).")
@click.option("--json", "as_json", is_flag=True, help="Print the instance as JSON.")
@click.pass_context
def fire(ctx: click.Context, instance_id: str, event: str, actor_id: str, role: str,
         assignments: tuple[str, ...], note: str | None, at: datetime | None,
         as_json: bool) -> None:
    """Fire EVENT on CASE (its id, or its reference if only one case has it)."""
    from icsflow.workflow.instance import Actor

    with opened(ctx, Mode.WRITE) as engine:
        current = _resolve(engine, instance_id)
        data = _assignments(engine, current.definition, current.version, assignments)
        inst = engine.fire(current.id, event, actor=Actor(actor_id, role), data=data,
                           note=note, at=at)
        _print_instance(inst, as_json, labels=Labels(engine.definitions))
        if not inst.closed:
            _warn_addresses(ctx, engine, inst)


@click.command()
@click.argument("instance_id", metavar="CASE")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def show(ctx: click.Context, instance_id: str, as_json: bool) -> None:
    """Show a case (by id, or by reference if only one case has it): state, deadlines,
    timers and history."""
    with opened(ctx, Mode.READ) as engine:
        inst = _resolve(engine, instance_id)
        audit_cli_read(ctx, "show", [inst])
        try:
            explain = engine.explain(inst.id)
        except Exception:  # noqa: BLE001 - the case is still shown, only without the why
            explain = None
        _print_instance(inst, as_json, explain, labels=Labels(engine.definitions))


@click.command("list")
@click.option("--definition", default=None, help="Only cases of this process.")
@click.option("--state", default=None, help="Only cases in this state.")
@click.option("--overdue", is_flag=True,
              help="Only cases with a deadline past due: that deadline and how many working "
              "days overdue, worst first.")
@click.option("--open", "open_only", is_flag=True, help="Only cases not closed.")
@click.option("--child", default=None, metavar="ID", help="Only this child's cases.")
@click.option("--family", default=None, metavar="ID", help="Only this family's cases.")
@click.option("--as-at", "as_at", type=DATE, default=None,
              help="Answer as the cases stood at the end of this day (from their history).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default=None,
              help="Output format [default table].")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (same as --format json).")
@click.pass_context
def list_(ctx: click.Context, definition: str | None, state: str | None, overdue: bool,
          open_only: bool, child: str | None, family: str | None, as_at: date | None,
          fmt: str | None, as_json: bool) -> None:
    """List cases, now or as at the end of a past day."""
    from icsflow.workflow.cli import case_views as views

    if as_json and fmt not in (None, "json"):
        raise click.UsageError("--json and --format csv/table cannot be combined")
    fmt = "json" if as_json else (fmt or "table")
    with opened(ctx, Mode.READ) as engine:
        _check_filters(engine, definition, state)
        calendar = engine.calendar
        if as_at is None:
            moment = engine.clock.now()
            today = calendar.local_date(moment)
            items = engine.list(definition=definition, state=state, overdue=overdue,
                                open_only=open_only, child=child, family=family)
            found = [views.current_view(i) for i in items]
        else:
            moment = views.end_of_day(as_at, calendar)
            today = as_at
            items = engine.list(definition=definition, child=child, family=family)
            found = _as_at(engine, items, moment)
            found = [v for v in found if (state is None or v.state == state)
                     and not (open_only and v.closed)]
        if overdue:
            found = views.overdue_first(found, moment)
        rows = views.rows_for(found, moment, today, calendar, overdue)
        audit_cli_read(ctx, "list", items, only={r["id"] for r in rows})
        if fmt == "csv":
            click.echo(views.csv_text(rows), nl=False)
            return
        if fmt == "json":
            if as_at is None:  # the DESIGN shape, plus the overdue deadline when asked
                by_id = {i.id: i for i in items}
                out = []
                for row in rows:
                    shape = by_id[row["id"]].to_json()
                    if overdue:
                        shape.update(overdue_deadline=row["deadline"], overdue_due=row["due"],
                                     working_days_overdue=row["working_days_overdue"])
                    out.append(shape)
                click.echo(json.dumps(out, indent=2, default=str))
            else:
                click.echo(json.dumps(rows, indent=2, default=str))
            return
        if not found:
            click.echo("no cases")
            return
        last = "overdue deadline (working days)" if overdue else "next deadline"
        lab = Labels(engine.definitions)  # the table in labels; CSV and JSON keep the names
        click.echo(f"{'id':<36}  {'ref':<14} {'process':<34} {'state':<34} {last}")
        for row in rows:
            d = row["definition"]
            dl = (f"{lab.of(d, 'deadline', row['deadline'])} {row['due']}"
                  if row["deadline"] else "-")
            if overdue:
                dl += f" ({row['working_days_overdue']})"
            click.echo(f"{row['id']:<36}  {row['ref']:<14} {lab.title(d):<34} "
                       f"{lab.of(d, 'state', row['state']):<34} {dl}")


def _check_filters(engine: Engine, definition: str | None, state: str | None) -> None:
    """An unknown process or state is a typo, not "no cases": exit 1 with the nearest name."""
    from icsflow.workflow.cli.case_views import unknown_choice

    defs = list(engine.definitions)
    if definition is not None:
        problem = unknown_choice("definition", definition, (d.name for d in defs))
        if problem:
            fail(problem)
    if state is not None:
        pool = [d for d in defs if definition is None or d.name == definition]
        problem = unknown_choice("state", state, (s.name for d in pool for s in d.states))
        if problem:
            fail(problem)


def _as_at(engine: Engine, items: Sequence[Instance], moment: datetime) -> list[CaseView]:
    from icsflow.storage.reads import deadline_rows
    from icsflow.workflow.cli.case_views import view_as_at
    from icsflow.workflow.commands import sql_engine

    rows_by_case: dict[str, list[DeadlineRowInfo]] = {}
    for row in deadline_rows(sql_engine(engine), [i.id for i in items]):
        rows_by_case.setdefault(row.instance_id, []).append(row)
    found = []
    for inst in items:
        defn = engine.definition(inst.definition, inst.version)
        live_in = {d.name: d.live_in for d in defn.deadlines}
        view = view_as_at(inst, moment, rows_by_case.get(inst.id, []), live_in)
        if view is not None:
            found.append(view)
    return found


@click.command()
@click.option("--now", type=DATETIME, default=None,
              help="Run timers as of this moment (ISO), e.g. to replay a year.")
@click.pass_context
def tick(ctx: click.Context, now: datetime | None) -> None:
    """Fire due timers once (each recorded at its own due time), then send the outbox."""
    from icsflow.workflow import commands
    from icsflow.workflow.daemon import build_dispatcher
    from icsflow.workflow.daemon.wiring import check_mail_channel

    settings = settings_of(ctx)
    config = settings.resolved()
    check_mail_channel(config)  # a bad mail setting is found before any timer fires
    with opened(ctx, Mode.WRITE) as engine:  # a missing database is refused, not created
        dispatcher, close = build_dispatcher(config, calendar=settings.calendar())
        before = _dead_letters(engine)
        try:
            done = commands.tick(engine, now, dispatcher=dispatcher)
        finally:
            close()
        dead = _dead_letters(engine) - before
    counts = done.timers.as_dict()
    click.echo("timers: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v or k == "fired"))
    sent: Any = done.sent
    click.echo(f"outbox: sent {sent.sent}, retried {sent.retried}, failed {sent.failed}, "
               f"waiting {sent.waiting}")
    # Emails with nobody to go to are dead letters from the moment they are queued, not
    # failures of the sending above: counted here so that "failed 0" never hides them.
    click.echo(f"dead letters: {len(dead)} new" + (
        f" (cases {', '.join(sorted({ref for _, ref in dead if ref}))}; icsflow outbox "
        "--status failed says why, and the administrator's notice how to fix it)"
        if dead else ""))


def _dead_letters(engine: Engine) -> set[tuple[int, str]]:
    """The failed email rows of the outbox, as (id, case reference)."""
    outbox = engine.outbox
    if outbox is None:
        return set()
    return {(m.id, m.ref or "") for m in outbox.list("failed") if m.channel == "email"}


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create or migrate the database schema to this version of icsflow."""
    from icsflow.workflow import commands
    from icsflow.workflow.errors import WorkflowError

    settings = settings_of(ctx)
    url = settings.db or settings.resolved().database_url
    try:
        before, after = commands.upgrade(url)
    except WorkflowError:
        raise  # main() says it in one line
    except Exception as error:  # noqa: BLE001 - one line, not a traceback; no password in it
        reason = str(error).splitlines()[0] if str(error) else repr(error)
        fail(f"cannot upgrade {commands.described(url)}: {reason}")
    if before == after:
        click.echo(f"database is up to date (revision {after})")
    else:
        click.echo(f"database upgraded from {before or 'empty'} to {after}")


commands = [start, fire, show, list_, tick, db]

__all__ = ["commands", "start", "fire", "show", "list_", "tick", "db"]
