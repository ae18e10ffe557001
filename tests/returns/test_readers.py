"""The two returns' readers: every unusable row is named FILE:LINE with its reason and its
child; duplicates of a multi-year extract collapse; a hostile XML file is refused unread."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from icsflow.workflow.errors import ValidationError
from icsflow.workflow.transfer.returns.cin_census import merge_censuses, read_cin_census
from icsflow.workflow.transfer.returns.ssda903 import read_ssda903

HEADER = "CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\n"
EPISODES = ("CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,"
            "PL_POST,URN\n")
REVIEWS = "CHILD,DOB,REVIEW,REVIEW_CODE\n"


def extract(tmp_path: Path, header: str, episodes: str, reviews: str,
            names: tuple[str, str, str] = ("header.csv", "episodes.csv", "reviews.csv"),
            ) -> Path:
    folder = tmp_path / "903"
    folder.mkdir()
    for name, body, head in zip(names, (header, episodes, reviews), (HEADER, EPISODES, REVIEWS),
                                strict=True):
        (folder / name).write_text(head + body)
    return folder


def messages(ret: object) -> list[str]:
    return [str(p) for p in ret.problems]  # type: ignore[attr-defined]


def test_file_names_are_matched_in_any_case(tmp_path: Path) -> None:
    folder = extract(tmp_path, "1,1,01/06/2005,WBRI,,,\n", "1,02/04/2012,S,C2,N1,U1,PR1,,,,,,\n",
                     "", names=("HEADER.CSV", "Episodes.csv", "reviews.CSV"))
    ret = read_ssda903(folder)
    assert ret.problems == () and ret.children["1"].periods[0].start == date(2012, 4, 2)


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "903"
    folder.mkdir()
    (folder / "header.csv").write_text(HEADER)
    with pytest.raises(ValidationError, match="no episodes.csv, reviews.csv"):
        read_ssda903(folder)


def test_an_impossible_date_is_named_with_its_file_and_line(tmp_path: Path) -> None:
    folder = extract(tmp_path, "1,1,01/06/2005,WBRI,,,\n",
                     "1,02/04/2012,S,C2,N1,U1,PR1,,,,,,\n", "1,01/06/2005,31/02/2013,PN1\n")
    ret = read_ssda903(folder)
    assert messages(ret) == [f"{folder}/reviews.csv:2: REVIEW '31/02/2013' is not a real date"]
    assert ret.problems[0].child == "1"


def test_a_missing_decom_an_unknown_pn_code_and_an_unknown_rne_are_each_named(
        tmp_path: Path) -> None:
    folder = extract(tmp_path, "1,1,01/06/2005,WBRI,,,\n2,1,01/06/2005,WBRI,,,\n",
                     "1,,S,C2,N1,U1,PR1,,,,,,\n2,02/04/2012,Q,C2,N1,U1,PR1,,,,,,\n",
                     "2,01/06/2005,30/04/2012,PN9\n")
    found = messages(read_ssda903(folder))
    assert f"{folder}/episodes.csv:2: DECOM is missing" in found
    assert any(m.startswith(f"{folder}/episodes.csv:3: RNE Q is not a DfE code") for m in found)
    assert any(m.startswith(f"{folder}/reviews.csv:2: REVIEW_CODE PN9 is not a participation")
               for m in found)


def test_overlapping_episodes_of_one_child_are_a_problem(tmp_path: Path) -> None:
    folder = extract(tmp_path, "1,1,01/06/2005,WBRI,,,\n",
                     "1,02/04/2012,S,C2,N1,U1,PR1,01/08/2012,X1,,,,\n"
                     "1,01/07/2012,P,C2,N1,U4,PR1,,,,,,\n", "")
    found = messages(read_ssda903(folder))
    assert any("episodes.csv:3: starts on 01/07/2012, before the episode from 02/04/2012 "
               "(line 2) ended on 01/08/2012: episodes overlap" in m for m in found)


def test_a_multi_year_extract_collapses_its_repeated_rows(tmp_path: Path) -> None:
    """2012-13 holds the episode open; 2013-14 holds it again, closed; the header row twice."""
    folder = extract(tmp_path, "1,1,01/06/2005,WBRI,,,\n1,1,01/06/2005,WBRI,,,\n",
                     "1,02/04/2012,S,C2,N1,U1,PR1,,,,,,\n"
                     "1,02/04/2012,S,C2,N1,U1,PR1,10/05/2013,E4A,,,,\n",
                     "1,01/06/2005,30/04/2012,PN1\n1,01/06/2005,30/04/2012,PN1\n")
    ret = read_ssda903(folder)
    assert ret.problems == ()
    (period,) = ret.children["1"].periods
    assert (period.start, period.end, len(period.reviews)) == (date(2012, 4, 2),
                                                               date(2013, 5, 10), 1)


def test_a_dob_or_code_changed_between_years_is_named_on_the_later_line(
        tmp_path: Path) -> None:
    folder = extract(tmp_path, "1,1,01/06/2005,WBRI,,,\n1,1,02/06/2005,WBRI,,,\n",
                     "1,02/04/2012,S,C2,N1,U1,PR1,,,,,,\n",
                     "1,01/06/2005,30/04/2012,PN1\n1,01/06/2005,30/04/2012,PN2\n")
    found = messages(read_ssda903(folder))
    assert any("header.csv:3: DOB 02/06/2005 differs from 01/06/2005 at line 2" in m
               for m in found)
    assert any("reviews.csv:3: the review of 30/04/2012 is also at line 2 with PN1, here PN2"
               in m for m in found)


def test_periods_follow_rne_s_and_rec_and_a_review_outside_care_is_named(
        tmp_path: Path) -> None:
    folder = extract(tmp_path, "1,1,01/06/2005,WBRI,,,\n",
                     "1,02/04/2012,S,C2,N1,U1,PR1,01/06/2012,X1,,,,\n"
                     "1,01/06/2012,P,C2,N1,U4,PR1,01/09/2012,E4A,,,,\n"
                     "1,01/12/2012,S,V4,N1,U1,PR1,,,,,,\n",
                     "1,01/06/2005,30/04/2012,PN1\n1,01/06/2005,01/11/2012,PN1\n")
    ret = read_ssda903(folder)
    first, second = ret.children["1"].periods
    assert (first.start, first.end, len(first.episodes)) == (date(2012, 4, 2),
                                                            date(2012, 9, 1), 2)
    assert second.short_breaks and second.end is None
    assert messages(ret) == [f"{folder}/reviews.csv:3: the review of 01/11/2012 falls in no "
                             "period of care of the child in episodes.csv"]


CENSUS = """<?xml version="1.0"?>
<Message>
  <Header><CollectionDetails><ReferenceDate>2013-03-31</ReferenceDate></CollectionDetails></Header>
  <Children>
    <Child>
      <ChildIdentifiers><LAchildID>C1</LAchildID></ChildIdentifiers>
      <CINdetails>
        <Section47>
          <S47ActualStartDate>2012-05-01</S47ActualStartDate>
          <DateOfInitialCPC>{icpc}</DateOfInitialCPC>
          <ICPCnotRequired>false</ICPCnotRequired>
        </Section47>
        <ChildProtectionPlans>
          <CPPstartDate>2012-05-21</CPPstartDate>
          <CPPendDate>{end}</CPPendDate>
          <Reviews><CPPreviewDate>2012-08-20</CPPreviewDate></Reviews>
        </ChildProtectionPlans>
      </CINdetails>
    </Child>
  </Children>
</Message>
"""


def test_a_census_plan_is_the_plan_its_conference_made(tmp_path: Path) -> None:
    path = tmp_path / "c.xml"
    path.write_text(CENSUS.format(icpc="2012-05-21", end="2012-11-19"))
    ret = read_cin_census(path)
    assert ret.problems == () and ret.reference_date == date(2013, 3, 31)
    (plan,) = ret.children["C1"].plans
    assert plan.icpc is not None and plan.icpc.start == date(2012, 5, 1)
    assert [r.held_on for r in plan.reviews] == [date(2012, 8, 20)]


def test_census_problems_name_the_line_of_their_element(tmp_path: Path) -> None:
    path = tmp_path / "c.xml"
    path.write_text(CENSUS.format(icpc="2012-02-30", end="2012-05-20"))
    found = messages(read_cin_census(path))
    assert f"{path}:10: DateOfInitialCPC '2012-02-30' is not a real date" in found
    assert f"{path}:13: CPPendDate 2012-05-20 is not after CPPstartDate 2012-05-21 (DfE rule " \
           "8925)" in found


BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<Message><Children><Child><ChildIdentifiers><LAchildID>&lol3;</LAchildID></ChildIdentifiers>
</Child></Children></Message>
"""


def test_an_entity_expansion_bomb_is_refused_before_anything_expands(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xml"
    path.write_text(BOMB)
    with pytest.raises(ValidationError, match=f"{path}:2: a document type or entity "
                       "declaration"):
        read_cin_census(path)


def test_an_external_entity_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "xxe.xml"
    path.write_text('<?xml version="1.0"?>\n<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">'
                    ']>\n<Message>&x;</Message>\n')
    with pytest.raises(ValidationError, match="entity"):
        read_cin_census(path)


def test_malformed_xml_is_refused_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.xml"
    path.write_text("<Message>\n<Children>\n</Message>\n")
    with pytest.raises(ValidationError, match=f"{path}:3: not well-formed XML"):
        read_cin_census(path)


def test_censuses_of_two_years_merge_a_plan_into_one(tmp_path: Path) -> None:
    first = tmp_path / "a.xml"
    first.write_text(CENSUS.format(icpc="2012-05-21", end="").replace(
        "<CPPendDate></CPPendDate>", ""))
    second = tmp_path / "b.xml"
    second.write_text(CENSUS.format(icpc="2012-05-21", end="2013-06-03").replace(
        "2013-03-31", "2014-03-31").replace("2012-08-20", "2013-05-01"))
    merged = merge_censuses([read_cin_census(second), read_cin_census(first)])
    (plan,) = merged.children["C1"].plans
    assert plan.end == date(2013, 6, 3)
    assert [r.held_on for r in plan.reviews] == [date(2012, 8, 20), date(2013, 5, 1)]
    assert merged.year == (date(2012, 4, 1), date(2014, 3, 31))
