"""Every broken definition in tests/broken is refused with the exact line and message."""

from __future__ import annotations

from pathlib import Path

import pytest

from icsflow.definitions.errors import DefinitionLoadError
from icsflow.definitions.loader import load_file

BROKEN = Path(__file__).resolve().parents[1] / "broken"

# file -> every expected "LINE:COLUMN: message" (a substring of the problem's text, in order):
# the line and column of the offending value itself, not of the thing that holds it
EXPECTED: dict[str, list[str]] = {
    "address_not_email": ["4:21: role 'worker' has address from data field 'opened_on' of type "
                          "date; it must be of type email"],
    "address_unknown_field": ["4:21: role 'worker' has address from unknown data field "
                              "'worker_mail' (known: worker_email, opened_on); did you mean "
                              "'worker_email'?"],
    "bad_duration": ["17:12: after of deadline 'finish_due': '10 workdays' is not a duration; "
                     "write \"N working day(s)\""],
    "dead_end_state": ["11:3: state 'stuck' is not final but no transition leaves it"],
    "duplicate_key": ["12:3: duplicate key 'open' (first written on line 10)"],
    "field_anchor_not_date": ["15:39: deadline 'finish_due' is anchored on data field "
                              "'worker_email' of type email; an anchor field must be of type "
                              "date or datetime"],
    "initial_final": ["10:3: state 'open' cannot be reached from the initial state 'done'",
                      "11:3: initial state 'done' is final"],
    "notify_role_without_address": ["17:20: notify of transition 'finish' goes to role 'worker', "
                                    "which has no address"],
    "python_tag": ["10:9: YAML tag '!!python/object/apply:os.system' is not allowed"],
    "readonly_field_set": ["18:11: transition 'finish' sets data field 'worker_email', which is "
                           "readonly (given when the case starts, never changed after); remove "
                           "it here or drop 'readonly: true' from the field",
                           "19:14: transition 'finish' records data field 'opened_on', which is "
                           "readonly"],
    "record_unknown_field": ["18:7: transition 'finish' records unknown data field "
                             "'late_reqest' (known: worker_email, late_request); did you mean "
                             "'late_request'?"],
    "reminder_before_anchor": ["19:13: timer 'reminder' is 12 working days before deadline "
                               "'finish_due', which is only 10 working days after its anchor"],
    "repeat_without_max": ["19:13: repeat of timer 'nag' needs 'max'"],
    "timer_fire_not_allowed": ["20:64: timer 'escalation' fires 'escalate', which is not allowed "
                               "in state(s) review where the timer is live, so it would "
                               "silently never fire there"],
    "timer_name_outside_a_timer": ["21:14: subject of template 'finished' uses 'deadline', which "
                                   "only a timer's own notification has (not a transition's); "
                                   "use deadlines.NAME"],
    "timer_only_event_never_fired": ["14:13: event 'expire' has no roles, so only a timer may fire "
                                     "it, but no timer fires it"],
    "undeclared_template_variable": [
        "22:25: body of template 'finished' uses undeclared data field 'data.opend_on' (known: "
        "worker_email, opened_on); did you mean 'opened_on'?",
        "22:43: body of template 'finished' uses unknown variable 'user'"],
    "unknown_data_field_in_when": ["13:66: when of transition 'finish' 'data.closed_on > "
                                   "data.opened_on' uses undeclared data field 'data.closed_on'"],
    "unknown_key": ["17:5: timer 'reminder' needs exactly one of 'deadline' or 'state'",
                    "18:5: unknown key 'deadlin' in timer 'reminder' (known: name, deadline, "
                    "state, before, after, at, notify, fire, repeat, description); did you mean "
                    "'deadline'?"],
    "unknown_role": ["13:51: transition 'finish' allows unknown role 'wroker' (known: worker); did "
                     "you mean 'worker'?"],
    "unknown_target_state": ["11:3: state 'done' cannot be reached from the initial state 'open'",
                             "13:37: transition 'finish' goes to unknown state 'dnoe' (known: "
                             "open, done); did you mean 'done'?"],
    "unknown_target_state_block": [
        "18:20: transition 'respond' comes from unknown state 'stage_1' (known: stage1, stage2, "
        "stage3_responded); did you mean 'stage1'?",
        "20:9: transition 'respond' goes to unknown state 'stage_one_typo' (known: stage1, "
        "stage2, stage3_responded); did you mean 'stage1'?",
        "24:13: transition 'close' allows unknown role 'wrkr' (known: worker); did you mean "
        "'worker'?",
        "24:19: transition 'close' allows unknown role 'nobody_at_all' (known: worker)"],
    "unknown_template": ["17:39: notify of transition 'finish' uses unknown template 'finished'"],
    "unreachable_state": ["12:3: state 'limbo' cannot be reached from the initial state 'open'"],
    "waiting_state": ["11:3: state 'held' waits for nothing: no role may fire an event in it and "
                      "no timer runs in it"],
    "wrong_type": ["14:13: event must be text, not the number 12"],
    "yes_is_not_true": ["11:17: final of state 'done' must be true or false, not the text 'yes'"],
}


def test_every_corpus_file_has_an_expectation():
    assert sorted(p.stem for p in BROKEN.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_definition_is_refused_with_line_and_message(name):
    path = BROKEN / f"{name}.yaml"
    with pytest.raises(DefinitionLoadError) as info:
        load_file(path)
    got = [f"{p.source.line}:{p.source.column}: {p.message}" for p in info.value.problems]
    assert len(got) == len(EXPECTED[name]), got
    for line, expected in zip(got, EXPECTED[name], strict=True):
        assert expected in line
        if "did you mean" not in expected:  # nothing close: nothing suggested
            assert "did you mean" not in line
    for p in info.value.problems:
        assert str(p).startswith(f"{path}:{p.source.line}:{p.source.column}: ")
