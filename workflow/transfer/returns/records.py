"""The two statutory returns as typed, frozen records, each carrying where it came from.

A record is what a return says about one child, after the parser has checked every cell and
collapsed the duplicates a multi-year extract carries; a ``ReturnProblem`` is a row (or XML
element) icsflow cannot use, named ``FILE:LINE: reason`` and tied to its child so that
``--skip-invalid`` can leave that child out whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from icsflow.workflow.transfer.rows import Problem

PN_CODES = ("PN0", "PN1", "PN2", "PN3", "PN4", "PN5", "PN6", "PN7")
# SSDA903 reason for new episode: S a new period of care; P placement change; L legal status
# change; T both; B and U the changes the DfE added later (placement with the same carer, both).
RNE_CODES = ("S", "P", "L", "T", "B", "U")
RNE_WORDS = {"S": "started to be looked after", "P": "change of placement",
             "L": "change of legal status", "T": "change of placement and legal status",
             "B": "change of placement and legal status (same carer)",
             "U": "change of placement and legal status (both)"}
LS_CODES = ("C1", "C2", "D1", "E1", "J1", "J2", "J3", "L1", "L2", "L3", "V2", "V3", "V4")
SHORT_BREAK_LS = ("V3", "V4")
# REC, the reason an episode ceased (DfE rule 149's list); X1: the next episode continues.
REC_CODES = ("E11", "E12", "E2", "E3", "E4A", "E4B", "E13", "E41", "E45", "E46", "E47", "E48",
             "E5", "E6", "E7", "E8", "E9", "E14", "E15", "E16", "E17", "X1")
CONTINUES = "X1"  # REC: the episode ends and the next one begins the same day

_DMY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


@dataclass(frozen=True)
class ReturnProblem(Problem):
    """An unusable row of a return: ``FILE:LINE: reason``, and the child it belongs to."""

    child: str | None = None


@dataclass(frozen=True)
class Where:
    """The file and line a fact came from (for XML, the element's line)."""

    source: str
    line: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line}"


@dataclass(frozen=True)
class Notice:
    """Something a return says that icsflow holds differently and the import leaves alone
    (a date or code changed between extracts): reported, never applied twice."""

    where: Where
    child: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: child {self.child}: {self.message}"


def dmy(text: str) -> date:
    """A 903 date, ``dd/mm/yyyy``; ``ValueError`` names what is wrong (31/02/2013)."""
    m = _DMY.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a date in the DfE form dd/mm/yyyy")
    try:
        return date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
    except ValueError:
        raise ValueError(f"{text!r} is not a real date") from None


def iso(text: str) -> date:
    """A census date, ``yyyy-mm-dd`` (an xs:date, no time)."""
    m = _ISO.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a date in the form yyyy-mm-dd")
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise ValueError(f"{text!r} is not a real date") from None


def to_dmy(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def financial_year(text: str) -> tuple[date, date]:
    """``2012-13`` -> (2012-04-01, 2013-03-31); ``ValueError`` otherwise."""
    m = re.match(r"^(\d{4})-(\d{2})$", text.strip())
    if not m or (int(m.group(1)) + 1) % 100 != int(m.group(2)):
        raise ValueError(f"{text!r} is not a collection year like 2012-13")
    first = int(m.group(1))
    return date(first, 4, 1), date(first + 1, 3, 31)


def year_of(day: date) -> tuple[date, date]:
    """The financial (collection) year holding ``day``."""
    first = day.year if day.month >= 4 else day.year - 1
    return date(first, 4, 1), date(first + 1, 3, 31)


# -- SSDA903 --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Episode:
    """One row of episodes.csv: a placement and legal status from DECOM to DEC."""

    child: str
    decom: date
    rne: str
    ls: str
    place: str
    dec: date | None
    rec: str | None
    where: Where
    reason_place_change: str = ""

    @property
    def short_break(self) -> bool:
        return self.ls in SHORT_BREAK_LS

    def describe(self) -> str:
        """One timeline line: what changed, the legal status and the placement."""
        words = RNE_WORDS.get(self.rne, self.rne)
        place = f", placement {self.place}" if self.place else ""
        why = f" ({self.reason_place_change})" if self.reason_place_change else ""
        return (f"SSDA903 episode {self.decom.isoformat()}: RNE {self.rne} {words}{why}, "
                f"legal status {self.ls}{place}")


@dataclass(frozen=True)
class LacReview:
    """One row of reviews.csv: a looked-after review held, with the child's participation."""

    child: str
    held_on: date
    code: str
    where: Where


@dataclass(frozen=True)
class Period:
    """A period of care: from an episode with RNE S to the DEC of its last episode whose REC is
    not X1 (``end`` None: still looked after). ``opened`` is False when the extract does not
    hold the episode that began it (an earlier year's)."""

    child: str
    start: date
    end: date | None
    episodes: tuple[Episode, ...]
    reviews: tuple[LacReview, ...] = ()
    opened: bool = True

    @property
    def short_breaks(self) -> bool:
        return all(e.short_break for e in self.episodes)

    @property
    def last(self) -> Episode:
        return self.episodes[-1]


@dataclass(frozen=True)
class LacChild:
    """Everything the 903 says about one child."""

    child: str
    dob: date | None
    where: Where | None
    periods: tuple[Period, ...]


@dataclass(frozen=True)
class Ssda903Return:
    """A parsed 903 extract (one or several collection years)."""

    source: str
    children: dict[str, LacChild]
    problems: tuple[ReturnProblem, ...]
    review_years: tuple[date, date] | None  # the collection years reviews.csv spans
    rows: int = 0
    ignored: tuple[Notice, ...] = ()


# -- CIN census ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Section47:
    """A Section 47 enquiry: it opens the initial-conference clock."""

    child: str
    start: date
    icpc: date | None
    not_required: bool
    where: Where
    cin: int = 1  # which CINdetails of the child (1-based, in file order)


@dataclass(frozen=True)
class CpReview:
    child: str
    held_on: date
    where: Where


@dataclass(frozen=True)
class Plan:
    """A child protection plan: made at the initial conference on ``start``."""

    child: str
    start: date
    end: date | None
    reviews: tuple[CpReview, ...]
    where: Where
    cin: int = 1
    icpc: Section47 | None = None  # the enquiry whose conference made it (same day)


@dataclass(frozen=True)
class CinChild:
    """Everything the census says about one child's enquiries and plans."""

    child: str
    dob: date | None
    where: Where
    enquiries: tuple[Section47, ...]
    plans: tuple[Plan, ...]


@dataclass(frozen=True)
class CinReturn:
    """A parsed census file: its reference date (31 March) and its children."""

    source: str
    reference_date: date | None
    children: dict[str, CinChild]
    problems: tuple[ReturnProblem, ...]
    rows: int = 0
    ignored: tuple[Notice, ...] = ()
    since: date | None = None  # several censuses merged: the first one's first day

    @property
    def year(self) -> tuple[date, date] | None:
        """The days the census covers (its collection year, or the years merged)."""
        if self.reference_date is None:
            return None
        return (self.since or year_of(self.reference_date)[0], self.reference_date)


__all__ = ["ReturnProblem", "Where", "Episode", "LacReview", "Period", "LacChild",
           "Ssda903Return", "Section47", "CpReview", "Plan", "CinChild", "CinReturn", "Notice",
           "dmy", "iso", "to_dmy", "financial_year", "year_of", "PN_CODES", "RNE_CODES",
           "LS_CODES", "REC_CODES", "SHORT_BREAK_LS", "CONTINUES"]
