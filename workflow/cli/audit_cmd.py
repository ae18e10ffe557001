"""``icsflow audit``: read and verify the audit trail; the CLI's own reads of children.

``icsflow audit`` lists rows by user, child, time and kind (``--break-glass`` lists the
break-glass openings for review) as a table, JSON or CSV; ``icsflow audit verify`` walks the
hash chain and exits 1 naming the first row that was changed or removed, else prints the head
(keep it elsewhere: ``--anchor SEQ:HASH`` later proves the chain was not rewritten before it).

``audit_cli_read`` is what the commands that print children's data (``show``, ``list``,
``child``, ``export``, ``report --list``) call: one row naming the operating-system user and
every child printed. The engine of a reading command is read-only, so the row goes through a
short-lived connection of its own; on a database nobody may write (a read-only copy), the read
still works and a warning says it was not audited.
"""

from __future__ import annotations

import csv
import getpass
import io
import json
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import click

from icsflow.workflow.cli.common import DATE, CliSettings, fail, settings_of

if TYPE_CHECKING:
    from sqlalchemy import Engine as SqlEngine

CLI_ROLE = "operator"


def cli_user() -> str:
    """Who ran a command, as the audit names them (as trustworthy as the operating-system
    account: anyone who runs the CLI can also read the database directly)."""
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return "cli:unknown"


def _settings(ctx: click.Context) -> CliSettings:
    return settings_of(ctx)


def audit_cli_read(ctx: click.Context, purpose: str, cases: Iterable[Any], *,
                   only: Iterable[str] | None = None, children: Iterable[str] = ()) -> None:
    """Record that this command printed the data of ``cases`` (those with an id in ``only``
    when given) and of ``children``; a case without a child is named by its id."""
    from sqlalchemy.exc import DBAPIError

    from icsflow.storage.audit import READ, AuditEntry, AuditStore
    from icsflow.storage.db import create_db_engine
    from icsflow.workflow.errors import WorkflowError

    keep = set(only) if only is not None else None
    shown = [c for c in cases if keep is None or c.id in keep]
    named = list(dict.fromkeys([*children, *(c.child for c in shown if c.child)]))
    loose = [c.id for c in shown if not c.child]
    detail = f"{len(named)} children" + (f"; cases without a child: {', '.join(loose)}"
                                         if loose else "")
    try:
        sql = create_db_engine(_settings(ctx).resolved().database_url, create=False)
        try:
            AuditStore(sql).append(AuditEntry(datetime.now().astimezone(), cli_user(),
                                              CLI_ROLE, READ, f"cli {purpose}", tuple(named),
                                              loose[0] if len(shown) == 1 and loose else None,
                                              detail))
        finally:
            sql.dispose()
    except (DBAPIError, WorkflowError, OSError) as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        click.echo(f"warning: this read was not audited (the database cannot be written: "
                   f"{reason})", err=True)


def _bounds(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    from icsflow.workflow.clock import LONDON

    low = datetime.combine(start, time(0), LONDON) if start else None
    high = datetime.combine(end + timedelta(days=1), time(0), LONDON) if end else None
    return low, high


def _printable(text: str) -> str:
    """A table line as text only: what a client typed never drives the terminal."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _rows_text(rows: list[Any], fmt: str) -> str:
    from icsflow.workflow.csv_cells import safe_row

    if fmt == "json":
        return json.dumps([r.to_json() for r in rows], indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["seq", "at", "user", "role", "kind", "purpose", "children", "case",
                         "detail", "ip", "hash"])
        for r in rows:
            e = r.entry
            writer.writerow(safe_row([r.seq, e.at.isoformat(), e.user, e.role, e.kind,
                                      e.purpose, " ".join(e.children), e.case_id or "",
                                      e.detail or "", e.ip or "", r.hash]))
        return out.getvalue()
    if not rows:
        return "no audit rows\n"
    lines = [f"{'seq':>6}  {'at (UTC)':<19}  {'user':<16} {'role':<20} {'kind':<14} "
             "purpose / children / detail"]
    for r in rows:
        e = r.entry
        kids = ", ".join(e.children[:6]) + (f" (+{len(e.children) - 6})"
                                             if len(e.children) > 6 else "")
        extra = "  ".join(p for p in (kids, e.case_id or "", e.detail or "") if p)
        lines.append(_printable(f"{r.seq:>6}  {e.at:%Y-%m-%d %H:%M:%S}  {e.user[:16]:<16} "
                                f"{e.role[:20]:<20} {e.kind:<14} {e.purpose}"
                                + (f"  [{extra}]" if extra else "")))
    return "\n".join(lines) + "\n"


def _open(ctx: click.Context) -> SqlEngine:
    from icsflow.storage.db import create_db_engine, current_revision, head_revision

    sql = create_db_engine(_settings(ctx).resolved().database_url, create=False)
    if current_revision(sql) != head_revision(sql):
        sql.dispose()
        fail("the database schema is not up to date: run `icsflow db upgrade`")
    return sql


@click.group(invoke_without_command=True)
@click.option("--user", "user_name", default=None, help="Only rows of this user (cli:NAME for "
              "the command line).")
@click.option("--child", default=None, metavar="ID", help="Only rows naming this child.")
@click.option("--from", "start", type=DATE, default=None, help="First day (Europe/London).")
@click.option("--to", "end", type=DATE, default=None, help="Last day (Europe/London).")
@click.option("--kind", "kinds", multiple=True, metavar="KIND",
              help="Only this kind (read, act, refused, break_glass, sign_in, sign_in_failed, "
              "throttled, sign_out, account); repeat for several.")
@click.option("--break-glass", "break_glass", is_flag=True,
              help="Only break-glass openings, for review (same as --kind break_glass).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True, help="Output format.")
@click.pass_context
def audit(ctx: click.Context, user_name: str | None, child: str | None, start: date | None,
          end: date | None, kinds: tuple[str, ...], break_glass: bool, fmt: str) -> None:
    """The audit trail: every read of a child's data, every event, refusal, break-glass and
    sign-in, oldest first. `icsflow audit verify` checks nobody changed it."""
    from icsflow.storage.audit import BREAK_GLASS, KINDS, AuditStore

    if ctx.invoked_subcommand is not None:
        return
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise click.UsageError(f"--kind {unknown[0]!r}: one of {', '.join(KINDS)}")
    if start and end and end < start:
        raise click.UsageError("--to is before --from")
    wanted = tuple(dict.fromkeys([*kinds, *([BREAK_GLASS] if break_glass else [])]))
    low, high = _bounds(start, end)
    sql = _open(ctx)
    try:
        rows = AuditStore(sql).rows(user=user_name, child=child, start=low, end=high,
                                    kinds=wanted)
    finally:
        sql.dispose()
    click.echo(_rows_text(rows, fmt), nl=False)


@audit.command("verify")
@click.option("--anchor", default=None, metavar="SEQ:HASH",
              help="A head printed by an earlier verify: it must still be in the chain.")
@click.pass_context
def audit_verify(ctx: click.Context, anchor: str | None) -> None:
    """Prove no audit row was changed or removed: exit 0 and print the head, or exit 1
    naming the first bad row."""
    from icsflow.storage.audit import AuditStore

    mark: tuple[int, str] | None = None
    if anchor is not None:
        seq, _, digest = anchor.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise click.UsageError(f"--anchor {anchor!r}: expected SEQ:HASH as verify prints it")
        mark = (int(seq), digest.lower())
    sql = _open(ctx)
    try:
        verdict = AuditStore(sql).verify(mark)
    finally:
        sql.dispose()
    if not verdict.ok:
        fail(f"audit chain broken at row {verdict.bad_seq}: {verdict.problem}")
    click.echo(f"audit chain intact: {verdict.checked} rows; head {verdict.head_seq}:"
               f"{verdict.head_hash}")


commands = [audit]

__all__ = ["commands", "audit", "audit_cli_read", "cli_user", "CLI_ROLE"]
