"""A county's statutory returns, made up, for tests and ``bench/returns.py``: a four-year
SSDA903 extract (one folder: header.csv, episodes.csv, reviews.csv, each year's rows one after
the other, as a multi-year extract repeats a child open across 31 March) and one CIN census
file per year, with part of the census children also looked after so that dual status arises.

Deterministic for a seed. The files are what a case-management system would report: episodes
chained by REC X1, reviews roughly on the statutory cadence (some late), PN codes that fit the
child's age, conferences on working days (some out of timescale), plans ending at a review
conference or otherwise, enquiries that needed no conference. Nothing here knows icsflow's
processes: the tests compute the year's figures from these files on their own.
"""

from __future__ import annotations

import csv
import random
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.timeline import birthday
from icsflow.workflow.transfer.returns.records import to_dmy

FIRST_YEAR = 2009
YEARS = 4  # 2009-10 .. 2012-13
LS_LONG = ("C2", "C1", "E1", "V2", "J2")
REC_ENDS = ("E4A", "E13", "E11", "E12", "E2", "E41", "E8")


@dataclass
class _Episode:
    decom: date
    rne: str
    ls: str
    place: str
    dec: date | None = None
    rec: str | None = None


@dataclass
class _Lac:
    child: str
    dob: date
    episodes: list[_Episode] = field(default_factory=list)
    reviews: list[tuple[date, str]] = field(default_factory=list)


@dataclass
class _Enquiry:
    start: date
    icpc: date | None
    not_required: bool
    referral: date
    plan_end: date | None = None
    plan_reviews: list[date] = field(default_factory=list)
    plan: bool = False


@dataclass
class County:
    """Where the returns were written."""

    ssda903: Path
    censuses: list[Path]
    lac_children: int
    cin_children: int


def _day(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randrange(max(1, (last - first).days + 1)))


def _working(cal: WorkingCalendar, day: date) -> date:
    while not cal.is_working_day(day):
        day += timedelta(days=1)
    return day


def _code(dob: date, held: date, rng: random.Random) -> str:
    four = date(dob.year + 4, dob.month, min(dob.day, 28))
    return "PN0" if held <= four else rng.choice(("PN1", "PN2", "PN3", "PN4", "PN5", "PN6",
                                                  "PN7"))


def _lac_child(n: int, rng: random.Random, first: date, last: date,
               cal: WorkingCalendar) -> _Lac:
    """A child's periods of care; none goes past the 18th birthday, the day a child stops
    being looked after (the period then ends on it)."""
    child = _Lac(f"{100000 + n}", _day(rng, first - timedelta(days=17 * 365), first))
    adult = birthday(child.dob, 18)
    start = _day(rng, first, last - timedelta(days=40))
    short = rng.random() < 0.03
    while start < last - timedelta(days=20) and start < adult - timedelta(days=30):
        end = start + timedelta(days=rng.randint(120, 1400)) if rng.random() < 0.55 else None
        if end is not None and end > last:
            end = None
        if adult <= last and (end is None or end > adult):
            end = adult
        _period(child, rng, start, end, short, cal, last)
        if end is None or end == adult:
            break
        start = end + timedelta(days=rng.randint(30, 300))
    return child


def _period(child: _Lac, rng: random.Random, start: date, end: date | None, short: bool,
            cal: WorkingCalendar, last: date) -> None:
    ls = "V4" if short else rng.choice(LS_LONG)
    episode = _Episode(start, "S", ls, rng.choice(("U1", "U3", "U4", "R1", "H5")))
    child.episodes.append(episode)
    stop = end or last
    change = start + timedelta(days=rng.randint(60, 400))
    while not short and change < stop:
        rne = rng.choice(("P", "P", "L", "T"))
        episode.dec, episode.rec = change, "X1"
        ls = rng.choice(LS_LONG) if rne in ("L", "T") else ls
        episode = _Episode(change, rne, ls, rng.choice(("U1", "U3", "U4", "R1", "H5")))
        child.episodes.append(episode)
        change += timedelta(days=rng.randint(60, 400))
    if end is not None:
        episode.dec, episode.rec = end, rng.choice(REC_ENDS)
    if short:
        return
    held = cal.add_working_days(start, rng.choice((10, 14, 18, 19, 20, 20, 23)))
    gaps = [(60, 100)] + [(150, 195)] * 20
    for low, high in gaps:
        if held > stop or held >= birthday(child.dob, 18):
            break
        child.reviews.append((held, _code(child.dob, held, rng)))
        held = _working(cal, held + timedelta(days=rng.randint(low, high)))


def _enquiries(rng: random.Random, first: date, last: date, cal: WorkingCalendar,
               near: tuple[date, date | None] | None) -> list[_Enquiry]:
    found: list[_Enquiry] = []
    if near is not None and rng.random() < 0.7:  # while looked after: dual status
        until = near[1] or last
        start = _working(cal, _day(rng, near[0], min(until, last - timedelta(days=30))))
    else:
        start = _working(cal, _day(rng, first, last - timedelta(days=30)))
    while start <= last:
        referral = start - timedelta(days=rng.randint(0, 20))
        if rng.random() < 0.12:
            found.append(_Enquiry(start, None, True, referral))
            start = _working(cal, start + timedelta(days=rng.randint(60, 400)))
            continue
        icpc = cal.add_working_days(start, rng.choice((8, 10, 12, 14, 15, 15, 17, 21)))
        enquiry = _Enquiry(start, icpc if icpc <= last else None, False, referral)
        found.append(enquiry)
        if icpc > last:
            break
        after: date | None = icpc
        if rng.random() < 0.85:
            enquiry.plan = True
            after = _plan(enquiry, rng, icpc, cal, last)
        if after is None or after >= last:
            break
        start = _working(cal, after + timedelta(days=rng.randint(40, 500)))
    return found


def _plan(enquiry: _Enquiry, rng: random.Random, start: date, cal: WorkingCalendar,
          last: date) -> date | None:
    held = _working(cal, start + timedelta(days=rng.randint(70, 100)))
    count = rng.randint(1, 5)
    while held <= last and len(enquiry.plan_reviews) < count:
        enquiry.plan_reviews.append(held)
        held = _working(cal, held + timedelta(days=rng.randint(150, 200)))
    way = rng.random()
    if len(enquiry.plan_reviews) == count and way < 0.7:
        enquiry.plan_end = enquiry.plan_reviews[-1]  # ended at the review conference
    elif way < 0.85:
        after = enquiry.plan_reviews[-1] if enquiry.plan_reviews else start
        end = after + timedelta(days=rng.randint(10, 60))
        enquiry.plan_end = end if end <= last else None
    return enquiry.plan_end


def generate_county(folder: str | Path, *, lac_children: int = 1500, cin_children: int = 600,
                    seed: int = 2012, dual_share: float = 0.4,
                    calendar: WorkingCalendar | None = None) -> County:
    """Write ``folder/ssda903/`` and ``folder/cin-census-YYYY.xml`` (one per year)."""
    rng = random.Random(seed)
    cal = calendar or WorkingCalendar()
    first, last = date(FIRST_YEAR, 4, 1), date(FIRST_YEAR + YEARS, 3, 31)
    lac = [_lac_child(n, rng, first, last, cal) for n in range(lac_children)]
    cared = [c for c in lac if c.episodes]  # a child 18 before the years has no period
    cin: dict[str, tuple[date, list[_Enquiry]]] = {}
    for n in range(cin_children):
        if n < cin_children * dual_share and n < len(cared):
            known = cared[rng.randrange(len(cared))]
            while known.child in cin and len(cin) < len(cared):
                known = cared[rng.randrange(len(cared))]
            period = (known.episodes[0].decom, _first_end(known))
            cin[known.child] = (known.dob, _enquiries(rng, first, last, cal, period))
        else:
            dob = _day(rng, first - timedelta(days=17 * 365), first)
            cin[f"C{200000 + n}"] = (dob, _enquiries(rng, first, last, cal, None))
    out = Path(folder)
    (out / "ssda903").mkdir(parents=True, exist_ok=True)
    _write_903(out / "ssda903", lac)
    censuses = [_write_census(out / f"cin-census-{FIRST_YEAR + y + 1}.xml", cin,
                              date(FIRST_YEAR + y, 4, 1), date(FIRST_YEAR + y + 1, 3, 31), cal)
                for y in range(YEARS)]
    return County(out / "ssda903", censuses, lac_children, len(cin))


def _first_end(child: _Lac) -> date | None:
    for e in child.episodes:
        if e.rec is not None and e.rec != "X1":
            return e.dec
    return None


def _write_903(folder: Path, children: list[_Lac]) -> None:
    header = [["CHILD", "SEX", "DOB", "ETHNIC", "UPN", "MOTHER", "MC_DOB"]]
    episodes = [["CHILD", "DECOM", "RNE", "LS", "CIN", "PLACE", "PLACE_PROVIDER", "DEC", "REC",
                 "REASON_PLACE_CHANGE", "HOME_POST", "PL_POST", "URN"]]
    reviews = [["CHILD", "DOB", "REVIEW", "REVIEW_CODE"]]
    for y in range(YEARS):
        start, end = date(FIRST_YEAR + y, 4, 1), date(FIRST_YEAR + y + 1, 3, 31)
        for c in children:
            mine = [e for e in c.episodes if e.decom <= end and (e.dec is None or e.dec >= start)]
            if not mine:
                continue
            header.append([c.child, "1", to_dmy(c.dob), "WBRI", "", "", ""])
            for e in mine:
                closed = e.dec is not None and e.dec <= end
                episodes.append([c.child, to_dmy(e.decom), e.rne, e.ls, "N1", e.place, "PR1",
                                 to_dmy(e.dec) if closed and e.dec else "",
                                 e.rec if closed and e.rec else "",
                                 "CARPL" if e.rne in ("P", "T") else "", "", "", ""])
            reviews += [[c.child, to_dmy(c.dob), to_dmy(d), code] for d, code in c.reviews
                        if start <= d <= end]
    for name, rows in (("header.csv", header), ("episodes.csv", episodes),
                       ("reviews.csv", reviews)):
        with (folder / name).open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows(rows)


def _put(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, tag).text = text


def _write_census(path: Path, children: dict[str, tuple[date, list[_Enquiry]]], start: date,
                  end: date, cal: WorkingCalendar) -> Path:
    root = ET.Element("Message")
    details = ET.SubElement(ET.SubElement(root, "Header"), "CollectionDetails")
    _put(details, "Collection", "CIN")
    _put(details, "Year", str(end.year))
    _put(details, "ReferenceDate", end.isoformat())
    people = ET.SubElement(root, "Children")
    for child, (dob, enquiries) in children.items():
        blocks = [b for b in (_block(e, start, end, cal) for e in enquiries) if b is not None]
        if not blocks:
            continue
        node = ET.SubElement(people, "Child")
        ids = ET.SubElement(node, "ChildIdentifiers")
        _put(ids, "LAchildID", child)
        _put(ids, "PersonBirthDate", dob.isoformat())
        _put(ET.SubElement(node, "ChildCharacteristics"), "Ethnicity", "WBRI")
        node.extend(blocks)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def _block(e: _Enquiry, start: date, end: date, cal: WorkingCalendar) -> ET.Element | None:
    """One enquiry's CINdetails as the census of [start, end] holds it, or None."""
    block = ET.Element("CINdetails")
    _put(block, "CINreferralDate", e.referral.isoformat())
    icpc = e.icpc if e.icpc is not None and e.icpc <= end else None
    if (icpc is not None and icpc >= start) or (icpc is None and start <= e.start <= end):
        s47 = ET.SubElement(block, "Section47")
        _put(s47, "S47ActualStartDate", e.start.isoformat())
        _put(s47, "InitialCPCtarget", cal.add_working_days(e.start, 15).isoformat())
        if icpc is not None:
            _put(s47, "DateOfInitialCPC", icpc.isoformat())
        _put(s47, "ICPCnotRequired", "1" if e.not_required else "0")
    if e.plan and e.icpc is not None and e.icpc <= end and (
            e.plan_end is None or e.plan_end >= start):
        plan = ET.SubElement(block, "ChildProtectionPlans")
        _put(plan, "CPPstartDate", e.icpc.isoformat())
        if e.plan_end is not None and e.plan_end <= end:
            _put(plan, "CPPendDate", e.plan_end.isoformat())
        for held in e.plan_reviews:
            if start <= held <= end:
                _put(ET.SubElement(plan, "Reviews"), "CPPreviewDate", held.isoformat())
    return block if len(block) > 1 else None


__all__ = ["generate_county", "County"]
