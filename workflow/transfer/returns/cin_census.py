"""Read a CIN census XML file: each child's Section 47 enquiries and child protection plans.

The file is read with the standard library's expat parser into a small tree that keeps every
element's line, so each problem names ``FILE:LINE`` of its element. A census has no use for a
document type declaration, so any ``<!DOCTYPE`` or entity declaration is refused before it is
expanded: entity-expansion attacks (the "billion laughs", external entities) never run.
Namespaces are ignored (a default ``xmlns`` is fine). Structure read (the DfE's, CIN census
2012-13 onwards):

    Message/Header/CollectionDetails/ReferenceDate
    Message/Children/Child/ChildIdentifiers/LAchildID, PersonBirthDate
    Child/CINdetails/Section47/S47ActualStartDate, InitialCPCtarget, DateOfInitialCPC,
                               ICPCnotRequired
    Child/CINdetails/ChildProtectionPlans/CPPstartDate, CPPendDate, Reviews/CPPreviewDate
    Child/CINdetails/DateOfInitialCPC  (a conference whose enquiry is not in the file)

A plan is the plan made by the initial conference held on its start day in the same
CINdetails; a plan with no such conference in the file continues from an earlier census (the
import looks for it in icsflow). A conference with neither its enquiry nor a plan in the file,
and an enquiry that needed no conference, are reported as ignored (icsflow cannot open a
conference clock without the enquiry's start). Everything else in the file (referrals,
assessments, CIN plans, disabilities) is not icsflow's and is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from xml.parsers import expat

from icsflow.workflow.errors import ValidationError
from icsflow.workflow.transfer.returns.records import (
    CinChild,
    CinReturn,
    CpReview,
    Notice,
    Plan,
    ReturnProblem,
    Section47,
    Where,
    iso,
)

TRUE = ("1", "true")
FALSE = ("0", "false", "")


@dataclass
class Node:
    """An element: its tag (namespace dropped), line, text and children."""

    tag: str
    line: int
    text: str = ""
    children: list[Node] = field(default_factory=list)

    def find(self, tag: str) -> Node | None:
        return next((c for c in self.children if c.tag == tag), None)

    def findall(self, tag: str) -> list[Node]:
        return [c for c in self.children if c.tag == tag]

    def value(self, tag: str) -> str:
        found = self.find(tag)
        return found.text.strip() if found is not None else ""


class XmlRefused(ValidationError):
    """The file is not a census this reader will parse (malformed, or declares entities)."""


def parse_xml(path: str | Path) -> Node:
    """The document's root element; ``XmlRefused`` naming ``FILE:LINE`` and why."""
    p = Path(path)
    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[Node] = []
    roots: list[Node] = []

    def start(tag: str, _attrs: dict[str, str]) -> None:
        node = Node(tag.rsplit("}", 1)[-1], parser.CurrentLineNumber)
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)

    def end(_tag: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if stack:
            stack[-1].text += data

    def refuse(*_args: object) -> None:
        raise XmlRefused(f"{p}:{parser.CurrentLineNumber}: a document type or entity "
                         "declaration: a CIN census needs none, and entities are not expanded "
                         "(protection against entity-expansion attacks)", field="file")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse  # type: ignore[assignment]
    try:
        with p.open("rb") as fh:
            parser.ParseFile(fh)
    except expat.ExpatError as exc:
        raise XmlRefused(f"{p}:{exc.lineno}: not well-formed XML "
                         f"({expat.ErrorString(exc.code)})", field="file") from None
    except OSError as exc:
        raise XmlRefused(f"{p}: cannot be read ({exc.strerror})", field="file") from None
    if not roots:
        raise XmlRefused(f"{p}:1: no root element", field="file")
    return roots[0]


class _Reader:
    """Walks the tree, collecting records and problems."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[ReturnProblem] = []
        self.ignored: list[Notice] = []
        self.elements = 0

    def where(self, node: Node) -> Where:
        return Where(self.source, node.line)

    def problem(self, node: Node, message: str, child: str | None) -> None:
        self.problems.append(ReturnProblem(self.source, node.line, message, child))

    def day(self, node: Node, tag: str, child: str | None, *, required: bool = False,
            ) -> tuple[bool, date | None]:
        found = node.find(tag)
        text = found.text.strip() if found is not None else ""
        if not text:
            if required:
                self.problem(found or node, f"{tag} is missing", child)
            return not required, None
        try:
            return True, iso(text)
        except ValueError as exc:
            self.problem(found or node, f"{tag} {exc}", child)
            return False, None


def read_cin_census(path: str | Path) -> CinReturn:
    """Parse a census file: records for each child's enquiries and plans, problems for
    every element icsflow cannot use."""
    root = parse_xml(path)
    reader = _Reader(str(path))
    if root.tag != "Message":
        raise ValidationError(f"{path}:{root.line}: the root element is <{root.tag}>, not the "
                              "census's <Message>", field="file")
    reference = None
    header = root.find("Header")
    details = header.find("CollectionDetails") if header is not None else None
    if details is None or not details.value("ReferenceDate"):
        reader.problem(header or root, "Header/CollectionDetails/ReferenceDate is missing "
                       "(the census's 31 March)", None)
    else:
        _ok, reference = reader.day(details, "ReferenceDate", None)
    children: dict[str, CinChild] = {}
    people = root.find("Children")
    for node in people.findall("Child") if people is not None else []:
        reader.elements += 1
        found = _child(reader, node)
        if found is None:
            continue
        if found.child in children:
            reader.problem(node, f"child {found.child} appears twice in the file (first at line "
                           f"{children[found.child].where.line})", found.child)
            continue
        children[found.child] = found
    return CinReturn(str(path), reference, children, tuple(reader.problems), reader.elements,
                     tuple(reader.ignored))


def _child(reader: _Reader, node: Node) -> CinChild | None:
    ids = node.find("ChildIdentifiers")
    child = ids.value("LAchildID") if ids is not None else ""
    if not child:
        reader.problem(ids or node, "ChildIdentifiers/LAchildID is missing", None)
        return None
    _ok, dob = reader.day(ids, "PersonBirthDate", child) if ids is not None else (True, None)
    enquiries: list[Section47] = []
    plans: list[Plan] = []
    blocks = node.findall("CINdetails")
    for index, block in enumerate(blocks, start=1):
        _details(reader, child, block, index, enquiries, plans)
    if not blocks and node.findall("ChildProtectionPlans"):  # plans outside a CINdetails
        _details(reader, child, node, 1, enquiries, plans)
    _overlaps(reader, child, enquiries, plans)
    return CinChild(child, dob, reader.where(node), tuple(enquiries), tuple(plans))


def _details(reader: _Reader, child: str, block: Node, index: int,
             enquiries: list[Section47], plans: list[Plan]) -> None:
    mine: list[Section47] = []
    for node in block.findall("Section47"):
        found = _section47(reader, child, node, index)
        if found is not None and found not in mine:
            mine.append(found)
    conferences = {s.icpc: s for s in mine if s.icpc is not None}
    _ok, loose = reader.day(block, "DateOfInitialCPC", child)
    loose_node = block.find("DateOfInitialCPC")
    for node in block.findall("ChildProtectionPlans"):
        plan = _plan(reader, child, node, index)
        if plan is None:
            continue
        # No conference that day in the file: a plan continuing from an earlier census
        # (its conference was in an earlier year); the import finds it in icsflow or refuses.
        plans.append(Plan(plan.child, plan.start, plan.end, plan.reviews, plan.where, index,
                          conferences.get(plan.start)))
    if loose is not None and loose not in conferences and loose_node is not None and not any(
            p.start == loose for p in plans if p.cin == index):
        reader.ignored.append(Notice(reader.where(loose_node), child, f"ignored: the initial "
                                     f"conference on {loose.isoformat()} has no Section 47 "
                                     "enquiry in the file and made no plan in it: without the "
                                     "enquiry's start icsflow cannot open its timescale"))
    enquiries.extend(mine)


def _section47(reader: _Reader, child: str, node: Node, index: int) -> Section47 | None:
    ok1, start = reader.day(node, "S47ActualStartDate", child, required=True)
    ok2, icpc = reader.day(node, "DateOfInitialCPC", child)
    flag = node.value("ICPCnotRequired").lower()
    if flag not in TRUE + FALSE:
        reader.problem(node.find("ICPCnotRequired") or node, f"ICPCnotRequired {flag!r} is "
                       "not a yes/no value (true, false, 1, 0)", child)
        return None
    if not (ok1 and ok2) or start is None:
        return None
    not_required = flag in TRUE
    if not_required and icpc is None:
        reader.ignored.append(Notice(reader.where(node), child, f"ignored: the Section 47 "
                                     f"enquiry of {start.isoformat()} needed no initial "
                                     "conference (ICPCnotRequired)"))
    if icpc is not None and icpc < start:
        reader.problem(node, f"DateOfInitialCPC {icpc.isoformat()} is before "
                       f"S47ActualStartDate {start.isoformat()} (DfE rule 8615)", child)
        return None
    if icpc is not None and not_required:
        reader.problem(node, "ICPCnotRequired is true but DateOfInitialCPC is given", child)
        return None
    return Section47(child, start, icpc, not_required, reader.where(node), index)


def _plan(reader: _Reader, child: str, node: Node, index: int) -> Plan | None:
    ok1, start = reader.day(node, "CPPstartDate", child, required=True)
    ok2, end = reader.day(node, "CPPendDate", child)
    reviews: list[CpReview] = []
    ok3 = True
    for element in node.findall("Reviews"):
        ok, held = reader.day(element, "CPPreviewDate", child, required=True)
        ok3 = ok3 and ok
        if held is not None and all(r.held_on != held for r in reviews):
            reviews.append(CpReview(child, held, reader.where(element)))
    if not (ok1 and ok2 and ok3) or start is None:
        return None
    if end is not None and end <= start:
        rule = "8840" if end == start else "8925"
        reader.problem(node, f"CPPendDate {end.isoformat()} is not after CPPstartDate "
                       f"{start.isoformat()} (DfE rule {rule})", child)
        return None
    for review in reviews:
        if review.held_on <= start or (end is not None and review.held_on > end):
            reader.problem(_at(node, review), f"CPPreviewDate {review.held_on.isoformat()} is "
                           f"outside the plan {start.isoformat()} to "
                           f"{end.isoformat() if end else 'open'} (DfE rule 8841)", child)
            return None
    return Plan(child, start, end, tuple(sorted(reviews, key=lambda r: r.held_on)),
                reader.where(node), index)


def _at(node: Node, review: CpReview) -> Node:
    return next((r for r in node.findall("Reviews") if r.line == review.where.line), node)


def _overlaps(reader: _Reader, child: str, enquiries: list[Section47],
              plans: list[Plan]) -> None:
    """Two plans at once (rule 8940), or an enquiry starting while another still waits for
    its conference (rule 8890), cannot be two processes of one child."""
    ordered = sorted(plans, key=lambda p: p.start)
    for before, after in zip(ordered, ordered[1:], strict=False):
        if before.end is None or after.start < before.end:
            reader.problems.append(ReturnProblem(
                after.where.source, after.where.line, f"the plan starting "
                f"{after.start.isoformat()} overlaps the plan starting "
                f"{before.start.isoformat()} (line {before.where.line}) (DfE rule 8940)", child))
    waiting = sorted(enquiries, key=lambda s: s.start)
    for first, then in zip(waiting, waiting[1:], strict=False):
        open_until = first.icpc
        if not first.not_required and (open_until is None or then.start < open_until):
            reader.problems.append(ReturnProblem(
                then.where.source, then.where.line, f"the Section 47 enquiry starting "
                f"{then.start.isoformat()} starts while the one starting "
                f"{first.start.isoformat()} (line {first.where.line}) still waits for its "
                "conference (DfE rule 8890)", child))




def merge_censuses(returns: list[CinReturn]) -> CinReturn:
    """Several years' censuses as one: an enquiry or plan in two files is one (a later file
    adds the conference or the end an earlier one could not know yet); a date that differs
    between files is a problem on the later one. The merged census covers from the first
    year's 1 April to the last reference date."""
    ordered = sorted(returns, key=lambda r: r.reference_date or date.min)
    problems = [p for r in ordered for p in r.problems]
    enquiries: dict[tuple[str, date], Section47] = {}
    plans: dict[tuple[str, date], Plan] = {}
    first: dict[str, CinChild] = {}
    for ret in ordered:
        for child, record in ret.children.items():
            first.setdefault(child, record)
            for s in record.enquiries:
                _merge_enquiry(enquiries, s, problems)
            for p in record.plans:
                _merge_plan(plans, p, problems)
    children: dict[str, CinChild] = {}
    for child, record in first.items():
        mine = sorted((s for (c, _d), s in enquiries.items() if c == child),
                      key=lambda s: s.start)
        conferences = {s.icpc: s for s in mine if s.icpc is not None}
        owned = sorted((replace(p, icpc=p.icpc or conferences.get(p.start))
                        for (c, _d), p in plans.items() if c == child), key=lambda p: p.start)
        children[child] = CinChild(child, record.dob, record.where, tuple(mine), tuple(owned))
    last = ordered[-1]
    since = ordered[0].year[0] if ordered[0].year else None
    return CinReturn(", ".join(r.source for r in ordered), last.reference_date, children,
                     tuple(problems), sum(r.rows for r in ordered),
                     tuple(n for r in ordered for n in r.ignored), since)


def _merge_enquiry(found: dict[tuple[str, date], Section47], s: Section47,
                   problems: list[ReturnProblem]) -> None:
    key = (s.child, s.start)
    before = found.get(key)
    if before is None or before.icpc is None and not before.not_required:
        found[key] = s if before is None or s.icpc is not None or s.not_required else before
        return
    if (s.icpc is not None or s.not_required) and (s.icpc, s.not_required) != (
            before.icpc, before.not_required):
        problems.append(ReturnProblem(s.where.source, s.where.line, f"the Section 47 enquiry "
                                      f"of {s.start.isoformat()} has another conference outcome "
                                      f"in {before.where} (changed between censuses?)", s.child))


def _merge_plan(found: dict[tuple[str, date], Plan], p: Plan,
                problems: list[ReturnProblem]) -> None:
    key = (p.child, p.start)
    before = found.get(key)
    if before is None:
        found[key] = p
        return
    if before.end is not None and p.end is not None and before.end != p.end:
        problems.append(ReturnProblem(p.where.source, p.where.line, f"the plan from "
                                      f"{p.start.isoformat()} ends {p.end.isoformat()} here but "
                                      f"{before.end.isoformat()} in {before.where} (changed "
                                      "between censuses?)", p.child))
        return
    reviews = {r.held_on: r for r in (*before.reviews, *p.reviews)}
    found[key] = replace(before, end=before.end or p.end, icpc=before.icpc or p.icpc,
                         reviews=tuple(reviews[d] for d in sorted(reviews)))


__all__ = ["read_cin_census", "merge_censuses", "parse_xml", "XmlRefused", "Node"]
