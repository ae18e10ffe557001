"""How a calendar change is named in a case's history, and what makes two calendars differ."""

from __future__ import annotations

from datetime import date

from icsflow.workflow import WorkingCalendar
from icsflow.workflow.changes.reproject import calendar_of, calendar_settings, describe, fingerprint


def test_added_removed_and_made_working_days_are_named() -> None:
    before = WorkingCalendar(closures={date(2011, 12, 28): "Christmas shutdown"})
    after = WorkingCalendar(closures={date(2011, 12, 29): "Staff day"},
                            extra_working_days=[date(2011, 12, 31)])
    assert describe(before, after, date(2011, 12, 20), date(2012, 1, 5)) == (
        "2011-12-28 Christmas shutdown removed, 2011-12-29 Staff day added, "
        "2011-12-31 made a working day")
    # Outside the window (start excluded, end included) nothing is said.
    assert describe(before, after, date(2011, 12, 28), date(2011, 12, 28)) == ""
    assert describe(before, before, date(2011, 1, 1), date(2012, 12, 31)) == ""


def test_the_fingerprint_follows_the_settings_and_the_settings_rebuild_the_calendar() -> None:
    plain = WorkingCalendar()
    closed = WorkingCalendar(closures={date(2022, 9, 20): "Council closure"})
    assert fingerprint(calendar_settings(plain)) == fingerprint(calendar_settings(
        WorkingCalendar()))
    assert fingerprint(calendar_settings(plain)) != fingerprint(calendar_settings(closed))
    rebuilt = calendar_of(calendar_settings(closed))
    assert rebuilt.reason(date(2022, 9, 20)) == "Council closure"
    # The State Funeral (19 September 2022) is a bank holiday in both: not a change.
    assert describe(plain, rebuilt, date(2022, 9, 12), date(2022, 9, 23)) == (
        "2022-09-20 Council closure added")


def test_state_names_read_through_later_migrations() -> None:
    from datetime import UTC, datetime

    from icsflow.workflow.changes.explain import entry_index, later_maps
    from icsflow.workflow.instance import HistoryEntry

    t = datetime(2012, 1, 2, tzinfo=UTC)

    def h(event: str, frm: str | None, to: str, **changes: object) -> HistoryEntry:
        return HistoryEntry(event, frm, to, "a", "r", t, t, None, changes)

    history = [h("start", None, "new"), h("respond", "new", "answered"),
               h("migrated", "answered", "replied", state_map={"answered": "replied"}),
               h("note", "replied", "replied")]
    assert later_maps(history)[1] == {"answered": "replied"}
    assert entry_index(history, ("replied",)) == 1  # the response, not the migration
    # A second migration renaming again: the first names read through both.
    assert entry_index(history, ("decided",), {"replied": "decided"}) == 1
