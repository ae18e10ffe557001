"""``icsflow export DIR --format ssda903 --year 2012-13`` and ``icsflow export FILE.xml
--format cin-census --year 2012-13``: what icsflow holds, as the parts of the two returns the
Independent Chair Service owns, in the DfE's layouts, holding only what the collection year
holds (so the DfE's rules on those modules pass: see docs/returns.md).

- SSDA903 ``reviews.csv``: CHILD, DOB, REVIEW, REVIEW_CODE for every looked-after review held
  1 April to 31 March (short-break periods have none). DOB is the review case's
  ``date_of_birth`` where its definition has that field, else the council's ``header.csv``
  (``--header``); a child with neither is refused by name, never written with a blank DOB.
- CIN census child protection module: per enquiry, ``Section47`` (``InitialCPCtarget`` = S47
  start + 15 working days on the configured calendar) when its conference was held in the year,
  or when it started in the year with no conference held by 31 March; ``ChildProtectionPlans``
  open at any time in the year with ``CPPendDate`` only when it ended in the year, and the
  review conferences held in the year. Each case is one ``CINdetails`` block, to be merged into
  the council's census (which holds the referrals, assessments and children's details).
"""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from icsflow.workflow.data import stored_date
from icsflow.workflow.engine import Engine
from icsflow.workflow.errors import ValidationError
from icsflow.workflow.transfer.returns.held import HeldConference, read_held
from icsflow.workflow.transfer.returns.records import financial_year, to_dmy
from icsflow.workflow.transfer.returns.ssda903 import read_dobs

SOFTWARE = "icsflow"


@dataclass(frozen=True)
class Exported:
    path: str
    rows: int
    children: int
    child_ids: tuple[str, ...] = ()  # whose data went out (the audit names them)


def export_ssda903(engine: Engine, folder: str | Path, year: str, *,
                   header: str | Path | None = None) -> Exported:
    """Write ``folder/reviews.csv`` for the collection year ``year`` ('2012-13')."""
    first, last = financial_year(year)
    dobs = read_dobs(header) if header is not None else {}
    held = read_held(engine)
    rows: list[tuple[str, date, str]] = []
    missing: list[str] = []
    born: dict[str, date] = {}
    for child, periods in held.periods.items():
        for period in periods:
            if period.short_breaks:
                continue
            for held_on, code in period.reviews:
                if not first <= held_on <= last:
                    continue
                dob = stored_date(period.data.get("date_of_birth")) or dobs.get(child)
                if dob is None:
                    missing.append(child)
                    continue
                born[child] = dob
                rows.append((child, held_on, code or ""))
    if missing:
        names = sorted(set(missing))
        raise ValidationError(
            f"no date of birth for {len(names)} child(ren) with reviews in {year} (first: "
            f"{', '.join(names[:5])}): the review cases' definition has no date_of_birth "
            "field, so give the council's header.csv with --header", field="header")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "reviews.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["CHILD", "DOB", "REVIEW", "REVIEW_CODE"])
        for child, held_on, code in sorted(rows):
            writer.writerow([child, to_dmy(born[child]), to_dmy(held_on), code])
    ids = tuple(dict.fromkeys(r[0] for r in rows))
    return Exported(str(path), len(rows), len(ids), ids)


def export_cin_census(engine: Engine, path: str | Path, year: str, *,
                      lea: str | None = None) -> Exported:
    """Write the child protection module of the census for ``year`` to ``path``."""
    first, last = financial_year(year)
    held = read_held(engine)
    root = ET.Element("Message")
    _header(root, engine, last, lea)
    children = ET.SubElement(root, "Children")
    blocks = 0
    written: list[str] = []
    for child in sorted(held.conferences):
        details = [d for d in (_details(engine, c, first, last)
                               for c in held.conferences[child]) if d is not None]
        if not details:
            continue
        node = ET.SubElement(children, "Child")
        ids = ET.SubElement(node, "ChildIdentifiers")
        ET.SubElement(ids, "LAchildID").text = child
        ET.SubElement(node, "ChildCharacteristics")  # the council's census holds them
        node.extend(details)
        blocks += len(details)
        written.append(child)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return Exported(str(path), blocks, len(written), tuple(written))


def _header(root: ET.Element, engine: Engine, last: date, lea: str | None) -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("icsflow")
    except PackageNotFoundError:
        release = "0"
    header = ET.SubElement(root, "Header")
    details = ET.SubElement(header, "CollectionDetails")
    _put(details, [("Collection", "CIN"), ("Year", str(last.year)),
                   ("ReferenceDate", last.isoformat())])
    source = ET.SubElement(header, "Source")
    now = engine.clock.now().astimezone(engine.calendar.tz).replace(microsecond=0, tzinfo=None)
    _put(source, [("SourceLevel", "L"), ("LEA", lea or ""), ("SoftwareCode", SOFTWARE),
                  ("Release", release), ("SerialNo", "1"), ("DateTime", now.isoformat())])


def _put(parent: ET.Element, items: Sequence[tuple[str, str]]) -> None:
    for tag, text in items:
        ET.SubElement(parent, tag).text = text


def _details(engine: Engine, case: HeldConference, first: date,
             last: date) -> ET.Element | None:
    """One case's CINdetails for the year, or None when the year holds nothing of it."""
    block = ET.Element("CINdetails")
    icpc = case.icpc if case.icpc is not None and case.icpc <= last else None
    if case.enquiry_in(first, last):
        s47 = ET.SubElement(block, "Section47")
        target = engine.calendar.add_working_days(case.enquiry, 15)
        items = [("S47ActualStartDate", case.enquiry.isoformat()),
                 ("InitialCPCtarget", target.isoformat())]
        if icpc is not None:
            items.append(("DateOfInitialCPC", icpc.isoformat()))
        not_needed = icpc is None and case.closed and case.icpc is None
        items.append(("ICPCnotRequired", "1" if not_needed else "0"))
        _put(s47, items)
    start = case.plan_start
    if start is not None and case.plan_in(first, last):
        plan = ET.SubElement(block, "ChildProtectionPlans")
        items = [("CPPstartDate", start.isoformat())]
        if case.plan_end is not None and case.plan_end <= last:
            items.append(("CPPendDate", case.plan_end.isoformat()))
        _put(plan, items)
        for held_on in case.reviews:
            if first <= held_on <= last:
                review = ET.SubElement(plan, "Reviews")
                ET.SubElement(review, "CPPreviewDate").text = held_on.isoformat()
    return block if len(block) else None


__all__ = ["export_ssda903", "export_cin_census", "Exported"]
