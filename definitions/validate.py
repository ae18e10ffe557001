"""Meaning-level checks of a loaded definition: every name resolves, every state can be reached
and left, and every timer can actually do what it says.

The loader already refused malformed YAML; this module catches the mistakes that load fine but
misbehave in production (a reminder nobody receives, an escalation event that is not allowed in
the state where its timer fires, a case stuck in a state nobody can leave). Each problem names
the offender, the file and line, and the names that would have been accepted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from icsflow.definitions.errors import Places, Problem, did_you_mean
from icsflow.definitions.expressions import (
    CONTEXT_NAMES,
    REACTION_NAMES,
    TIMER_ONLY_NAMES,
    ExpressionError,
    NamesUsed,
    constant_limit_problems,
    expression_names,
    name_lines,
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
        text += did_you_mean(wrong, listed)
    return text


class _Checker:
    def __init__(self, defn: Definition, places: Places | None = None) -> None:
        self.d = defn
        self.places = places or Places()
        self.problems: list[Problem] = []
        self.states = [s.name for s in defn.states]
        self.roles = [r.name for r in defn.roles]
        self.fields = [f.name for f in defn.data]
        self.events = list(defn.events)
        self.templates = [t.name for t in defn.templates]
        self.deadlines = [d.name for d in defn.deadlines]

    def add(self, source: Source, message: str) -> None:
        self.problems.append(Problem(source, message))

    def at(self, owner: Source, key: str, value: object = "") -> Source:
        """Where ``owner``'s ``key`` (the name ``value`` in it) was written."""
        return self.places.at(owner, key, value)

    def ref(self, source: Source, what: str, kind: str, name: str, known: list[str]) -> bool:
        if name in known:
            return True
        self.add(source, f"{what} {kind} '{name}' {_known(known, name)}")
        return False

    def readonly(self, source: Source, what: str, verb: str, name: str) -> None:
        """A read-only field is given at the start only: no transition may change it."""
        if self.d.field_map[name].readonly:
            self.add(source, f"{what} {verb} data field '{name}', which is readonly (given "
                             "when the case starts, never changed after); remove it here or "
                             "drop 'readonly: true' from the field")

    # --- names ------------------------------------------------------------------------------

    def names_used(self, used: NamesUsed, source: Source, what: str, *,
                   in_timer: bool = False, in_reaction: bool = False,
                   where: Callable[[str], Source] | None = None) -> None:
        """``where(name)`` (for a template) gives the line inside its text; else ``source``."""
        at = where or (lambda name: source)
        known = CONTEXT_NAMES | REACTION_NAMES if in_reaction else CONTEXT_NAMES
        for var in sorted(used.variables - known):
            self.add(at(var), f"{what} uses unknown variable '{var}' "
                              f"{_known(sorted(known), var)}")
        if not in_timer:  # `deadline` and `timer` only exist when a timer fires
            for var in sorted(used.variables & TIMER_ONLY_NAMES):
                self.add(at(var), f"{what} uses '{var}', which only a timer's own "
                                  "notification has (not a transition's); use deadlines.NAME")
        for fname in sorted(used.data_fields - set(self.fields)):
            self.add(at(f"data.{fname}"), f"{what} uses undeclared data field 'data.{fname}' "
                                          f"{_known(self.fields, fname)}")
        for dname in sorted(used.deadlines - set(self.deadlines)):
            self.add(at(f"deadlines.{dname}"), f"{what} uses undeclared deadline '{dname}' "
                                               f"{_known(self.deadlines, dname)}")

    def template_place(self, owner: Source, part: str, text: str) -> Callable[[str], Source]:
        """Where a template uses a name: that line of a "|" block, else the value itself."""
        value = self.at(owner, part)
        first = self.places.found.get((owner, f"{part} text", ""))
        if first is None:
            return lambda name: value
        lines = name_lines(text)
        text_lines = text.splitlines()

        def where(name: str) -> Source:
            if name not in lines:
                return value
            line = lines[name]
            word = re.search(rf"\b{re.escape(name.split('.')[-1])}\b",
                             text_lines[line - 1] if line <= len(text_lines) else "")
            column = first.column + word.start() if word else 0  # first.column: 1 + indent
            return Source(first.file, first.line + line - 1, column)

        return where

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
        self.limits(e.text, e.source, f"{what} {e.text!r}", expression=True)

    def limits(self, text: str, source: Source, what: str, *, expression: bool) -> None:
        """Constant parts too large for the sandbox (``9**(9**9)``): refused now, not at the
        first firing inside an engine transaction."""
        for reason in constant_limit_problems(text, expression=expression):
            self.add(source, f"{what} is refused: {reason}")

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
            if self.ref(self.at(n.source, "to", role), f"notify of {what} goes to",
                        "unknown role", role, self.roles):
                r = self.d.role_map[role]
                if r.address_field is None and not r.directory:
                    self.add(self.at(n.source, "to", role),
                             f"notify of {what} goes to role '{role}', which has no address: "
                             "give the role 'address: FIELD' (an email data field) or "
                             "'directory: true'")
        self.ref(self.at(n.source, "template"), f"notify of {what} uses", "unknown template",
                 n.template, self.templates)
        self.expr(n.when, f"when of notify of {what}", in_timer=in_timer)

    def check_names(self) -> None:
        d = self.d
        if d.initial not in self.states:
            self.add(self.at(d.source, "initial"), f"initial state '{d.initial}' is not a "
                                                   f"state {_known(self.states, d.initial)}")
        elif d.is_final(d.initial):
            self.add(d.state_map[d.initial].source,
                     f"initial state '{d.initial}' is final: a case would end as it starts")
        for role in d.roles:
            if role.address_field is None:
                continue
            f = d.field_map.get(role.address_field)
            if f is None:
                self.add(self.at(role.source, "address"),
                         f"role '{role.name}' has address from unknown data "
                         f"field '{role.address_field}' "
                         f"{_known(self.fields, role.address_field)}")
            elif f.type is not FieldType.EMAIL:
                self.add(self.at(role.source, "address"),
                         f"role '{role.name}' has address from data field "
                         f"'{f.name}' of type {f.type.value}; it must be of type "
                         "email")
        for role_name in d.start_roles:
            self.ref(self.at(d.source, "start_roles", role_name), "start_roles has",
                     "unknown role", role_name, self.roles)
        for t in d.transitions:
            what = f"transition '{t.event}'"
            if not t.from_any:
                for s in t.sources:
                    self.ref(self.at(t.source, "from", s), f"{what} comes from",
                             "unknown state", s, self.states)
            if t.to is not None:
                self.ref(self.at(t.source, "to"), f"{what} goes to", "unknown state", t.to,
                         self.states)
            for role_name in t.roles:
                self.ref(self.at(t.source, "roles", role_name), f"{what} allows",
                         "unknown role", role_name, self.roles)
            for e in t.when:
                self.expr(e, f"when of {what}")
            for rule in t.set:
                if self.ref(rule.source, f"{what} sets", "unknown data field", rule.name,
                            self.fields):
                    self.readonly(rule.source, what, "sets", rule.name)
            for fname, e in t.record:
                place = self.places.found.get((t.source, "record", fname), e.source)
                if self.ref(place, f"{what} records", "unknown data field", fname, self.fields):
                    self.readonly(place, what, "records", fname)
                self.expr(e, f"record '{fname}' of {what}")
            for n in t.notify:
                self.notify(n, what)
        for dl in d.deadlines:
            what = f"deadline '{dl.name}'"
            for s in dl.live_in:
                self.ref(self.at(dl.source, "live_in", s), f"{what} is live in",
                         "unknown state", s, self.states)
            if not dl.live_in:
                self.add(dl.source, f"{what} needs 'live_in': the states where it runs")
            for ev in dl.cancelled_by:
                self.ref(self.at(dl.source, "cancelled_by", ev), f"{what} is cancelled by",
                         "unknown event", ev, self.events)
            for ev in dl.met_by:
                self.ref(self.at(dl.source, "met_by", ev), f"{what} is met by",
                         "unknown event", ev, self.events)
                if ev in dl.cancelled_by:
                    self.add(dl.source, f"{what}: event '{ev}' cannot both meet and cancel it")
            if dl.marker and dl.met_by:
                self.add(self.at(dl.source, "met_by"), f"{what} is a marker: nothing meets "
                         "it (it is never due); drop 'met_by' or make it a deadline")
            for drule in dl.rules:
                self.expr(drule.when, f"when of {what}")
                a = drule.anchor
                ref = a.ref or ""
                where = self.at(drule.source, "anchor", ref)
                if a.kind is AnchorKind.STATE:
                    self.ref(where, f"{what} is anchored on", "unknown state", ref,
                             self.states)
                elif a.kind is AnchorKind.EVENT:
                    self.ref(where, f"{what} is anchored on", "unknown event", ref,
                             self.events)
                elif a.kind is AnchorKind.DEADLINE:
                    if ref == dl.name:
                        self.add(where, f"{what} is anchored on itself")
                    else:
                        self.ref(where, f"{what} is anchored on", "unknown deadline", ref,
                                 self.deadlines)
                elif a.kind is AnchorKind.FIELD:
                    f = d.field_map.get(ref)
                    if f is None:
                        self.add(where, f"{what} is anchored on unknown data field "
                                        f"'{ref}' {_known(self.fields, ref)}")
                    elif f.type not in (FieldType.DATE, FieldType.DATETIME):
                        self.add(where, f"{what} is anchored on data field '{ref}' of "
                                        f"type {f.type.value}; an anchor field must be "
                                        "of type date or datetime")
        seen_timers: dict[str, Source] = {}
        for tm in d.timers:
            what = f"timer '{tm.name}'"
            if tm.name in seen_timers:
                self.add(self.at(tm.source, "name"), f"duplicate timer name '{tm.name}' "
                                                     f"(first on line {seen_timers[tm.name].line})")
            seen_timers.setdefault(tm.name, tm.source)
            if tm.deadline is not None:
                self.ref(self.at(tm.source, "deadline"), f"{what} hangs off", "unknown deadline",
                         tm.deadline, self.deadlines)
            if tm.state is not None:
                self.ref(self.at(tm.source, "state"), f"{what} hangs off", "unknown state",
                         tm.state, self.states)
            if tm.fire is not None:
                self.ref(self.at(tm.source, "fire"), f"{what} fires", "unknown event", tm.fire,
                         self.events)
            for n in tm.notify:
                self.notify(n, what, in_timer=True)
        sent_by_transitions = {n.template for t in d.transitions for n in t.notify}
        for tpl in d.templates:
            for part, text in (("subject", tpl.subject), ("body", tpl.body)):
                what = f"{part} of template '{tpl.name}'"
                try:
                    used = template_names(text)
                except ExpressionError as exc:
                    self.add(self.at(tpl.source, part), f"{what}: {exc}")
                    continue
                self.names_used(used, self.at(tpl.source, part), what,
                                in_timer=tpl.name not in sent_by_transitions,
                                where=self.template_place(tpl.source, part, text))
                self.limits(text, self.at(tpl.source, part), what, expression=False)

    # --- timers -----------------------------------------------------------------------------

    def check_timers(self) -> None:
        d = self.d
        fired = {t.fire for t in d.timers if t.fire} | {r.fire for r in d.reactions if r.fire}
        reported: set[str] = set()
        for t in d.transitions:
            if t.timer_only and t.event not in fired and t.event not in reported:
                reported.add(t.event)
                self.add(self.at(t.source, "event"),
                         f"event '{t.event}' has no roles, so only a timer may fire "
                         "it, but no timer fires it: give it 'roles' or add a timer "
                         f"with 'fire: {t.event}'")
        for tm in d.timers:
            marked = d.deadline_map.get(tm.deadline or "")
            if marked is not None and marked.marker and tm.position is TimerPosition.BREACH:
                self.add(self.at(tm.source, "at"), f"timer '{tm.name}' is at the breach of "
                         f"'{marked.name}', a marker, which is never breached; use 'at: due'")
            if tm.fire is not None and tm.fire in self.events:
                missing = [s for s in self.d.timer_live_states(tm)
                           if s in d.state_map and not d.transitions_for(tm.fire, s)]
                if missing:
                    self.add(self.at(tm.source, "fire"),
                             f"timer '{tm.name}' fires '{tm.fire}', which is not "
                             f"allowed in state(s) {', '.join(missing)} where the "
                             "timer is live, so it would silently never fire there "
                             f"(add {', '.join(missing)} to the 'from' of "
                             f"'{tm.fire}')")
            dl = d.deadline_map.get(tm.deadline or "")
            guarded = bool(tm.notify) and tm.fire is None and all(
                n.when is not None for n in tm.notify)  # says itself when it applies
            if (tm.position is TimerPosition.BEFORE and dl is not None and tm.offset is not None
                    and not (guarded and len(dl.rules) > 1)):
                for rule in dl.rules:
                    if (rule.sign == 1 and rule.offset.unit == tm.offset.unit
                            and tm.offset.amount >= rule.offset.amount):
                        self.add(self.at(tm.source, "before"),
                                 f"timer '{tm.name}' is {tm.offset} before deadline "
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


def validate(defn: Definition, places: Places | None = None) -> list[Problem]:
    """Every meaning-level problem of ``defn``, sorted by line (empty when it is sound);
    ``places`` (from the loader) puts each at the offending value's own line and column."""
    return _Checker(defn, places).run()



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


_DURATION_TEXT = re.compile(
    r"\b(\d+)\s+(working\s+days?|calendar\s+days?|days?|weeks?|months?|hours?)\b", re.I)


def duration_warnings(defn: Definition) -> list[Problem]:
    """Text (email templates, descriptions) that hard-codes a duration no deadline or timer of
    the definition has: change the YAML's "10 working days" to 5 and such text would go on
    saying 10. Warnings, not errors: ``{{ durations.NAME }}`` or ``{{ deadlines.NAME }}`` says
    what the definition says."""
    from icsflow.definitions.durations import DurationSyntaxError, parse_duration

    known: set[str] = set()
    for d in defn.deadlines:
        known.update(str(r.offset) for r in d.rules)
    for t in defn.timers:
        known.update(str(x) for x in (t.offset, t.repeat_every) if x is not None)
    texts: list[tuple[Source, str, str]] = []
    for tpl in defn.templates:
        texts.append((tpl.source, f"template '{tpl.name}'", tpl.subject + "\n" + tpl.body))
    for st in defn.states:
        texts.append((st.source, f"description of state '{st.name}'", st.description))
    for dl in defn.deadlines:
        texts.append((dl.source, f"description of deadline '{dl.name}'", dl.description))
    warnings: list[Problem] = []
    for source, what, text in texts:
        for m in _DURATION_TEXT.finditer(text or ""):
            words = f"{m.group(1)} {' '.join(m.group(2).lower().split())}"
            try:
                said = str(parse_duration(words))
            except DurationSyntaxError:
                continue
            if said not in known:
                listed = ", ".join(sorted(known)) or "none"
                warnings.append(Problem(source, f"warning: {what} says '{m.group(0)}', which "
                                                f"no deadline or timer of {defn.name} has "
                                                f"(they have: {listed}); write "
                                                "{{ durations.NAME }} or {{ deadlines.NAME }}"))
    return sorted(set(warnings))


__all__ = ["validate", "signal_loops", "duration_warnings"]
