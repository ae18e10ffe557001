"""The loader: strict YAML, the language's shorthand forms, and every mistake in one run."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from icsflow.definitions.durations import Duration, Unit
from icsflow.definitions.errors import DefinitionLoadError
from icsflow.definitions.loader import load_paths, load_text
from icsflow.definitions.model import AnchorKind, TimerPosition
from icsflow.definitions.registry import DefinitionSet, builtin_dir, examples_dir

SMALL = """
name: small
version: 1
roles:
  worker: {address: worker_email}
  boss: {directory: true}
  clerk: Keeps the files
  visitor:
data:
  worker_email: {type: email}
  opened_on: {type: date}
  kind: {type: enum, values: [a, b]}
initial: "no"
states:
  "no": {}
  "off": {description: switched off}
  done: {final: true}
transitions:
  - {event: "on", from: "no", to: "off", roles: [worker], set: [opened_on]}
  - event: "yes"
    from: "*"
    roles: [worker]
    set: {kind: optional}
    record: {kind: "'a'"}
    when: ["data.kind == 'a'", "true"]
  - {event: finish, from: "off", to: done, roles: [boss]}
  - {event: lapse, from: "off", to: done}
deadlines:
  finish_due:
    live_in: ["off"]
    anchor: field opened_on
    before: 2 working days
    roll: backward
    cancelled_by: ["yes"]
  ruled:
    live_in: "off"
    rules:
      - {when: "data.kind == 'a'", anchor: state no, after: 3 months}
      - {after: 6 months}
timers:
  - {name: lapse_timer, deadline: ruled, at: breach, fire: lapse}
  - name: nag
    state: "off"
    after: 1 week
    notify: [{to: [boss], template: nag, when: "data.kind == 'b'"}]
    repeat: {every: 1 week, max: 3}
templates:
  nag: {subject: "Nag {{ ref }}", body: "{{ deadlines.ruled }}", urgent: true}
"""


def test_on_off_yes_no_stay_strings():
    d = load_text(SMALL, "small.yaml")
    assert d.initial == "no"
    assert [s.name for s in d.states] == ["no", "off", "done"]
    assert d.events[:2] == ("on", "yes")


def test_roles_accept_mapping_null_and_description_and_default_start_roles():
    d = load_text(SMALL, "small.yaml")
    assert d.role_map["worker"].address_field == "worker_email"
    assert d.role_map["boss"].directory is True
    assert d.role_map["clerk"].description == "Keeps the files"
    assert d.role_map["visitor"].address_field is None
    assert d.start_roles == ("worker", "boss", "clerk", "visitor")


def test_from_star_is_every_non_final_state_and_missing_to_is_internal():
    t = load_text(SMALL, "small.yaml").transitions[1]
    assert t.from_any and t.sources == ("no", "off") and t.to is None
    assert [e.text for e in t.when] == ["data.kind == 'a'", "true"]
    assert [(r.name, r.required) for r in t.set] == [("kind", False)]
    assert [(f, e.text) for f, e in t.record] == [("kind", "'a'")]


def test_set_list_means_required():
    t = load_text(SMALL, "small.yaml").transitions[0]
    assert [(r.name, r.required) for r in t.set] == [("opened_on", True)]


def test_deadline_single_form_and_rules():
    d = load_text(SMALL, "small.yaml")
    single = d.deadline_map["finish_due"]
    assert len(single.rules) == 1
    rule = single.rules[0]
    assert rule.anchor.kind is AnchorKind.FIELD and rule.anchor.ref == "opened_on"
    assert rule.sign == -1 and rule.offset == Duration(2, Unit.WORKING_DAYS)
    ruled = d.deadline_map["ruled"]
    assert [r.anchor.kind for r in ruled.rules] == [AnchorKind.STATE, AnchorKind.ENTRY]
    assert ruled.rules[0].when is not None and ruled.rules[1].when is None


def test_timers_positions_and_repeat():
    d = load_text(SMALL, "small.yaml")
    lapse, nag = d.timers
    assert lapse.position is TimerPosition.BREACH and lapse.fire == "lapse"
    assert nag.position is TimerPosition.AFTER and nag.offset == Duration(1, Unit.WEEKS)
    assert nag.repeat_every == Duration(1, Unit.WEEKS) and nag.repeat_max == 3
    assert nag.notify[0].roles == ("boss",) and nag.notify[0].when is not None
    assert d.template_map["nag"].urgent is True


def test_sources_carry_file_and_line():
    d = load_text(SMALL, "small.yaml")
    assert str(d.state_map["off"].source) == "small.yaml:16"
    assert d.transitions[1].source.line == 20


def test_content_hash_is_sha256_of_bytes():
    d = load_text(SMALL, "small.yaml")
    assert d.content_hash == hashlib.sha256(SMALL.encode()).hexdigest()


def test_all_problems_of_a_file_are_reported_at_once():
    text = SMALL.replace("type: email", "type: emial").replace("max: 3", "max: 0")
    with pytest.raises(DefinitionLoadError) as info:
        load_text(text, "small.yaml")
    messages = [str(p) for p in info.value.problems]
    assert any("unknown type 'emial'" in m for m in messages)
    assert any("repeat max of timer 'nag' must be a whole number from 1" in m for m in messages)


def test_top_level_unknown_key_suggests_the_known_one():
    with pytest.raises(DefinitionLoadError) as info:
        load_text(SMALL.replace("templates:", "templats:"), "small.yaml")
    assert "unknown key 'templats' in the definition" in str(info.value)
    assert "did you mean 'templates'?" in str(info.value)


def test_load_paths_refuses_same_name_and_version_naming_both(tmp_path: Path):
    (tmp_path / "a.yaml").write_text(SMALL)
    (tmp_path / "b.yml").write_text(SMALL + "\n# changed\n")
    with pytest.raises(DefinitionLoadError) as info:
        load_paths([tmp_path])
    text = str(info.value)
    assert "b.yml" in text and "also defined in" in text and "a.yaml" in text


def test_load_paths_reads_folders_sorted(tmp_path: Path):
    (tmp_path / "b.yaml").write_text(SMALL.replace("version: 1", "version: 2"))
    (tmp_path / "a.yaml").write_text(SMALL)
    (tmp_path / "notes.txt").write_text("ignored")
    assert [d.version for d in load_paths([tmp_path])] == [1, 2]
    defs = DefinitionSet.load(tmp_path)
    assert defs.latest("small").version == 2 and defs.get("small", 1).version == 1
    assert defs.names() == ["small"]
    assert defs.machine(defs.latest("small")) is defs.machine(defs.latest("small"))


def test_examples_and_builtin_definitions_load():
    examples = load_paths([examples_dir()])
    assert {d.name for d in examples} == {"alert_example", "review_example", "dual_example",
                                           "alert_auto_escalation"}
    builtin = load_paths([builtin_dir()])
    assert {d.name for d in builtin} == {"alert_dispute", "initial_review", "dual_status",
                                         "cp_conference", "cp_transfer_in", "strategy_meeting"}


def test_latest_is_the_highest_version_whatever_the_order_given():
    from icsflow.definitions.loader import load_text

    defs = [load_text(SMALL.replace("version: 1", f"version: {v}"), f"v{v}.yaml")
            for v in (2, 10, 9)]
    assert DefinitionSet(defs).latest("small").version == 10
    with pytest.raises(KeyError, match="no definition 'other'"):
        DefinitionSet(defs).latest("other")
