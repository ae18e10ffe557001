"""Meaning-level checks of a loaded definition: every name resolves, every state can be reached
and left, and every timer can actually do what it says.

The loader already refused malformed YAML; this module catches the mistakes that load fine but
misbehave in production (a reminder nobody receives, an escalation event that is not allowed in
the state where its timer fires, a case stuck in a state nobody can leave). Each problem names
the offender, the file and line, and the names that would have been accepted.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from icsflow.definitions.errors import Problem
from icsflow.definitions.expressions import (
    CONTEXT_NAMES,
    REACTION_NAMES,
    TIMER_ONLY_NAMES,
    ExpressionError,
    NamesUsed,
    expression_names,
    template_names,
)
from icsflow.definitions.model import (
    AnchorKind,
    Definition,
    Expr,
    FieldType,
    Notify,
    Source,
    TimerPosition,
)


def _known(names: Iterable[str], wrong: str | None = None) -> str:
    listed = list(dict.fromkeys(names))
    text = f"(known: {', '.join(listed) if listed else 'none'})"
    if wrong is not None:
        close = difflib.get_close_matches(wrong, listed, n=1)
        if close:
            text += f"; did you mean '{close[0]}'?"
    return text


class _Checker:
    def __init__(self, defn: Definition) -> None:
        self.d = defn
        self.problems: list[Problem] = []
        self.states = [s.name for s in defn.states]
        self.roles = [r.name for r in defn.roles]
        self.fields = [f.name for f in defn.data]
        self.events = list(defn.events)
        self.templates = [t.name for t in defn.templates]
        self.deadlines = [d.name for d in defn.deadlines]

    def add(self, source: Source, message: str) -> None:
        self.problems.append(Problem(source, message))

    def ref(self, source: Source, what: str, kind: str, name: str, known: list[str]) -> bool:
        if name in known:
            return True
        self.add(source, f"{what} {kind} '{name}' {_known(known, name)}")
        return False

    # --- names ------------------------------------------------------------------------------

    def names_used(self, used: NamesUsed, source: Source, what: str, *,
                   in_timer: bool = False, in_reaction: bool = False) -> None:
        known = CONTEXT_NAMES | REACTION_NAMES if in_reaction else CONTEXT_NAMES
        for var in sorted(used.variables - known):
            self.add(source, f"{what} uses unknown variable '{var}' "
                             f"{_known(sorted(known), var)}")
        if not in_timer:  # `deadline` and `timer` only exist when a timer fires
            for var in sorted(used.variables & TIMER_ONLY_NAMES):
                self.add(source, f"{what} uses '{var}', which only a timer's own "
                                 "notification has (not a transition's); use deadlines.NAME")
        for fname in sorted(used.data_fields - set(self.fields)):
            self.add(source, f"{what} uses undeclared data field 'data.{fname}' "
                             f"{_known(self.fields, fname)}")
        for dname in sorted(used.deadlines - set(self.deadlines)):
            self.add(source, f"{what} uses undeclared deadline '{dname}' "
                             f"{_known(self.deadlines, dname)}")

    def expr(self, e: Expr | None, what: str, *, in_timer: bool = False,
             in_reaction: bool = False) -> None:
        if e is None:
            return
        try:
            used = expression_names(e.text)
        except ExpressionError as exc:
            self.add(e.source, f"{what}: {exc}")
            return
        self.names_used(used, e.source, f"{what} {e.text!r}", in_timer=in_timer,
                        in_reaction=in_reaction)

    # --- signals ----------------------------------------------------------------------------

    def check_signals(self) -> None:
        """Every signal sent or heard is declared; reactions start or fire what exists and
        give a started case its required data; no reaction can set off itself again."""
        d = self.d
        declared = list(d.signals)
        emits = [("start_signals", s) for s in d.start_signals] + [
            (f"transition '{t.event}'", s) for t in d.transitions for s in t.signals]
        for what, s in emits:
            self.ref(s.source, f"{what} sends", "unknown signal", s.name, declared)
            self.expr(s.when, f"when of signal '{s.name}' of {what}")
        for i, r in enumerate(d.reactions, 1):
            what = f"reaction #{i} (signal '{r.signal}')"
            self.ref(r.source, f"{what} hears", "unknown signal", r.signal, declared)
            if r.fire is not None:
                self.ref(r.source, f"{what} fires", "unknown event", r.fire, self.events)
            for e in r.when:
                self.expr(e, f"when of {what}", in_reaction=True)
            for fname, e in r.set:
                self.ref(e.source, f"{what} sets", "unknown data field", fname, self.fields)
                self.expr(e, f"set '{fname}' of {what}", in_reaction=True)
            if r.start:
                missing = [f.name for f in d.data if f.required and f.name not in dict(r.set)]
                if missing:
                    self.add(r.source, f"{what} starts a case but does not set its required "
                                       f"data field(s) {', '.join(missing)}")
            elif r.set:
                self.add(r.source, f"{what}: 'set' only applies to 'start: true' (a fired "
                                   "event takes no data from a signal)")
        for problem in signal_loops([d]):
            self.problems.append(problem)

    def notify(self, n: Notify, what: str, *, in_timer: bool = False) -> None:
        for role in n.roles:
            if self.ref(n.source, f"notify of {what} goes to", "unknown role", role, self.roles):
                r = self.d.role_map[role]
                if r.address_field is None and not r.directory:
                    self.add(n.source, f"notify of {what} goes to role '{role}', which has no "
                                       "address: give the role 'address: FIELD' (an email data "
                                       "field) or 'directory: true'")
        self.ref(n.source, f"notify of {what} uses", "unknown template", n.template,
                 self.templates)
        self.expr(n.when, f"when of notify of {what}", in_timer=in_timer)

    def check_names(self) -> None:
        d = self.d
        if d.initial not in self.states:
            self.add(d.source, f"initial state '{d.initial}' is not a state "
                               f"{_known(self.states, d.initial)}")
        elif d.is_final(d.initial):
            self.add(d.state_map[d.initial].source,
                     f"initial state '{d.initial}' is final: a case would end as it starts")
        for role in d.roles:
            if role.address_field is None:
                continue
            f = d.field_map.get(role.address_field)
            if f is None:
                self.add(role.source, f"role '{role.name}' has address from unknown data "
                                      f"field '{role.address_field}' "
                                      f"{_known(self.fields, role.address_field)}")
            elif f.type is not FieldType.EMAIL:
                self.add(role.source, f"role '{role.name}' has address from data field "
                                      f"'{f.name}' of type {f.type.value}; it must be of type "
                                      "email")
        for role_name in d.start_roles:
            self.ref(d.source, "start_roles has", "unknown role", role_name, self.roles)
        for t in d.transitions:
            what = f"transition '{t.event}'"
            if not t.from_any:
                for s in t.sources:
                    self.ref(t.source, f"{what} comes from", "unknown state", s, self.states)
            if t.to is not None:
                self.ref(t.source, f"{what} goes to", "unknown state", t.to, self.states)
            for role_name in t.roles:
                self.ref(t.source, f"{what} allows", "unknown role", role_name, self.roles)
            for e in t.when:
                self.expr(e, f"when of {what}")
            for rule in t.set:
                self.ref(rule.source, f"{what} sets", "unknown data field", rule.name,
                         self.fields)
            for fname, e in t.record:
                self.ref(e.source, f"{what} records", "unknown data field", fname, self.fields)
                self.expr(e, f"record '{fname}' of {what}")
            for n in t.notify:
                self.notify(n, what)
        for dl in d.deadlines:
            what = f"deadline '{dl.name}'"
            for s in dl.live_in:
                self.ref(dl.source, f"{what} is live in", "unknown state", s, self.states)
            if not dl.live_in:
                self.add(dl.source, f"{what} needs 'live_in': the states where it runs")
            for ev in dl.cancelled_by:
                self.ref(dl.source, f"{what} is cancelled by", "unknown event", ev, self.events)
            for ev in dl.met_by:
                self.ref(dl.source, f"{what} is met by", "unknown event", ev, self.events)
                if ev in dl.cancelled_by:
                    self.add(dl.source, f"{what}: event '{ev}' cannot both meet and cancel it")
            for drule in dl.rules:
                self.expr(drule.when, f"when of {what}")
                a = drule.anchor
                ref = a.ref or ""
                if a.kind is AnchorKind.STATE:
                    self.ref(drule.source, f"{what} is anchored on", "unknown state", ref,
                             self.states)
                elif a.kind is AnchorKind.EVENT:
                    self.ref(drule.source, f"{what} is anchored on", "unknown event", ref,
                             self.events)
                elif a.kind is AnchorKind.DEADLINE:
                    if ref == dl.name:
                        self.add(drule.source, f"{what} is anchored on itself")
                    else:
                        self.ref(drule.source, f"{what} is anchored on", "unknown deadline", ref,
                                 self.deadlines)
                elif a.kind is AnchorKind.FIELD:
                    f = d.field_map.get(ref)
                    if f is None:
                        self.add(drule.source, f"{what} is anchored on unknown data field "
                                              f"'{ref}' {_known(self.fields, ref)}")
                    elif f.type not in (FieldType.DATE, FieldType.DATETIME):
                        self.add(drule.source, f"{what} is anchored on data field '{ref}' of "
                                              f"type {f.type.value}; an anchor field must be "
                                              "of type date or datetime")
        seen_timers: dict[str, Source] = {}
        for tm in d.timers:
            what = f"timer '{tm.name}'"
            if tm.name in seen_timers:
                self.add(tm.source, f"duplicate timer name '{tm.name}' (first on line "
                                    f"{seen_timers[tm.name].line})")
            seen_timers.setdefault(tm.name, tm.source)
            if tm.deadline is not None:
                self.ref(tm.source, f"{what} hangs off", "unknown deadline", tm.deadline,
                         self.deadlines)
            if tm.state is not None:
                self.ref(tm.source, f"{what} hangs off", "unknown state", tm.state, self.states)
            if tm.fire is not None:
                self.ref(tm.source, f"{what} fires", "unknown event", tm.fire, self.events)
            for n in tm.notify:
                self.notify(n, what, in_timer=True)
        sent_by_transitions = {n.template for t in d.transitions for n in t.notify}
        for tpl in d.templates:
            for part, text in (("subject", tpl.subject), ("body", tpl.body)):
                what = f"{part} of template '{tpl.name}'"
                try:
                    used = template_names(text)
                except ExpressionError as exc:
                    self.add(tpl.source, f"{what}: {exc}")
                    continue
                self.names_used(used, tpl.source, what,
                                in_timer=tpl.name not in sent_by_transitions)

    # --- timers -----------------------------------------------------------------------------

    def check_timers(self) -> None:
        d = self.d
        fired = {t.fire for t in d.timers if t.fire} | {r.fire for r in d.reactions if r.fire}
        reported: set[str] = set()
        for t in d.transitions:
            if t.timer_only and t.event not in fired and t.event not in reported:
                reported.add(t.event)
                self.add(t.source, f"event '{t.event}' has no roles, so only a timer may fire "
                                   "it, but no timer fires it: give it 'roles' or add a timer "
                                   f"with 'fire: {t.event}'")
        for tm in d.timers:
            if tm.fire is not None and tm.fire in self.events:
                missing = [s for s in self.d.timer_live_states(tm)
                           if s in d.state_map and not d.transitions_for(tm.fire, s)]
                if missing:
                    self.add(tm.source, f"timer '{tm.name}' fires '{tm.fire}', which is not "
                                        f"allowed in state(s) {', '.join(missing)} where the "
                                        "timer is live, so it would silently never fire there "
                                        f"(add {', '.join(missing)} to the 'from' of "
                                        f"'{tm.fire}')")
            dl = d.deadline_map.get(tm.deadline or "")
            if (tm.position is TimerPosition.BEFORE and dl is not None and tm.offset is not None):
                for rule in dl.rules:
                    if (rule.sign == 1 and rule.offset.unit == tm.offset.unit
                            and tm.offset.amount >= rule.offset.amount):
                        self.add(tm.source, f"timer '{tm.name}' is {tm.offset} before deadline "
                                            f"'{dl.name}', which is only {rule.offset} after "
                                            f"its anchor ({rule.anchor}): it would be due "
                                            "before the deadline even starts")
                        break

    # --- graph ------------------------------------------------------------------------------

    def check_graph(self) -> None:
        d = self.d
        if d.initial not in d.state_map:
            return
        reachable = {d.initial}
        frontier = [d.initial]
        while frontier:
            s = frontier.pop()
            for t in d.transitions:
                if s in t.sources and t.to is not None and t.to not in reachable \
                        and t.to in d.state_map:
                    reachable.add(t.to)
                    frontier.append(t.to)
        for st in d.states:
            if st.name not in reachable:
                self.add(st.source, f"state '{st.name}' cannot be reached from the initial "
                                    f"state '{d.initial}' (no transition leads to it)")
        timed = {tm.state for tm in d.timers if tm.state}
        for tm in d.timers:
            dl = d.deadline_map.get(tm.deadline or "")
            if dl is not None:
                timed.update(dl.live_in)
        for st in d.states:
            if st.final:
                continue
            leaving = [t for t in d.transitions
                       if st.name in t.sources and t.to is not None and t.to != st.name]
            if not leaving:
                self.add(st.source, f"state '{st.name}' is not final but no transition leaves "
                                    "it: mark it 'final: true' or add a way out")
                continue
            role_events = [t for t in d.transitions if st.name in t.sources and t.roles]
            heard = [r for r in d.reactions if r.fire and d.transitions_for(r.fire, st.name)]
            if not role_events and not heard and st.name not in timed:
                self.add(st.source, f"state '{st.name}' waits for nothing: no role may fire an "
                                    "event in it and no timer runs in it, so a case would stay "
                                    "there forever")

    def run(self) -> list[Problem]:
        self.check_names()
        self.check_signals()
        self.check_timers()
        self.check_graph()
        return sorted(set(self.problems))


def validate(defn: Definition) -> list[Problem]:
    """Every meaning-level problem of ``defn``, sorted by line (empty when it is sound)."""
    return _Checker(defn).run()



def signal_loops(defns: Iterable[Definition]) -> list[Problem]:
    """Reactions that could set each other off for ever: signal S makes a definition start (its
    start signals) or fire an event (that event's signals), which sends S again. One problem per
    loop, at the reaction that closes it."""
    defs = list(defns)
    # signal -> [(reaction, definition, signals that reaction may send)]
    edges: dict[str, list[tuple[Source, str, tuple[str, ...]]]] = {}
    for d in defs:
        for r in d.reactions:
            sent = d.start_signals if r.start else d.signals_of(r.fire or "")
            edges.setdefault(r.signal, []).append(
                (r.source, f"{d.name} {'starts' if r.start else 'fires ' + (r.fire or '')}",
                 tuple(dict.fromkeys(s.name for s in sent))))
    problems: list[Problem] = []
    reported: set[Source] = set()

    def walk(signal: str, path: list[str], seen: set[str]) -> None:
        for source, doing, sent in edges.get(signal, []):
            for nxt in sent:
                if nxt in seen:
                    if source not in reported:
                        reported.add(source)
                        chain = " -> ".join([*path, f"{doing} -> {nxt}"])
                        problems.append(Problem(source, f"signal loop that could never end: "
                                                        f"{chain}"))
                    continue
                walk(nxt, [*path, f"{doing} -> {nxt}"], seen | {nxt})

    for start in sorted(edges):
        walk(start, [start], {start})
    return problems


__all__ = ["validate", "signal_loops"]
