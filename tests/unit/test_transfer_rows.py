"""Reading extracts and mapping profiles: every problem named by file and line, no database."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from icsflow.definitions.registry import DefinitionSet
from icsflow.workflow.clock import LONDON
from icsflow.workflow.errors import ValidationError
from icsflow.workflow.transfer.mapping import load_profile, profile_from
from icsflow.workflow.transfer.rows import parse_rows, sort_rows
from icsflow.workflow.transfer.table import read_csv_text, read_table

DEFS = DefinitionSet.load_default()
HEAD = "ref,definition,event,at,actor,role,concern,team_manager_email\n"


def rows_of(text: str):  # type: ignore[no-untyped-def]
    return parse_rows(read_csv_text(text, "x.csv"), DEFS)


def test_a_byte_order_mark_and_a_date_only_at_are_read() -> None:
    rows, problems = rows_of("\ufeff" + HEAD + "A-1,alert_dispute,start,2011-10-03,iro-1,iro,"
                             "Plan drift,tm@example.org\n")
    assert problems == []
    assert rows[0].at == datetime(2011, 10, 3, tzinfo=LONDON)
    assert rows[0].data == {"concern": "Plan drift", "team_manager_email": "tm@example.org"}


def test_every_bad_row_is_named_with_its_line() -> None:
    rows, problems = rows_of(
        HEAD
        + "A-1,alert_dispute,start,2011-10-03,iro-1,iro,x,tm@example.org\n"
        + "A-2,nope,start,2011-10-03,iro-1,iro,x,tm@example.org\n"
        + "A-3,alert_dispute,start,03/10/2011,iro-1,iro,x,tm@example.org\n"
        + "A-4,alert_dispute,start,2011-10-03,iro-1,team_manager,x,tm@example.org\n"
        + "A-5,alert_dispute,start,2011-10-03,iro-1,iro,x,not-an-address\n"
        + "A-6,alert_dispute,fly,2011-10-03,iro-1,iro,,\n"
        + ",alert_dispute,start,2011-10-03,iro-1,iro,x,tm@example.org\n")
    assert len(rows) == 1
    assert [str(p).split(":")[1] for p in problems] == ["3", "4", "5", "6", "7", "8"]
    text = "\n".join(map(str, problems))
    for expected in ("unknown definition 'nope'", "'at' '03/10/2011' is not an ISO date",
                     "role 'team_manager' may not start", "email address",
                     "unknown event 'fly'", "required column 'ref' is empty"):
        assert expected in text


def test_an_unknown_column_and_a_missing_required_column_are_refused() -> None:
    _, problems = rows_of("ref,definition,event,at,actor,role,colour\n")
    assert [str(p) for p in problems] == [
        "x.csv:1: unknown column 'colour': not a canonical column nor a data field of any "
        "definition (rename or drop it with a --map profile)"]
    _, problems = rows_of("ref,definition,event,at\n")
    assert "missing required column(s) actor, role" in str(problems[0])


def test_a_field_of_another_process_is_refused_only_when_given() -> None:
    head = "ref,definition,event,at,actor,role,concern,team_manager_email,looked_after_on\n"
    rows, problems = rows_of(head + "A-1,alert_dispute,start,2011-10-03,iro-1,iro,x,"
                             "tm@example.org,\n")
    assert problems == [] and len(rows) == 1
    _, problems = rows_of(head + "A-1,alert_dispute,start,2011-10-03,iro-1,iro,x,"
                          "tm@example.org,2011-10-01\n")
    assert "column 'looked_after_on' is not a data field of alert_dispute" in str(problems[0])


def test_timer_only_events_are_left_to_the_replay() -> None:
    _, problems = rows_of(HEAD + "A-1,alert_dispute,no_response,2011-10-03,iro-1,iro,,\n")
    assert "fired by its timers only" in str(problems[0])


def test_identical_rows_stay_distinct_and_rows_sort_by_time_keeping_ties() -> None:
    line = "A-1,alert_dispute,resolve,2011-10-05,iro-1,iro,,\n"
    rows, _ = rows_of(HEAD + "A-1,alert_dispute,start,2011-10-05,iro-1,iro,x,tm@example.org\n"
                      + line + line)
    assert len({r.key for r in rows}) == 3
    assert rows[2].key.endswith("#2")
    assert [r.line for r in sort_rows(reversed(rows))] == [4, 3, 2]


def test_a_duplicate_id_is_refused() -> None:
    _, problems = rows_of("ref,definition,event,at,actor,role,id\n"
                          "A-1,alert_dispute,resolve,2011-10-05,iro-1,iro,7\n"
                          "A-1,alert_dispute,resolve,2011-10-06,iro-1,iro,7\n")
    assert "x.csv:3: id '7' is used again (first at line 2)" == str(problems[0])


def test_a_profile_renames_maps_parses_splits_and_expands() -> None:
    profile = profile_from({
        "columns": {"Child": "child", "When": "when", "Kind": "kind"},
        "skip": {"kind": ["ignore"]},
        "values": {"kind": {"I": "initial"}},
        "dates": {"when": "%d/%m/%Y %H:%M"},
        "split": {"when": {"date": "day", "datetime": "at"}},
        "set": {"ref": "R-{child}", "definition": "alert_dispute"},
        "rows": [{"event": "start", "note": "on {day}"},
                 {"event": "resolve", "when": {"kind": "initial"}}],
        "drop": ["when", "kind", "day"],
    }, "p.yaml")
    table = profile.apply(read_csv_text("Child,When,Kind\n7,03/10/2011 09:30,I\n"
                                        "8,04/10/2011 10:00,R\n9,05/10/2011 10:00,ignore\n",
                                        "src.csv"))
    assert [(r.line, r.cells["ref"], r.cells["event"], r.cells["at"]) for r in table.rows] == [
        (2, "R-7", "start", "2011-10-03T09:30:00"), (2, "R-7", "resolve", "2011-10-03T09:30:00"),
        (3, "R-8", "start", "2011-10-04T10:00:00")]
    assert table.rows[0].cells["note"] == "on 2011-10-03"
    assert "when" not in table.header and "ref" in table.header


def test_a_cell_the_profile_cannot_read_names_the_source_line() -> None:
    profile = profile_from({"dates": {"at": "%d/%m/%Y"}}, "p.yaml")
    with pytest.raises(ValidationError, match=r"src.csv:3: column 'at': '31-04-2011' does not"):
        profile.apply(read_csv_text("at\n01/04/2011\n31-04-2011\n", "src.csv"))


def test_a_bad_profile_is_one_line_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("colums: {a: b}\n")
    with pytest.raises(ValidationError, match="unknown key 'colums'"):
        load_profile(path)
    path.write_text("split: {at: {hour: h}}\n")
    with pytest.raises(ValidationError, match="unknown part 'hour'"):
        load_profile(path)


def test_an_xlsx_date_cell_fills_a_date_field(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["ref", "definition", "event", "at", "actor", "role", "looked_after_on",
                  "team_manager_email"])
    sheet.append(["L-1", "initial_review", "start", datetime(2011, 11, 1, 9), "sw", "admin",
                  datetime(2011, 11, 1), "tm@example.org"])
    book.save(tmp_path / "x.xlsx")
    rows, problems = parse_rows(read_table(tmp_path / "x.xlsx"), DEFS)
    assert problems == [] and rows[0].data["looked_after_on"] == date(2011, 11, 1).isoformat()
    assert rows[0].line == 2


def test_a_file_that_is_not_utf8_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("ref\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(ValidationError, match="not UTF-8"):
        read_table(path)
