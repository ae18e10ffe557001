"""Who may read a child's record and act on a child's cases: role *and* relationship.

Why one pure module: the engine, the web page, the JSON API and the CLI must give the same
answer, and a data-protection officer must be able to read the rules in one place. The rules
are data (the ``access`` section of the configuration, defaults below): each role reads and
acts within a *scope*:

- ``allocated``: the children whose cases name the user as their IRO or CPC (an id field such
  as ``iro_id`` holding the user's name, or an address field such as ``cpc_email`` holding the
  user's email address);
- ``team``: the children whose cases name the user's team (``team``, ``team_id``, else the
  team manager's address, as the Today page groups them);
- ``service``: the children of the user's service (a case's ``service`` field, or the service
  its team belongs to); a user with no service set has the whole service, which by default is
  everyone;
- ``all``; ``none`` (a role the table does not name reads nothing).

A manager role listed in ``break_glass_roles`` may still open a child outside their scope by
giving a reason (break-glass): allowed, and the caller audits it as break-glass.

Everything here is a pure function over values: the callers load a child's cases and audit
the decision. Nothing here imports storage or the web.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from icsflow.workflow.errors import PermissionDenied

if TYPE_CHECKING:
    from icsflow.workflow.config import AccessConfig


class Scope(StrEnum):
    ALLOCATED = "allocated"
    TEAM = "team"
    SERVICE = "service"
    ALL = "all"
    NONE = "none"


SCOPE_WORDS = {
    Scope.ALLOCATED: "the children allocated to them",
    Scope.TEAM: "their team's children",
    Scope.SERVICE: "their service's children",
    Scope.ALL: "every child",
    Scope.NONE: "no child",
}

READ = "read"
ACT = "act"
MIN_REASON = 10  # characters of a break-glass reason: "emergency" alone says nothing
MAX_REASON = 500


class CaseLike(Protocol):
    """What the policy reads of a case (``Instance`` has it)."""

    @property
    def id(self) -> str: ...

    @property
    def child(self) -> str | None: ...

    @property
    def data(self) -> Mapping[str, Any]: ...


C = TypeVar("C", bound=CaseLike)


@dataclass(frozen=True)
class Principal:
    """The person (or service) asking: a user name, which is also their engine actor id, a
    role, and the relationship attributes stored with the user."""

    name: str
    role: str
    team: str | None = None
    service: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class RoleRule:
    """How far one role reads and acts, and whether it may break glass."""

    role: str
    read: Scope
    act: Scope
    break_glass: bool = False


@dataclass(frozen=True)
class Relations:
    """Which case fields carry which relationship (``access.*_fields``)."""

    allocation_fields: tuple[str, ...] = ("iro_id", "cpc_id", "chair")
    address_fields: tuple[str, ...] = ("iro_email", "cpc_email")
    team_fields: tuple[str, ...] = ("team", "team_id", "team_manager_email")
    service_fields: tuple[str, ...] = ("service", "service_id")
    team_services: Mapping[str, str] = field(default_factory=dict)


DEFAULT_SCOPES: Mapping[str, Scope] = {
    "iro": Scope.ALLOCATED,
    "cpc": Scope.ALLOCATED,
    "team_manager": Scope.TEAM,
    "social_worker": Scope.TEAM,
    "service_manager": Scope.SERVICE,
    "iro_service_manager": Scope.SERVICE,
    "head_of_service": Scope.SERVICE,
    "director": Scope.SERVICE,
    "admin": Scope.ALL,
}
DEFAULT_BREAK_GLASS = ("team_manager", "service_manager", "iro_service_manager",
                       "head_of_service", "director")


@dataclass(frozen=True)
class ChildFacts:
    """What a child's cases say about who is related to the child."""

    child: str | None
    cases: tuple[str, ...]
    allocated: frozenset[str]
    addresses: frozenset[str]
    teams: frozenset[str]
    services: frozenset[str]


@dataclass(frozen=True)
class Decision:
    """One answer, in words: ``reason`` says which rule allowed or refused and, when refused,
    which relationship is missing. ``break_glass``: allowed only because a reason was given
    (the caller audits it as break-glass). ``may_break_glass``: refused, but this role may
    open the child by giving a reason."""

    allowed: bool
    action: str
    child: str | None
    rule: str
    reason: str
    break_glass: bool = False
    may_break_glass: bool = False
    glass_reason: str | None = None


class AccessDenied(PermissionDenied):
    """The user's relationship to the child does not allow this (the role may still be one
    the event names): the message says which rule and which relationship is missing."""

    def __init__(self, decision: Decision, *, instance_id: str | None = None,
                 event: str | None = None) -> None:
        self.decision = decision
        super().__init__(decision.reason, instance_id=instance_id, event=event)


def _text(value: object) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return text or None


def child_facts(child: str | None, cases: Iterable[CaseLike],
                relations: Relations | None = None) -> ChildFacts:
    """The relationships the child's cases name (all of the child's cases, any process)."""
    rel = relations or Relations()
    ids: list[str] = []
    allocated: set[str] = set()
    addresses: set[str] = set()
    teams: set[str] = set()
    services: set[str] = set()
    for case in cases:
        ids.append(case.id)
        data = case.data or {}
        allocated.update(v for v in (_text(data.get(f)) for f in rel.allocation_fields) if v)
        addresses.update(v.lower() for v in (_text(data.get(f)) for f in rel.address_fields)
                         if v)
        team = next((v for v in (_text(data.get(f)) for f in rel.team_fields) if v), None)
        if team is not None:
            teams.add(team)
            if team in rel.team_services:
                services.add(rel.team_services[team])
        services.update(v for v in (_text(data.get(f)) for f in rel.service_fields) if v)
    return ChildFacts(child, tuple(ids), frozenset(allocated), frozenset(addresses),
                      frozenset(teams), frozenset(services))


def _one_line(text: str) -> str:
    """A typed reason as one line of printable text (no control or format characters that
    could rewrite a terminal showing the audit)."""
    kept = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return " ".join(kept.split())


def _listed(names: Iterable[str]) -> str:
    items = sorted(names)
    if not items:
        return "none"
    return ", ".join(items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")


def _or(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


class AccessPolicy:
    """The rule table and the relationship fields; ``check_*`` answer with a ``Decision``,
    ``require_*`` raise ``AccessDenied``."""

    def __init__(self, rules: Mapping[str, RoleRule] | None = None,
                 relations: Relations | None = None) -> None:
        self.rules = dict(rules) if rules is not None else default_rules()
        self.relations = relations or Relations()

    # -- the questions ------------------------------------------------------------------------

    def check_read(self, principal: Principal, child: str | None,
                   child_cases: Sequence[CaseLike], *,
                   break_glass: str | None = None) -> Decision:
        """May ``principal`` read the record of ``child`` (all of ``child_cases``)?"""
        return self._decide(READ, principal, child, child_cases, break_glass)

    def check_act(self, principal: Principal, case: CaseLike,
                  child_cases: Sequence[CaseLike] = (), *,
                  break_glass: str | None = None) -> Decision:
        """May ``principal`` fire an event on ``case``? ``child_cases`` are all the cases of
        the case's child (the case itself is added if missing). The engine's role checks still
        decide which events the role may fire; this decides on which children."""
        cases = list(child_cases) if case.child else []
        if all(c.id != case.id for c in cases):
            cases.append(case)
        return self._decide(ACT, principal, case.child, cases, break_glass)

    def check_start(self, principal: Principal, child: str | None,
                    child_cases: Sequence[CaseLike], *,
                    break_glass: str | None = None) -> Decision:
        """May ``principal`` start a case for ``child``? A child icsflow holds no case of yet
        has no relationship to check: the role's start rights decide."""
        if child is None or not child_cases:
            rule = self.rule_for(principal.role)
            return Decision(True, ACT, child, self._rule_text(rule, ACT),
                            f"{principal.name} may start a case for a child icsflow holds "
                            "no case of yet (the role's start rights decide)")
        return self._decide(ACT, principal, child, child_cases, break_glass)

    def require_read(self, principal: Principal, child: str | None,
                     child_cases: Sequence[CaseLike], *,
                     break_glass: str | None = None) -> Decision:
        decision = self.check_read(principal, child, child_cases, break_glass=break_glass)
        if not decision.allowed:
            raise AccessDenied(decision)
        return decision

    def require_act(self, principal: Principal, case: CaseLike,
                    child_cases: Sequence[CaseLike] = (), *, event: str | None = None,
                    break_glass: str | None = None) -> Decision:
        decision = self.check_act(principal, case, child_cases, break_glass=break_glass)
        if not decision.allowed:
            raise AccessDenied(decision, instance_id=case.id, event=event)
        return decision

    def sees_everything(self, principal: Principal) -> bool:
        """True when no relationship can narrow what ``principal`` reads (lists need not load
        every child's cases to filter)."""
        scope = self.rule_for(principal.role).read
        return scope is Scope.ALL or (scope is Scope.SERVICE and not principal.service)

    def readable_children(self, principal: Principal,
                          child_cases: Mapping[str, Sequence[CaseLike]]) -> set[str]:
        """The children (keys of ``child_cases``, each with all its cases) ``principal`` may
        read without break-glass: what lists are filtered to."""
        if self.sees_everything(principal):
            return set(child_cases)
        return {child for child, cases in child_cases.items()
                if self.check_read(principal, child, cases).allowed}

    def filter_readable(self, principal: Principal, cases: Iterable[C],
                        child_cases: Mapping[str, Sequence[CaseLike]]) -> list[C]:
        """``cases`` whose child ``principal`` may read (``child_cases``: each child's cases,
        all of them, loaded by the caller); a case without a child is judged on itself."""
        found = list(cases)
        if self.sees_everything(principal):
            return found
        verdict: dict[str, bool] = {}
        kept: list[C] = []
        for case in found:
            if case.child:
                if case.child not in verdict:
                    verdict[case.child] = self.check_read(
                        principal, case.child, child_cases.get(case.child) or [case]).allowed
                ok = verdict[case.child]
            else:
                ok = self.check_read(principal, None, [case]).allowed
            if ok:
                kept.append(case)
        return kept

    def rule_for(self, role: str) -> RoleRule:
        return self.rules.get(role) or RoleRule(role, Scope.NONE, Scope.NONE)

    # -- deciding -----------------------------------------------------------------------------

    def _decide(self, action: str, principal: Principal, child: str | None,
                cases: Sequence[CaseLike], glass: str | None) -> Decision:
        rule = self.rule_for(principal.role)
        scope = rule.read if action == READ else rule.act
        facts = child_facts(child, cases, self.relations)
        ok, why = self._related(scope, principal, facts)
        rule_text = self._rule_text(rule, action)
        if ok:
            return Decision(True, action, child, rule_text, why)
        verb = "read" if action == READ else "act on"
        refused = f"{principal.name} ({principal.role}) may not {verb} {_whose(facts)}: {why}"
        if not rule.break_glass:
            return Decision(False, action, child, rule_text, refused)
        reason = _one_line(glass or "")
        if not reason:
            return Decision(False, action, child, rule_text, refused + "; as a manager they "
                            "may open it by giving a reason (break-glass, audited)",
                            may_break_glass=True)
        if len(reason) < MIN_REASON or len(reason) > MAX_REASON:
            return Decision(False, action, child, rule_text, refused + f"; a break-glass "
                            f"reason needs {MIN_REASON}-{MAX_REASON} characters saying why",
                            may_break_glass=True)
        return Decision(True, action, child, rule_text,
                        f"break-glass by {principal.name} ({principal.role}) on "
                        f"{_whose(facts)}: {reason}", break_glass=True, glass_reason=reason)

    def _related(self, scope: Scope, p: Principal, facts: ChildFacts) -> tuple[bool, str]:
        rel = self.relations
        if scope is Scope.ALL:
            return True, f"role {p.role} may see every child (access.rules)"
        if scope is Scope.NONE:
            return False, (f"role {p.role} has no access rule that reaches any child "
                           "(access.rules)")
        if scope is Scope.ALLOCATED:
            if p.name in facts.allocated:
                return True, f"{p.name} is named in {_or(rel.allocation_fields)} of a case"
            email = (p.email or "").strip().lower()
            if email and email in facts.addresses:
                return True, f"{p.name}'s address is in {_or(rel.address_fields)} of a case"
            mine = (f"nor their address {p.email}" if p.email else
                    "and they have no email address on record")
            return False, (f"the role reaches only {SCOPE_WORDS[scope]}, and no case of this "
                           f"child names {p.name} in {_or(rel.allocation_fields)} ({mine} "
                           f"to match {_or(rel.address_fields)})")
        if scope is Scope.TEAM:
            if not p.team:
                return False, (f"the role reaches only {SCOPE_WORDS[scope]}, and {p.name} has "
                               f"no team (icsflow user set {p.name} --team TEAM)")
            if p.team in facts.teams:
                return True, f"the child is in {p.name}'s team {p.team}"
            return False, (f"the role reaches only {SCOPE_WORDS[scope]}: {p.name}'s team is "
                           f"{p.team}, the child's is {_listed(facts.teams)} "
                           f"({_or(rel.team_fields)})")
        if not p.service:
            return True, (f"{p.name} has no service set, so their service is every child "
                          "(access.rules)")
        if p.service in facts.services:
            return True, f"the child is in {p.name}'s service {p.service}"
        return False, (f"the role reaches only {SCOPE_WORDS[scope]}: {p.name}'s service is "
                       f"{p.service}, the child's is {_listed(facts.services)} "
                       f"({_or(rel.service_fields)}, or access.team_services)")

    @staticmethod
    def _rule_text(rule: RoleRule, action: str) -> str:
        scope = rule.read if action == READ else rule.act
        return f"{rule.role}: {action} {scope.value}"


def _whose(facts: ChildFacts) -> str:
    if facts.child:
        return f"child {facts.child}"
    return f"case {facts.cases[0]}" if facts.cases else "this case"


def default_rules(scopes: Mapping[str, Scope] | None = None,
                  break_glass: Iterable[str] | None = None) -> dict[str, RoleRule]:
    """The documented defaults, with ``scopes`` (role -> scope) and ``break_glass`` roles
    replacing theirs."""
    chosen = dict(DEFAULT_SCOPES)
    chosen.update(scopes or {})
    glass = set(DEFAULT_BREAK_GLASS if break_glass is None else break_glass)
    roles = set(chosen) | glass
    return {r: RoleRule(r, chosen.get(r, Scope.NONE), chosen.get(r, Scope.NONE), r in glass)
            for r in sorted(roles)}


def policy_from(config: AccessConfig) -> AccessPolicy:
    """The policy the ``access`` section of the configuration describes."""
    scopes = {role: Scope(read) for role, (read, _act) in config.rules.items()}
    rules = default_rules(scopes, config.break_glass_roles)
    for role, (read, act) in config.rules.items():
        rules[role] = RoleRule(role, Scope(read), Scope(act), rules[role].break_glass)
    relations = Relations(config.allocation_fields, config.address_fields, config.team_fields,
                          config.service_fields, dict(config.team_services))
    return AccessPolicy(rules, relations)


__all__ = ["Scope", "Principal", "RoleRule", "Relations", "ChildFacts", "Decision",
           "AccessDenied", "AccessPolicy", "CaseLike", "child_facts", "default_rules",
           "policy_from", "DEFAULT_SCOPES", "DEFAULT_BREAK_GLASS", "SCOPE_WORDS", "READ", "ACT",
           "MIN_REASON", "MAX_REASON"]
