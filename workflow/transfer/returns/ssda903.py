"""Read an SSDA903 extract: a folder with ``header.csv``, ``episodes.csv`` and ``reviews.csv``
in the DfE's layout (dates dd/mm/yyyy), one collection year or several.

Names are matched without regard to case (``Episodes.CSV``). A multi-year extract repeats a
child's header row each year and an episode open on 31 March in two years (without, then with,
its DEC): identical rows collapse into one, an episode closed by a later year's row takes the
closing DEC, and any other difference (a DOB, a code, a date changed between years) is a problem
on the later line, never two facts. Then each child's episodes are chained into periods of care
(an episode with RNE S starts one; REC X1 means the next episode continues it from the same day)
and each review is placed in the period it fell in. Every unusable row is a ``ReturnProblem``
naming ``FILE:LINE`` and the reason, tied to its child.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date
from pathlib import Path

from icsflow.workflow.errors import ValidationError
from icsflow.workflow.transfer.returns.records import (
    CONTINUES,
    LS_CODES,
    PN_CODES,
    REC_CODES,
    RNE_CODES,
    Episode,
    LacChild,
    LacReview,
    Period,
    ReturnProblem,
    Ssda903Return,
    Where,
    dmy,
    year_of,
)
from icsflow.workflow.transfer.table import RawRow, RawTable, read_table

FILES = ("header.csv", "episodes.csv", "reviews.csv")
COLUMNS = {"header.csv": ("CHILD", "DOB"),
           "episodes.csv": ("CHILD", "DECOM", "RNE", "LS", "DEC", "REC"),
           "reviews.csv": ("CHILD", "REVIEW", "REVIEW_CODE")}


class _Problems(list[ReturnProblem]):
    def in_file(self, name: str) -> set[str | None]:
        return {p.child for p in self if Path(p.source).name.lower() == name}

    def add(self, where: Where, message: str, child: str | None) -> None:
        self.append(ReturnProblem(where.source, where.line, message, child))


def find_files(folder: str | Path) -> dict[str, Path]:
    """The three files of ``folder`` by their lower-case names; ``ValidationError`` naming
    what is missing."""
    p = Path(folder)
    if not p.is_dir():
        raise ValidationError(f"{p}: not a folder: an SSDA903 extract is a folder holding "
                              f"{', '.join(FILES)}", field="file")
    found = {f.name.lower(): f for f in p.iterdir() if f.is_file()}
    missing = [name for name in FILES if name not in found]
    if missing:
        raise ValidationError(f"{p}: no {', '.join(missing)} (an SSDA903 extract holds "
                              f"{', '.join(FILES)}; names in any case)", field="file")
    return {name: found[name] for name in FILES}


def _table(path: Path, name: str) -> RawTable:
    table = read_table(path)
    upper = tuple(h.upper() for h in table.header)
    missing = [c for c in COLUMNS[name] if c not in upper]
    if missing:
        raise ValidationError(f"{path}:1: missing column(s) {', '.join(missing)} (the DfE "
                              f"layout of {name}: {', '.join(COLUMNS[name])}, ...)",
                              field="file")
    rows = tuple(RawRow(r.line, {k.upper(): v for k, v in r.cells.items()}) for r in table.rows)
    return RawTable(table.source, upper, rows)


def _cell(row: RawRow, column: str) -> str:
    value = row.cells.get(column)
    return "" if value is None else str(value).strip()


def _date(row: RawRow, column: str, where: Where, child: str, problems: _Problems, *,
          required: bool) -> tuple[bool, date | None]:
    text = _cell(row, column)
    if not text:
        if required:
            problems.add(where, f"{column} is missing", child)
        return not required, None
    try:
        return True, dmy(text)
    except ValueError as exc:
        problems.add(where, f"{column} {exc}", child)
        return False, None


def read_ssda903(folder: str | Path) -> Ssda903Return:
    """Parse the extract in ``folder``: records for every usable child, problems for the
    rest (file-level faults, a missing file or column, raise ``ValidationError``)."""
    files = find_files(folder)
    tables = {name: _table(path, name) for name, path in files.items()}
    problems = _Problems()
    dobs = _headers(tables["header.csv"], problems)
    episodes = _episodes(tables["episodes.csv"], problems)
    reviews = _reviews(tables["reviews.csv"], problems)
    children: dict[str, LacChild] = {}
    broken = problems.in_file("episodes.csv")
    for child in sorted(set(episodes) | set(reviews)):
        dob, where = dobs.get(child, (None, None))
        if where is None:
            first = (episodes.get(child) or reviews[child])[0].where
            problems.add(first, f"child {child} has no row in header.csv (its DOB)", child)
        # a child with an unreadable episode is skipped whole: no chain is guessed around it
        periods = [] if child in broken else _periods(child, episodes.get(child, []), problems)
        periods = _place_reviews(child, periods, reviews.get(child, []), problems)
        children[child] = LacChild(child, dob, where, tuple(periods))
    dates = [r.held_on for rs in reviews.values() for r in rs]
    span = (year_of(min(dates))[0], year_of(max(dates))[1]) if dates else None
    return Ssda903Return(str(folder), children, tuple(problems), span,
                         rows=sum(len(t.rows) for t in tables.values()))


def read_dobs(path: str | Path) -> dict[str, date]:
    """The children's DOBs from a council's header.csv (for exports whose review cases do not
    record one); any unusable row refuses the file, every one named."""
    problems = _Problems()
    found = _headers(_table(Path(path), "header.csv"), problems)
    if problems:
        raise ValidationError("\n".join(str(p) for p in problems), field="header")
    return {child: dob for child, (dob, _where) in found.items() if dob is not None}


def _headers(table: RawTable, problems: _Problems) -> dict[str, tuple[date | None, Where]]:
    found: dict[str, tuple[date | None, Where]] = {}
    for row in table.rows:
        where = Where(table.source, row.line)
        child = _cell(row, "CHILD")
        if not child:
            problems.add(where, "CHILD is empty", None)
            continue
        ok, dob = _date(row, "DOB", where, child, problems, required=True)
        if not ok:
            continue
        if child in found:
            first, at = found[child]
            if first != dob:
                problems.add(where, f"DOB {_show(dob)} differs from {_show(first)} at line "
                             f"{at.line} (changed between extracts?)", child)
            continue
        found[child] = (dob, where)
    return found


def _show(day: date | None) -> str:
    return day.strftime("%d/%m/%Y") if day else "(none)"


def _codes(row: RawRow, where: Where, child: str, problems: _Problems) -> bool:
    ok = True
    for column, allowed in (("RNE", RNE_CODES), ("LS", LS_CODES)):
        value = _cell(row, column).upper()
        if value not in allowed:
            problems.add(where, f"{column} {value or '(empty)'} is not a DfE code (one of "
                         f"{', '.join(allowed)})", child)
            ok = False
    return ok


def _episodes(table: RawTable, problems: _Problems) -> dict[str, list[Episode]]:
    found: dict[tuple[str, date], Episode] = {}
    for row in table.rows:
        where = Where(table.source, row.line)
        child = _cell(row, "CHILD")
        if not child:
            problems.add(where, "CHILD is empty", None)
            continue
        ok1, decom = _date(row, "DECOM", where, child, problems, required=True)
        ok2, dec = _date(row, "DEC", where, child, problems, required=False)
        ok3 = _codes(row, where, child, problems)
        rec = _cell(row, "REC").upper() or None
        if dec is not None and rec is None:
            problems.add(where, "DEC is given but REC (the reason the episode ceased) is "
                         "missing (DfE rule 148)", child)
            continue
        if dec is None and rec is not None:
            problems.add(where, f"REC {rec} is given but DEC (the day the episode ceased) "
                         "is missing (DfE rule 148)", child)
            continue
        if rec is not None and rec not in REC_CODES:
            problems.add(where, f"REC {rec} is not a DfE reason an episode ceased (DfE rule "
                         "149)", child)
            continue
        if not (ok1 and ok2 and ok3) or decom is None:
            continue
        if dec is not None and dec < decom:
            problems.add(where, f"DEC {_show(dec)} is before DECOM {_show(decom)}", child)
            continue
        episode = Episode(child, decom, _cell(row, "RNE").upper(), _cell(row, "LS").upper(),
                          _cell(row, "PLACE").upper(), dec, rec, where,
                          _cell(row, "REASON_PLACE_CHANGE").upper())
        _collapse(found, (child, decom), episode, problems, _episode_differs)
    by_child: dict[str, list[Episode]] = {}
    for episode in found.values():
        by_child.setdefault(episode.child, []).append(episode)
    return {c: sorted(eps, key=lambda e: e.decom) for c, eps in by_child.items()}


def _episode_differs(first: Episode, later: Episode) -> tuple[Episode | None, str]:
    """The merged episode, or None and what changed between the two rows."""
    for name in ("rne", "ls", "place"):
        if getattr(first, name) != getattr(later, name):
            return None, (f"{name.upper()} {getattr(later, name)} differs from "
                          f"{getattr(first, name)}")
    if first.dec is None or later.dec is None:  # an open episode closed by a later year
        closed = first if first.dec is not None else later
        return replace(first, dec=closed.dec, rec=closed.rec), ""
    if (first.dec, first.rec) != (later.dec, later.rec):
        return None, (f"DEC/REC {_show(later.dec)} {later.rec} differ from {_show(first.dec)} "
                      f"{first.rec}")
    return first, ""


def _collapse(found: dict[tuple[str, date], Episode], key: tuple[str, date], episode: Episode,
              problems: _Problems,
              merge: Callable[[Episode, Episode], tuple[Episode | None, str]]) -> None:
    first = found.get(key)
    if first is None:
        found[key] = episode
        return
    merged, why = merge(first, episode)
    if merged is None:
        problems.add(episode.where, f"the episode from {_show(episode.decom)} is also at line "
                     f"{first.where.line}: {why} (changed between extracts?)", episode.child)
    else:
        found[key] = merged


def _reviews(table: RawTable, problems: _Problems) -> dict[str, list[LacReview]]:
    found: dict[tuple[str, date], LacReview] = {}
    for row in table.rows:
        where = Where(table.source, row.line)
        child = _cell(row, "CHILD")
        if not child:
            problems.add(where, "CHILD is empty", None)
            continue
        ok, held = _date(row, "REVIEW", where, child, problems, required=True)
        code = _cell(row, "REVIEW_CODE").upper()
        if code not in PN_CODES:
            problems.add(where, f"REVIEW_CODE {code or '(empty)'} is not a participation code "
                         f"({PN_CODES[0]}-{PN_CODES[-1]})", child)
            ok = False
        if not ok or held is None:
            continue
        review = LacReview(child, held, code, where)
        first = found.get((child, held))
        if first is None:
            found[(child, held)] = review
        elif first.code != code:
            problems.add(where, f"the review of {_show(held)} is also at line "
                         f"{first.where.line} with {first.code}, here {code} (changed between "
                         "extracts?)", child)
    by_child: dict[str, list[LacReview]] = {}
    for review in found.values():
        by_child.setdefault(review.child, []).append(review)
    return {c: sorted(rs, key=lambda r: r.held_on) for c, rs in by_child.items()}


def _periods(child: str, episodes: list[Episode], problems: _Problems) -> list[Period]:
    """Chain the child's episodes into periods of care; a child with a broken chain gets a
    problem at the episode that breaks it (and no periods: it is skipped whole anyway)."""
    periods: list[list[Episode]] = []
    before = len(problems)
    for i, episode in enumerate(episodes):
        prev = episodes[i - 1] if i else None
        if prev is not None and prev.dec is None:
            problems.add(episode.where, f"starts on {_show(episode.decom)} while the episode "
                         f"from {_show(prev.decom)} (line {prev.where.line}) has no DEC: "
                         "episodes overlap", child)
            continue
        if prev is not None and prev.dec is not None and episode.decom < prev.dec:
            problems.add(episode.where, f"starts on {_show(episode.decom)}, before the episode "
                         f"from {_show(prev.decom)} (line {prev.where.line}) ended on "
                         f"{_show(prev.dec)}: episodes overlap", child)
            continue
        continues = prev is not None and prev.rec == CONTINUES
        if prev is None:
            periods.append([episode])
        elif continues and episode.rne == "S":
            problems.add(episode.where, f"RNE S starts a new period, but the episode before "
                         f"(line {prev.where.line}) continued (REC X1)", child)
        elif continues and episode.decom != prev.dec:
            problems.add(episode.where, f"DECOM {_show(episode.decom)} should be "
                         f"{_show(prev.dec)}: the episode before (line {prev.where.line}) "
                         "continued (REC X1) into one beginning that day", child)
        elif not continues and episode.rne != "S":
            problems.add(episode.where, f"RNE {episode.rne} continues a period, but the episode "
                         f"before (line {prev.where.line}) ended it (REC {prev.rec}): a new "
                         "period starts with RNE S", child)
        elif continues:
            periods[-1].append(episode)
        else:
            periods.append([episode])
    if episodes and episodes[-1].rec == CONTINUES:
        last = episodes[-1]
        problems.add(last.where, f"REC X1 says another episode begins on {_show(last.dec)}, "
                     "but none does", child)
    if len(problems) > before:
        return []
    return [Period(child, eps[0].decom, _end(eps), tuple(eps), opened=eps[0].rne == "S")
            for eps in periods]


def _end(episodes: Iterable[Episode]) -> date | None:
    *_, last = episodes
    return last.dec if last.rec != CONTINUES else None


def _place_reviews(child: str, periods: list[Period], reviews: list[LacReview],
                   problems: _Problems) -> list[Period]:
    placed: dict[int, list[LacReview]] = {}
    for review in reviews:
        index = next((i for i, p in enumerate(periods) if p.start <= review.held_on
                      and (p.end is None or review.held_on <= p.end)), None)
        if index is None:
            if periods or not any(p.child == child for p in problems):
                problems.add(review.where, f"the review of {_show(review.held_on)} falls in "
                             "no period of care of the child in episodes.csv", child)
            continue
        if periods[index].short_breaks:
            problems.add(review.where, f"the review of {_show(review.held_on)} falls in a "
                         "period of short breaks (LS V3/V4): the return holds no reviews for "
                         "them (DfE rule 399)", child)
            continue
        placed.setdefault(index, []).append(review)
    return [replace(p, reviews=tuple(placed.get(i, ()))) for i, p in enumerate(periods)]


__all__ = ["read_ssda903", "read_dobs", "find_files", "FILES"]
