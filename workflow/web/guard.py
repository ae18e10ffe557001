"""The access policy and the audit, as the pages and the API use them.

Every route that shows a child's data asks here first (``read_child``/``read_case``), every
event is checked here before the engine is called (``act``), and every list is cut to the
children the user may read (``readable``) and its reading audited with all of those children
(``bulk_read``). Decisions come from ``workflow/access.py``; each read, refusal and
break-glass is appended to the audit chain (``storage/audit.py``) before the answer leaves,
so a read that could not be audited fails instead of going unrecorded.

Break-glass: the API takes the reason in an ``X-Break-Glass-Reason`` header on each request;
the pages take it once in a form on the refusal page and keep a grant for that session and
child for ``access.break_glass_minutes``. Both are audited as ``break_glass`` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import Table, select
from starlette.requests import Request

from icsflow.storage import audit as kinds
from icsflow.storage.audit import AuditEntry
from icsflow.storage.sessions import digest_of
from icsflow.storage.tables import InstanceRow
from icsflow.workflow.access import AccessPolicy, CaseLike, Decision
from icsflow.workflow.commands import sql_engine
from icsflow.workflow.web.auth import User

if TYPE_CHECKING:  # context.py builds the Web and its Guard: it imports this module
    from icsflow.workflow.web.context import Web

I = cast(Table, InstanceRow.__table__)  # noqa: E741
GLASS_HEADER = "x-break-glass-reason"
T = TypeVar("T")


class AccessRefused(Exception):
    """The policy refused a read or an act; the handlers show ``decision.reason`` (403)."""

    def __init__(self, decision: Decision, child: str | None, case_id: str | None) -> None:
        self.decision = decision
        self.child = child
        self.case_id = case_id
        super().__init__(decision.reason)


@dataclass(frozen=True)
class CaseFacts:
    """What the policy reads of a case, loaded without its history."""

    id: str
    child: str | None
    data: Mapping[str, Any]


def glass_key(user: User) -> str:
    """Which grants a user's requests share: their session's, or (token, proxy) their own."""
    return digest_of(user.session_id or f"{user.via}:{user.name}")


def child_key(child: str | None, case_id: str | None) -> str:
    return child if child else f"case:{case_id}"


class Guard:
    """Policy checks and audit rows for one application (``web`` is its ``Web``)."""

    def __init__(self, web: Web) -> None:
        self.web = web

    @property
    def policy(self) -> AccessPolicy:
        return self.web.settings.access

    # -- loading what the policy reads ------------------------------------------------------

    def cases_of(self, children: Iterable[str]) -> dict[str, list[CaseLike]]:
        """Every case of each child (id, child, data only), in one query per 500 children."""
        wanted = sorted({c for c in children if c})
        found: dict[str, list[CaseLike]] = {c: [] for c in wanted}
        with sql_engine(self.web.engine).connect() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                for r in conn.execute(select(I.c.id, I.c.child, I.c.data)
                                      .where(I.c.child.in_(chunk))):
                    found[r.child].append(CaseFacts(r.id, r.child, r.data or {}))
        return found

    def facts_of(self, case_ids: Iterable[str]) -> dict[str, CaseLike]:
        wanted = sorted(set(case_ids))
        found: dict[str, CaseLike] = {}
        with sql_engine(self.web.engine).connect() as conn:
            for start in range(0, len(wanted), 500):
                for r in conn.execute(select(I.c.id, I.c.child, I.c.data)
                                      .where(I.c.id.in_(wanted[start:start + 500]))):
                    found[r.id] = CaseFacts(r.id, r.child, r.data or {})
        return found

    # -- single reads and acts --------------------------------------------------------------

    def _glass(self, request: Request, user: User, key: str) -> str | None:
        given = request.headers.get(GLASS_HEADER)
        if given:
            return given
        grant: str | None = self.web.sessions.granted(glass_key(user), key,
                                                      self.web.now_wall())
        return grant

    def read_child(self, request: Request, user: User, child: str,
                   cases: Sequence[CaseLike], purpose: str,
                   case_id: str | None = None) -> Decision:
        """May ``user`` see ``child`` (all of ``cases``)? Audited either way; refused raises."""
        glass = self._glass(request, user, child)
        decision: Decision = self.policy.check_read(user.principal, child, cases,
                                                    break_glass=glass)
        self._audit_decision(request, user, decision, purpose, (child,), case_id)
        return decision

    def read_case(self, request: Request, user: User, inst: CaseLike, purpose: str) -> Decision:
        if inst.child:
            cases = self.cases_of([inst.child]).get(inst.child) or [inst]
            return self.read_child(request, user, inst.child, cases, purpose, inst.id)
        glass = self._glass(request, user, child_key(None, inst.id))
        decision: Decision = self.policy.check_read(user.principal, None, [inst],
                                                    break_glass=glass)
        self._audit_decision(request, user, decision, purpose, (), inst.id)
        return decision

    def act(self, request: Request, user: User, inst: CaseLike, event: str) -> Decision:
        """Checked before the engine is asked; refused raises (audited)."""
        cases = self.cases_of([inst.child]).get(inst.child, []) if inst.child else []
        glass = self._glass(request, user, child_key(inst.child, inst.id))
        decision: Decision = self.policy.check_act(user.principal, inst, cases,
                                                   break_glass=glass)
        if not decision.allowed:
            self._audit_decision(request, user, decision, f"fire {event}",
                                 (inst.child,) if inst.child else (), inst.id)
        return decision

    def acted(self, request: Request, user: User, inst: CaseLike, event: str,
              decision: Decision | None, outcome: str = "") -> None:
        """An event fired (or refused by the engine: ``outcome`` says so)."""
        kind = kinds.REFUSED if outcome else kinds.ACT
        detail = outcome or (f"break-glass: {decision.glass_reason}"
                             if decision is not None and decision.break_glass else None)
        self.record(request, user, kind, f"fire {event}",
                    (inst.child,) if inst.child else (), inst.id, detail)

    def _audit_decision(self, request: Request, user: User, decision: Decision, purpose: str,
                        children: Sequence[str], case_id: str | None) -> None:
        if not decision.allowed:
            self.record(request, user, kinds.REFUSED, purpose, children, case_id,
                        decision.reason)
            raise AccessRefused(decision, children[0] if children else None, case_id)
        if decision.break_glass:
            self.record(request, user, kinds.BREAK_GLASS, purpose, children, case_id,
                        decision.glass_reason)
        elif decision.action == "read":
            self.record(request, user, kinds.READ, purpose, children, case_id)

    def open_glass(self, request: Request, user: User, child: str | None,
                   case_id: str | None, reason: str) -> Decision:
        """The page's "open with a reason": a grant for this session and child, audited."""
        key = child_key(child, case_id)
        cases: Sequence[CaseLike]
        if child:
            cases = self.cases_of([child]).get(child, [])
        else:
            cases = list(self.facts_of([case_id or ""]).values())
        decision: Decision = self.policy.check_read(user.principal, child, cases,
                                                    break_glass=reason)
        if not decision.allowed:
            self.record(request, user, kinds.REFUSED, "break-glass", (child,) if child else (),
                        case_id, decision.reason)
            raise AccessRefused(decision, child, case_id)
        now = self.web.now_wall()
        minutes = self.web.settings.break_glass_minutes
        if decision.break_glass:
            self.web.sessions.grant(glass_key(user), user.name, key, decision.glass_reason or "",
                                    now, now + timedelta(minutes=minutes))
            self.record(request, user, kinds.BREAK_GLASS, f"break-glass opened for {minutes} "
                        "minutes", (child,) if child else (), case_id, decision.glass_reason)
        return decision

    # -- lists ------------------------------------------------------------------------------

    def readable(self, user: User, items: Sequence[T], child_of: Callable[[T], str | None],
                 case_of: Callable[[T], str]) -> list[T]:
        """``items`` (cases, Today rows, report items ...) whose child the user may read;
        ``child_of(item)`` and ``case_of(item)`` name its child and case."""
        principal = user.principal
        if self.policy.sees_everything(principal):
            return list(items)
        children = {c for c in map(child_of, items) if c}
        allowed = self.policy.readable_children(principal, self.cases_of(children))
        loose = [case_of(i) for i in items if not child_of(i)]
        facts = self.facts_of(loose) if loose else {}
        alone = {cid for cid, f in facts.items()
                 if self.policy.check_read(principal, None, [f]).allowed}
        return [i for i in items if (child_of(i) in allowed if child_of(i)
                                     else case_of(i) in alone)]

    def bulk_read(self, request: Request, user: User, purpose: str,
                  children: Iterable[str | None], case_ids: Iterable[str] = ()) -> None:
        """One audit row naming every child a list showed (cases without a child by id)."""
        named = tuple(dict.fromkeys(c for c in children if c))
        loose = tuple(dict.fromkeys(case_ids))
        detail = f"{len(named)} children" + (f"; cases without a child: {', '.join(loose)}"
                                             if loose else "")
        self.record(request, user, kinds.READ, purpose, named, None, detail)

    # -- the audit --------------------------------------------------------------------------

    def record(self, request: Request | None, user: User | None, kind: str, purpose: str,
               children: Sequence[str] = (), case_id: str | None = None,
               detail: str | None = None, *, name: str | None = None,
               role: str | None = None) -> None:
        ip = request.client.host if request is not None and request.client else None
        via = f" [{user.credential or user.via}]" if user else ""
        self.web.audit.append(AuditEntry(
            self.web.now_wall(), name or (user.name if user else "-"),
            role or (user.role if user else "-"), kind, purpose + via, tuple(children),
            case_id, detail, ip))


__all__ = ["Guard", "AccessRefused", "CaseFacts", "GLASS_HEADER", "glass_key", "child_key"]
