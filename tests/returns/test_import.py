"""Importing returns keeps the import's guarantees: all or nothing with every problem named,
--skip-invalid leaving a child out whole, idempotent re-import, an overlapping extract adding
only what is new, a changed code reported and never doubled, the DOB passed only where the
definition has the field, and a child's returns replayed in time order."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner
from conftest import (
    SMALL_EPISODES,
    SMALL_HEADER,
    SMALL_REVIEWS,
    counts,
    open_engine,
    write_903,
)

from icsflow.workflow import Engine
from icsflow.workflow.cli import cli
from icsflow.workflow.transfer.returns.importing import import_returns

UNTIL = "2013-04-05"


def run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{tmp_path / 'cli.db'}", *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_31_february_is_named_file_line_with_exit_1_and_nothing_written(
        tmp_path: Path) -> None:
    folder = write_903(tmp_path / "903", SMALL_HEADER, SMALL_EPISODES,
                       SMALL_REVIEWS + "1002,01/02/2011,31/02/2013,PN0\n")
    code, _out, err = run(tmp_path, "import", str(folder), "--format", "ssda903",
                          "--until", UNTIL)
    assert code == 1
    assert f"{folder}/reviews.csv:6: REVIEW '31/02/2013' is not a real date" in err
    assert "nothing was imported" in err
    engine = open_engine(tmp_path, "cli.db")
    try:
        assert counts(engine)["instances"] == 0 and counts(engine)["import_ledger"] == 0
    finally:
        engine.close()


def test_skip_invalid_leaves_a_child_with_one_bad_row_out_whole_and_writes_the_rejects(
        tmp_path: Path, engine: Engine) -> None:
    folder = write_903(tmp_path / "903", SMALL_HEADER, SMALL_EPISODES,
                       SMALL_REVIEWS + "1001,01/06/2005,12/02/2013,PN9\n")
    rejects = tmp_path / "rejects.csv"
    report = import_returns(engine, [("ssda903", folder)], skip_invalid=True, rejects=rejects)
    assert report.ok and report.skipped_children == ["1001"]
    assert {i.child for i in engine.list_cases()} == {"1002"}
    with rejects.open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows == [{"file": f"{folder}/reviews.csv", "line": "6", "child": "1001",
                     "reason": "REVIEW_CODE PN9 is not a participation code (PN0-PN7)"}]


def test_without_skip_invalid_the_same_file_is_refused_whole(tmp_path: Path,
                                                             engine: Engine) -> None:
    folder = write_903(tmp_path / "903", SMALL_HEADER, SMALL_EPISODES,
                       SMALL_REVIEWS + "1001,01/06/2005,12/02/2013,PN9\n")
    report = import_returns(engine, [("ssda903", folder)])
    assert not report.ok and [p.line for p in report.imported.problems] == [6]
    assert engine.list_cases() == []


def test_importing_the_same_return_again_changes_nothing(small_903: Path,
                                                         engine: Engine) -> None:
    first = import_returns(engine, [("ssda903", small_903)])
    assert first.ok and first.imported.started == 2
    before = counts(engine)
    again = import_returns(engine, [("ssda903", small_903)])
    assert again.ok and again.imported.applied == 0 and counts(engine) == before


def test_a_dry_run_writes_nothing(small_903: Path, engine: Engine) -> None:
    report = import_returns(engine, [("ssda903", small_903)], dry_run=True)
    assert report.ok and report.imported.applied > 0
    assert counts(engine)["instances"] == 0


def test_next_years_overlapping_extract_adds_only_what_is_new_and_reports_a_changed_code(
        tmp_path: Path, small_903: Path, engine: Engine) -> None:
    import_returns(engine, [("ssda903", small_903)])
    later = write_903(tmp_path / "903-later", SMALL_HEADER,
                      SMALL_EPISODES.replace("1002,02/05/2012,S,C2,N1,U1,PR1,,,,,,",
                                             "1002,02/05/2012,S,C2,N1,U1,PR1,20/03/2013,E13,,,,"),
                      SMALL_REVIEWS.replace("20/07/2012,PN3", "20/07/2012,PN5")
                      + "1002,01/02/2011,20/08/2012,PN0\n")
    report = import_returns(engine, [("ssda903", later)])
    assert report.ok
    assert [str(n) for n in report.notices] == [
        f"{later}/reviews.csv:3: child 1001: the review of 20/07/2012 has PN5 here but PN3 in "
        "icsflow (903-1001-2012-04-02): left alone"]
    (case,) = engine.list_cases("initial_review", child="1002")
    holds = [h for h in case.history if h.event == "record_review"]
    assert [h.changes["held_on"] for h in holds] == ["2012-05-29", "2012-08-20"]
    assert case.state == "cancelled"  # the period ended in the later extract
    (other,) = engine.list_cases("initial_review", child="1001")
    assert [h.changes["participation"] for h in other.history
            if h.event == "record_review"] == ["PN1", "PN3", "PN4"]


def test_the_dob_is_the_review_cases_date_of_birth(small_903: Path, engine: Engine) -> None:
    assert import_returns(engine, [("ssda903", small_903)]).ok
    (case,) = engine.list_cases("initial_review", child="1002")
    assert case.version == 4 and case.data["date_of_birth"] == "2011-02-01"
    assert case.markers["eighteenth_birthday"].isoformat() == "2029-02-01"


def test_a_period_ending_on_the_18th_birthday_ends_by_itself_in_left_care(
        tmp_path: Path, engine: Engine) -> None:
    folder = write_903(tmp_path / "903-adult", "1003,1,10/01/1995,WBRI,,,\n",
                       "1003,02/04/2012,S,C2,N1,U1,PR1,10/01/2013,E8,,,,\n",
                       "1003,10/01/1995,27/04/2012,PN1\n")
    assert import_returns(engine, [("ssda903", folder)]).ok
    (case,) = engine.list_cases("initial_review", child="1003")
    assert case.state == "left_care" and case.data["left_care_on"] == "2013-01-10"
    assert [h.event for h in case.history if h.role != "system"] == ["start", "record_review"]


def test_every_derived_row_is_done_by_the_system_importer_and_records_the_placement_change(
        small_903: Path, engine: Engine) -> None:
    import_returns(engine, [("ssda903", small_903)])
    (case,) = engine.list_cases("initial_review", child="1001")
    people = {(h.actor, h.role) for h in case.history if h.role != "system"}
    assert {a for a, _r in people} == {"ssda903-import"}
    (change,) = [h for h in case.history if h.event == "record_change"]
    assert change.changes == {"change_kind": "placement_move", "changed_on": "2012-06-01"}
    assert change.note == ("SSDA903 episode 2012-06-01: RNE P change of placement (CARPL), "
                           "legal status C2, placement U4")
    assert not [h for h in case.history if h.event in ("request_review", "allocate",
                                                       "schedule", "hold")]


CENSUS = """<Message><Header><CollectionDetails><ReferenceDate>2013-03-31</ReferenceDate>
</CollectionDetails></Header><Children><Child><ChildIdentifiers><LAchildID>{child}</LAchildID>
</ChildIdentifiers><CINdetails><Section47><S47ActualStartDate>2012-06-01</S47ActualStartDate>
<DateOfInitialCPC>2012-06-20</DateOfInitialCPC><ICPCnotRequired>0</ICPCnotRequired></Section47>
<ChildProtectionPlans><CPPstartDate>2012-06-20</CPPstartDate><Reviews>
<CPPreviewDate>2012-09-17</CPPreviewDate></Reviews></ChildProtectionPlans></CINdetails></Child>
</Children></Message>"""


def test_a_census_imported_after_the_903_cannot_reach_back_before_it(
        tmp_path: Path, small_903: Path, engine: Engine) -> None:
    census = tmp_path / "census.xml"
    census.write_text(CENSUS.format(child="1001"))  # 1001's care has events to 2013-01-14
    assert import_returns(engine, [("ssda903", small_903)]).ok
    report = import_returns(engine, [("cin-census", census)])
    assert not report.ok
    assert "import returns in year order, the 903 and the census together (--with)" in str(
        report.imported.problems[0])


def test_a_census_of_later_events_may_follow_the_903_in_its_own_import(
        tmp_path: Path, small_903: Path, engine: Engine) -> None:
    census = tmp_path / "census.xml"
    census.write_text(CENSUS.format(child="1002"))  # 1002's last 903 event: 2012-05-29
    assert import_returns(engine, [("ssda903", small_903)]).ok
    assert import_returns(engine, [("cin-census", census)]).ok
    (dual,) = engine.list_cases("dual_status", child="1002")
    assert dual.data["became_dual_on"] == "2012-06-20"


def test_together_the_returns_make_dual_status_by_the_processes_signals(
        tmp_path: Path, small_903: Path, engine: Engine) -> None:
    census = tmp_path / "census.xml"
    census.write_text(CENSUS.format(child="1002"))
    assert import_returns(engine, [("ssda903", small_903), ("cin-census", census)]).ok
    (dual,) = engine.list_cases("dual_status", child="1002")
    assert dual.data["became_dual_on"] == "2012-06-20" and dual.history[0].role == "system"


def test_an_xml_bomb_given_to_the_cli_is_refused_with_exit_1(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xml"
    bomb.write_text('<?xml version="1.0"?>\n<!DOCTYPE m [<!ENTITY a "aaaaaaaaaa">\n'
                    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n<Message>&b;</Message>\n')
    code, _out, err = run(tmp_path, "import", str(bomb), "--format", "cin-census")
    assert code == 1 and f"{bomb}:2: a document type or entity declaration" in err


def test_import_json_reports_children_rejects_and_notices(tmp_path: Path,
                                                          small_903: Path) -> None:
    code, out, _err = run(tmp_path, "import", str(small_903), "--format", "ssda903",
                          "--until", UNTIL, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["children"] == 2
    assert report["children_imported"] == 2 and report["emails"] == "replayed"
