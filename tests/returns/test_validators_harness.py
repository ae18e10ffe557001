"""The DfE validators run from their side environment can fail: a deliberately wrong file
produces the expected rule's error, and a right one none (so a clean export means something)."""

from __future__ import annotations

from pathlib import Path

import validators

HEADER = "CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\n"
EPISODES = ("CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,"
            "PL_POST,URN\n")
REVIEWS = "CHILD,DOB,REVIEW,REVIEW_CODE\n"


def _903(tmp_path: Path, reviews: str, ls: str = "C2") -> list[Path]:
    files = {"header.csv": HEADER + "1001,1,01/06/2005,WBRI,,,\n1002,2,01/02/2011,WBRI,,,\n",
             "episodes.csv": EPISODES + f"1001,02/04/2012,S,{ls},N1,U1,PR1,,,,,,\n"
                             f"1002,02/04/2012,S,C2,N1,U1,PR1,,,,,,\n",
             "reviews.csv": REVIEWS + reviews}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return [tmp_path / name for name in files]


def test_a_correct_903_extract_breaks_none_of_the_review_rules(tmp_path: Path) -> None:
    verdict = validators.run_903(_903(tmp_path, "1001,01/06/2005,30/04/2012,PN1\n"
                                                "1002,01/02/2011,30/04/2012,PN0\n"), "2012-13")
    assert verdict.failing() == {} and verdict.failed == [] and verdict.unknown == []
    assert set(verdict.ran) == set(validators.RULES_903)


def test_an_impossible_review_date_breaks_rule_166(tmp_path: Path) -> None:
    verdict = validators.run_903(_903(tmp_path, "1001,01/06/2005,31/02/2013,PN1\n"), "2012-13")
    assert verdict.failing() == {"166": ["reviews.csv:2 CHILD 1001"]}


def test_an_unknown_participation_code_breaks_rule_167(tmp_path: Path) -> None:
    verdict = validators.run_903(_903(tmp_path, "1001,01/06/2005,30/04/2012,PN9\n"), "2012-13")
    assert list(verdict.failing()) == ["167"]


def test_pn0_for_a_child_of_six_breaks_rule_440_and_pn1_for_a_baby_rule_441(
        tmp_path: Path) -> None:
    verdict = validators.run_903(_903(tmp_path, "1001,01/06/2005,30/04/2012,PN0\n"
                                                "1002,01/02/2011,30/04/2012,PN1\n"), "2012-13")
    assert verdict.failing() == {"440": ["reviews.csv:2 CHILD 1001"],
                                 "441": ["reviews.csv:3 CHILD 1002"]}


def test_a_review_of_a_child_on_short_breaks_only_breaks_rule_399(tmp_path: Path) -> None:
    verdict = validators.run_903(_903(tmp_path, "1001,01/06/2005,30/04/2012,PN1\n", ls="V3"),
                                 "2012-13")
    assert "reviews.csv:2 CHILD 1001" in verdict.failing()["399"]


CIN = """<Message><Header><CollectionDetails><Collection>CIN</Collection><Year>2013</Year>
<ReferenceDate>2013-03-31</ReferenceDate></CollectionDetails><Source><SourceLevel>L</SourceLevel>
<LEA>201</LEA><SoftwareCode>test</SoftwareCode><Release>1</Release><SerialNo>1</SerialNo>
<DateTime>2013-04-02T10:00:00</DateTime></Source></Header><Children><Child><ChildIdentifiers>
<LAchildID>C1</LAchildID></ChildIdentifiers><ChildCharacteristics/><CINdetails><CINreferralDate>2012-05-01</CINreferralDate>
<Section47><S47ActualStartDate>2012-05-01</S47ActualStartDate>
<InitialCPCtarget>2012-05-23</InitialCPCtarget><DateOfInitialCPC>{icpc}</DateOfInitialCPC>
<ICPCnotRequired>0</ICPCnotRequired></Section47><ChildProtectionPlans>
<CPPstartDate>{icpc}</CPPstartDate><CPPendDate>{end}</CPPendDate><Reviews>
<CPPreviewDate>2012-08-20</CPPreviewDate></Reviews></ChildProtectionPlans></CINdetails></Child>
</Children></Message>"""


def test_a_correct_census_breaks_none_of_the_rules_and_wrong_ones_break_theirs(
        tmp_path: Path) -> None:
    good = tmp_path / "good.xml"
    good.write_text(CIN.format(icpc="2012-05-21", end="2013-02-18"))
    verdict = validators.run_cin(good)
    assert verdict.failing() == {} and verdict.failed == [] and verdict.unknown == []
    saturday = tmp_path / "saturday.xml"
    saturday.write_text(CIN.format(icpc="2012-05-19", end="2013-02-18"))
    assert set(validators.run_cin(saturday).failing()) == {"8875"}
    backwards = tmp_path / "backwards.xml"
    backwards.write_text(CIN.format(icpc="2012-05-21", end="2012-05-20"))
    assert set(validators.run_cin(backwards).failing()) == {"8925"}
    late = tmp_path / "late.xml"
    late.write_text(CIN.format(icpc="2012-05-21", end="2013-04-15"))
    assert set(validators.run_cin(late).failing()) == {"8930"}


def test_rule_8870q_sees_a_weekend_target_only_written_day_first(tmp_path: Path) -> None:
    """Why icsflow checks InitialCPCtarget itself (test_county): the validator parses it as
    dd-mm-yyyy only, so the census's own yyyy-mm-dd form never reaches the rule."""
    path = tmp_path / "target.xml"
    path.write_text(CIN.format(icpc="2012-05-21", end="2013-02-18").replace("2012-05-23",
                                                                            "2012-05-26"))
    assert validators.run_cin(path).failing() == {}
    path.write_text(CIN.format(icpc="2012-05-21", end="2013-02-18").replace("2012-05-23",
                                                                            "26-05-2012"))
    assert set(validators.run_cin(path).failing()) == {"8870Q"}
