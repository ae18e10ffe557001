"""``icsflow import DIR --format ssda903`` / ``FILE.xml --format cin-census``: a return read,
compared with what icsflow holds, turned into the process's own events, and sent through the
ordinary import (``workflow/transfer/importer.py``): all or nothing, the ledger (importing the
same files again, or next year's overlapping extract, adds only what is new), the dry run,
logical-time replay and emails recorded as replayed, not sent.

Several returns may go in one import (``--with``): a child's periods of care and plans must be
replayed together, because dual status starts and ends by the processes' signals as each case
stands at that moment. For the same reason a return cannot reach back before what icsflow
already holds of a child: that child is a problem, named.

Without ``skip_invalid`` any problem refuses the whole import (every problem named, nothing
written). With it, each child with an unusable row (in the files, in the derivation, or refused
by the dry run) is left out whole and its rows go to the rejects file; the rest is imported.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from icsflow.workflow.engine import Engine
from icsflow.workflow.transfer.importer import ImportReport, import_event_rows
from icsflow.workflow.transfer.returns import cp, lac
from icsflow.workflow.transfer.returns._rows import Derived, Maker
from icsflow.workflow.transfer.returns.cin_census import merge_censuses, read_cin_census
from icsflow.workflow.transfer.returns.held import Held, read_held
from icsflow.workflow.transfer.returns.records import (
    CinReturn,
    Notice,
    ReturnProblem,
    Ssda903Return,
)
from icsflow.workflow.transfer.returns.ssda903 import read_ssda903
from icsflow.workflow.transfer.rows import EventRow, Problem

FORMATS = ("ssda903", "cin-census")
DEFAULT_CONTACT = "returns-import@icsflow.invalid"


@dataclass
class ReturnsReport:
    """An import of returns: the ordinary import's report, and what only returns have."""

    sources: list[str]
    imported: ImportReport
    children: int = 0
    children_imported: int = 0
    skipped_children: list[str] = field(default_factory=list)
    rejected: list[Problem] = field(default_factory=list)  # left out with --skip-invalid
    notices: list[Notice] = field(default_factory=list)
    unplaced_notes: int = 0
    rejects_file: str | None = None

    @property
    def ok(self) -> bool:
        return self.imported.ok

    def to_json(self) -> dict[str, Any]:
        out = self.imported.to_json()
        out.update({"files": self.sources, "children": self.children,
                    "children_imported": self.children_imported,
                    "children_skipped": sorted(self.skipped_children),
                    "rejected": [str(p) for p in self.rejected],
                    "rejects_file": self.rejects_file,
                    "notices": [str(n) for n in self.notices],
                    "episode_notes_waiting": self.unplaced_notes})
        return out


Parsed = Ssda903Return | CinReturn


def read_return(fmt: str, path: str | Path) -> Parsed:
    """Parse one return; a file-level fault raises ``ValidationError`` (exit 1)."""
    if fmt == "ssda903":
        return read_ssda903(path)
    if fmt == "cin-census":
        return read_cin_census(path)
    raise ValueError(f"unknown return format {fmt!r} (known: {', '.join(FORMATS)})")


def format_of(path: str | Path) -> str:
    """A folder is a 903 extract, a .xml file a census (``--with`` tells them apart so)."""
    return "ssda903" if Path(path).is_dir() else "cin-census"


def _merged(returns: list[Parsed]) -> list[Parsed]:
    """Several censuses in one import are read as one (a plan continuing from an earlier
    year's census finds its conference there)."""
    censuses = [r for r in returns if isinstance(r, CinReturn)]
    if len(censuses) < 2:
        return returns
    return [*(r for r in returns if not isinstance(r, CinReturn)), merge_censuses(censuses)]


def derive(engine: Engine, returns: Sequence[Parsed], held: Held, *, contact: str,
           skip: set[str]) -> Derived:
    """Every return's rows, the children in ``skip`` left out."""
    out = Derived()
    for ret in returns:
        if isinstance(ret, Ssda903Return):
            out.extend(lac.derive_903(ret, held, Maker(engine, actor=lac.ACTOR,
                                                       contact=contact), skip=skip))
        else:
            out.extend(cp.derive_cin(ret, held, Maker(engine, actor=cp.ACTOR,
                                                      contact=contact), skip=skip))
    return out


def _out_of_order(rows: Sequence[EventRow], held: Held) -> list[ReturnProblem]:
    """A child whose new rows start before the latest event icsflow holds for it."""
    first: dict[str, EventRow] = {}
    for row in sorted(rows, key=lambda r: r.at):
        if row.child and row.child not in first:
            first[row.child] = row
    found: list[ReturnProblem] = []
    for child, row in first.items():
        last = held.last_event(child)
        if last is not None and last > row.at:
            found.append(ReturnProblem(
                row.source, row.line, f"child {child}: icsflow holds events up to "
                f"{last.date().isoformat()}, after this return's first new one "
                f"({row.event} on {row.at.date().isoformat()}): a child's periods and plans "
                "are replayed in time order, so import returns in year order, the 903 and "
                "the census together (--with)", child))
    return found


def import_returns(engine: Engine, sources: Sequence[tuple[str, str | Path]], *,
                   skip_invalid: bool = False, rejects: str | Path | None = None,
                   contact: str | None = None, until: date | datetime | None = None,
                   dry_run: bool = False, send: bool = False,
                   progress: Callable[[int], None] | None = None,
                   on_total: Callable[[int], None] | None = None) -> ReturnsReport:
    """Import the returns ``sources`` ((format, path) pairs) in one replay."""
    returns = _merged([read_return(fmt, path) for fmt, path in sources])
    problems: list[ReturnProblem] = [p for ret in returns for p in ret.problems]
    children = set().union(*(set(ret.children) for ret in returns))
    held = read_held(engine, children)
    bad = {p.child for p in problems if p.child}
    derived = derive(engine, returns, held, contact=contact or engine.admin_address
                     or DEFAULT_CONTACT, skip=bad)
    rows = derived.ordered()
    problems += derived.problems + _out_of_order(rows, held)
    report = ReturnsReport([str(p) for _f, p in sources], ImportReport(""),
                           children=len(children), notices=[
                               *(n for ret in returns for n in ret.ignored), *derived.notices],
                           unplaced_notes=derived.unplaced_notes)
    bad = {p.child for p in problems if p.child}
    if skip_invalid:
        report.rejected = list(problems)
        rows = [r for r in rows if r.child not in bad]
        problems = [p for p in problems if not p.child]  # a row with no child stays fatal
    by_line = {(r.source, r.line): r.child for r in rows}

    def leave_out(refused: list[Problem]) -> set[str]:
        """The rows of every child a refused row belongs to."""
        kids = {by_line.get((p.source, p.line)) for p in refused}
        kids.discard(None)
        bad.update(k for k in kids if k)
        return {r.key for r in rows if r.child in kids}

    source = ", ".join(Path(p).name for _f, p in sources)
    count = sum(ret.rows for ret in returns)
    report.imported = import_event_rows(
        engine, source, count, rows, list(problems), until=until, dry_run=dry_run, send=send,
        progress=progress, on_total=on_total, leave_out=leave_out if skip_invalid else None)
    report.rejected += report.imported.left_out
    report.skipped_children = sorted(bad & children) if skip_invalid else []
    report.children_imported = len({r.child for r in rows if r.child not in bad})
    if skip_invalid and rejects is not None and report.ok:
        write_rejects(report.rejected, rejects, by_line)
        report.rejects_file = str(rejects)
    return report


def write_rejects(problems: Sequence[Problem], path: str | Path,
                  children: dict[tuple[str, int], str | None]) -> None:
    """One CSV row per unusable row: file, line, child, reason."""
    with Path(path).open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "line", "child", "reason"])
        for p in sorted(problems, key=lambda p: (p.source, p.line)):
            child = p.child if isinstance(p, ReturnProblem) else children.get((p.source, p.line))
            writer.writerow([p.source, p.line, child or "", p.message])


__all__ = ["import_returns", "ReturnsReport", "read_return", "format_of", "derive", "FORMATS",
           "DEFAULT_CONTACT", "write_rejects"]
