"""The access policy as pure functions: role and relationship, rules as data, break-glass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from icsflow.workflow.access import (
    AccessDenied,
    AccessPolicy,
    Principal,
    Scope,
    policy_from,
)
from icsflow.workflow.config import load_config
from icsflow.workflow.errors import ConfigurationError, PermissionDenied


@dataclass(frozen=True)
class Case:
    id: str
    child: str | None
    data: Mapping[str, Any] = field(default_factory=dict)


REVIEW = Case("r-1", "CH-1", {"iro_id": "iro-7", "team_manager_email": "tm.a@council.example"})
ALERT = Case("a-1", "CH-1", {"iro_email": "IRO.7@Council.Example",
                             "team_manager_email": "tm.a@council.example"})
OTHER = Case("a-2", "CH-2", {"iro_email": "iro.9@council.example",
                             "team_manager_email": "tm.b@council.example", "service": "south"})
IRO = Principal("iro-7", "iro", email="iro.7@council.example")
POLICY = AccessPolicy()


def test_an_iro_reads_a_child_whose_case_names_them_as_the_allocated_iro() -> None:
    decision = POLICY.check_read(IRO, "CH-1", [REVIEW])
    assert decision.allowed and "iro_id" in decision.reason


def test_an_iro_reads_a_child_whose_case_holds_their_address_in_any_letter_case() -> None:
    assert POLICY.check_read(Principal("x", "iro", email="iro.7@council.example"), "CH-1",
                             [ALERT]).allowed


def test_an_allocation_on_one_case_opens_every_case_of_that_child() -> None:
    decision = POLICY.check_act(Principal("iro-7", "iro"), ALERT, [REVIEW, ALERT])
    assert decision.allowed


def test_an_iro_may_not_read_or_act_on_a_child_not_allocated_to_them_and_is_told_why() -> None:
    read = POLICY.check_read(IRO, "CH-2", [OTHER])
    act = POLICY.check_act(IRO, OTHER, [OTHER])
    assert not read.allowed and not act.allowed
    assert read.reason.startswith("iro-7 (iro) may not read child CH-2: ")
    assert "iro_id, cpc_id or chair" in read.reason and "iro_email or cpc_email" in read.reason
    assert act.rule == "iro: act allocated" and not act.may_break_glass


def test_a_team_manager_reads_only_their_teams_children() -> None:
    tm = Principal("tm-a", "team_manager", team="tm.a@council.example")
    assert POLICY.check_read(tm, "CH-1", [ALERT]).allowed
    refused = POLICY.check_read(tm, "CH-2", [OTHER])
    assert not refused.allowed and "the child's is tm.b@council.example" in refused.reason


def test_a_team_role_without_a_team_is_told_how_to_set_one() -> None:
    refused = POLICY.check_read(Principal("sw", "social_worker"), "CH-1", [ALERT])
    assert not refused.allowed and "icsflow user set sw --team TEAM" in refused.reason


def test_a_service_manager_without_a_service_sees_every_child() -> None:
    boss = Principal("hos", "head_of_service")
    assert POLICY.check_read(boss, "CH-2", [OTHER]).allowed
    assert POLICY.sees_everything(boss)


def test_a_service_manager_with_a_service_sees_only_that_services_children() -> None:
    south = Principal("sm", "service_manager", service="south")
    north = Principal("sm2", "service_manager", service="north")
    assert POLICY.check_read(south, "CH-2", [OTHER]).allowed
    assert not POLICY.check_read(north, "CH-2", [OTHER]).allowed
    assert not POLICY.sees_everything(north)


def test_a_team_belongs_to_a_service_through_the_team_services_table() -> None:
    config = load_config(None, env={}).access
    from dataclasses import replace

    policy = policy_from(replace(config, team_services={"tm.a@council.example": "north"}))
    assert policy.check_read(Principal("sm", "service_manager", service="north"), "CH-1",
                             [ALERT]).allowed


def test_an_admin_sees_every_child_and_an_unlisted_role_sees_none() -> None:
    assert POLICY.check_read(Principal("a", "admin"), "CH-2", [OTHER]).allowed
    refused = POLICY.check_read(Principal("m", "minute_manager"), "CH-2", [OTHER])
    assert not refused.allowed and "no access rule" in refused.reason


def test_a_manager_may_break_glass_with_a_reason_and_the_reason_is_kept() -> None:
    tm = Principal("tm-a", "team_manager", team="tm.a@council.example")
    plain = POLICY.check_read(tm, "CH-2", [OTHER])
    assert not plain.allowed and plain.may_break_glass and "break-glass" in plain.reason
    short = POLICY.check_read(tm, "CH-2", [OTHER], break_glass="urgent")
    assert not short.allowed and "10-500 characters" in short.reason
    opened = POLICY.check_read(tm, "CH-2", [OTHER],
                               break_glass="  Covering for tm.b on leave:\nstrategy today ")
    assert opened.allowed and opened.break_glass
    assert opened.glass_reason == "Covering for tm.b on leave: strategy today"


def test_an_iro_may_not_break_glass() -> None:
    refused = POLICY.check_read(IRO, "CH-2", [OTHER], break_glass="I really need to see this")
    assert not refused.allowed and not refused.break_glass and not refused.may_break_glass


def test_a_related_user_giving_a_reason_is_not_counted_as_break_glass() -> None:
    tm = Principal("tm-a", "team_manager", team="tm.a@council.example")
    decision = POLICY.check_read(tm, "CH-1", [ALERT], break_glass="not needed at all here")
    assert decision.allowed and not decision.break_glass


def test_starting_a_case_for_a_new_child_needs_no_relationship() -> None:
    assert POLICY.check_start(IRO, "CH-NEW", []).allowed
    assert not POLICY.check_start(IRO, "CH-2", [OTHER]).allowed
    assert POLICY.check_start(IRO, "CH-1", [REVIEW]).allowed


def test_a_case_without_a_child_is_judged_on_its_own_data() -> None:
    loose = Case("c-9", None, {"iro_id": "iro-7"})
    assert POLICY.check_act(IRO, loose, [OTHER]).allowed  # other children's cases are ignored
    assert not POLICY.check_read(Principal("iro-8", "iro"), None, [loose]).allowed


def test_require_act_raises_a_permission_error_carrying_the_decision() -> None:
    with pytest.raises(AccessDenied) as caught:
        POLICY.require_act(IRO, OTHER, [OTHER], event="resolve")
    assert isinstance(caught.value, PermissionDenied)
    assert caught.value.instance_id == "a-2" and caught.value.event == "resolve"
    assert str(caught.value) == caught.value.decision.reason


def test_lists_keep_only_the_children_the_user_may_read() -> None:
    loose = Case("c-9", None, {"iro_id": "iro-7"})
    cases = [ALERT, OTHER, loose, REVIEW]
    kept = POLICY.filter_readable(IRO, cases, {"CH-1": [ALERT, REVIEW], "CH-2": [OTHER]})
    assert [c.id for c in kept] == ["a-1", "c-9", "r-1"]
    assert POLICY.readable_children(IRO, {"CH-1": [REVIEW], "CH-2": [OTHER]}) == {"CH-1"}


def test_the_rules_are_data_read_from_the_configuration(tmp_path: Any) -> None:
    path = tmp_path / "icsflow.yaml"
    path.write_text("access:\n  rules:\n    iro: team\n    director: {read: all, act: none}\n"
                    "  break_glass_roles: [director]\n  allocation_fields: [chair]\n")
    policy = policy_from(load_config(path, env={}).access)
    assert policy.rule_for("iro").read is Scope.TEAM
    director = policy.rule_for("director")
    assert (director.read, director.act, director.break_glass) == (Scope.ALL, Scope.NONE, True)
    assert not policy.rule_for("team_manager").break_glass
    assert policy.rule_for("cpc").read is Scope.ALLOCATED  # not named: keeps its default
    assert not policy.check_read(Principal("iro-7", "iro"), "CH-1", [REVIEW]).allowed


@pytest.mark.parametrize(("text", "says"), [
    ("access:\n  rules:\n    iro: everyone\n", "access.rules: iro: 'everyone' is not a scope"),
    ("access:\n  rules:\n    Iro: all\n", "access.rules: 'Iro' is not a role name"),
    ("access:\n  rules:\n    iro: {write: all}\n", "is not a rule"),
    ("web:\n  trusted_proxies: [localhost]\n", "web.trusted_proxies: 'localhost' is not an IP"),
])
def test_a_bad_access_or_web_setting_is_refused_in_one_line(tmp_path: Any, text: str,
                                                            says: str) -> None:
    path = tmp_path / "icsflow.yaml"
    path.write_text(text)
    with pytest.raises(ConfigurationError) as caught:
        load_config(path, env={})
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_trusted_proxies_and_session_times_come_from_the_environment() -> None:
    config = load_config(None, env={"ICSFLOW_WEB_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7",
                                    "ICSFLOW_WEB_SESSION_IDLE_MINUTES": "15"})
    assert config.web.trusted_proxies == ("10.0.0.0/8", "192.0.2.7/32")
    assert config.web.session_idle_minutes == 15 and config.web.session_absolute_hours == 8
    assert load_config(None, env={}).web.trusted_proxies == ()


def test_a_break_glass_reason_is_kept_as_one_line_of_printable_text() -> None:
    tm = Principal("tm-a", "team_manager", team="tm.a@council.example")
    opened = POLICY.check_read(tm, "CH-2", [OTHER],
                               break_glass="Covering\x1b[2J for a\u202e colleague\r\ntoday")
    assert opened.allowed and opened.glass_reason == "Covering [2J for a colleague today"
