"""Nodes -> the frozen model: one method per section of a definition (roles, data, states,
transitions, signals and reactions, deadlines and their rules, timers, templates).

Every mistake becomes a ``Problem`` and building goes on, so a file's mistakes are reported
together; what the model cannot hold without a mistaken part is left out, and validation
(``definitions.validate``) then judges what the parts mean together.
"""

from __future__ import annotations

import re

from icsflow.definitions.durations import Duration
from icsflow.definitions.model import (
    Anchor,
    AnchorKind,
    DataField,
    Deadline,
    DeadlineRule,
    Definition,
    Expr,
    FieldRule,
    FieldType,
    Notify,
    Reaction,
    Role,
    Roll,
    SignalEmit,
    Source,
    State,
    Template,
    Timer,
    TimerPosition,
    Transition,
)
from icsflow.definitions.node_values import NodeValues
from icsflow.definitions.yaml_nodes import Node, describe

_ANCHOR_KINDS_WITH_REF = ("state", "field", "event", "deadline")


class ModelBuilder(NodeValues):
    """Builds a ``Definition`` from a file's root node; ``definition`` is None when a part
    the model cannot do without (name, version, initial state) did not read."""

    def definition(self, root: Node, content_hash: str) -> Definition | None:
        top = self.mapping(root, "definition", "the definition")
        if top is None:
            return None
        name = self.name(top["name"], "name") if "name" in top else None
        version = None
        if "version" in top:
            v = top["version"].value
            if isinstance(v, int) and not isinstance(v, bool) and v >= 1:
                version = v
            else:
                self.problem(top["version"].source,
                             f"version must be a whole number from 1, not {describe(v)}")
        title = self.text(top["title"], "title") if "title" in top else None
        description = self.text(top["description"], "description") if "description" in top \
            else None
        roles = tuple(self.role(n, v, s) for n, v, s in self.entries(top.get("roles"), "roles"))
        role_names = tuple(r.name for r in roles if r is not None)
        start_roles = self.names(top["start_roles"], "start_roles") if "start_roles" in top \
            else role_names
        data = tuple(self.data_field(n, v, s) for n, v, s in self.entries(top.get("data"),
                                                                          "data"))
        initial = self.text(top["initial"], "initial") if "initial" in top else None
        states = tuple(self.state(n, v, s) for n, v, s in self.entries(top.get("states"),
                                                                       "states"))
        if "states" in top and not states and top["states"].kind != "scalar":
            self.problem(top["states"].source, "states must name at least one state")
        non_final = tuple(s.name for s in states if s is not None and not s.final)
        transitions = tuple(self.transition(n, i, non_final)
                            for i, n in enumerate(self.items(top.get("transitions"),
                                                             "transitions"), 1))
        deadlines = tuple(self.deadline(n, v, s)
                          for n, v, s in self.entries(top.get("deadlines"), "deadlines"))
        timers = tuple(self.timer(n, i)
                       for i, n in enumerate(self.items(top.get("timers"), "timers"), 1))
        templates = tuple(self.template(n, v, s)
                          for n, v, s in self.entries(top.get("templates"), "templates"))
        signals: dict[str, str] = {}
        for sname, snode, _src in self.entries(top.get("signals"), "signals"):
            if snode.value is None:
                signals[sname] = ""
            else:
                signals[sname] = self.text(snode, f"description of signal '{sname}'") or ""
        start_signals = self.signal_list(top["start_signals"], "start_signals") \
            if "start_signals" in top else ()
        reactions = tuple(self.reaction(n, i)
                          for i, n in enumerate(self.items(top.get("reactions"), "reactions"), 1))
        prefix = ""
        if "reference_prefix" in top:
            prefix = self.text(top["reference_prefix"], "reference_prefix") or ""
            if not re.fullmatch(r"[A-Z][A-Z0-9]{0,9}", prefix):
                self.problem(top["reference_prefix"].source, "reference_prefix must be 1 to 10 "
                             f"capital letters or digits, starting with a letter, not {prefix!r}")
        if name is None or version is None or initial is None:
            return None
        return Definition(
            name=name, version=version, title=title or name, description=description or "",
            roles=tuple(r for r in roles if r is not None), start_roles=start_roles,
            data=tuple(d for d in data if d is not None), initial=initial,
            states=tuple(s for s in states if s is not None),
            transitions=tuple(t for t in transitions if t is not None),
            deadlines=tuple(d for d in deadlines if d is not None),
            timers=tuple(t for t in timers if t is not None),
            templates=tuple(t for t in templates if t is not None),
            source=root.source, content_hash=content_hash, signals=signals,
            start_signals=start_signals,
            reactions=tuple(r for r in reactions if r is not None), auto_reference=prefix)

    def signal_list(self, node: Node, what: str) -> tuple[SignalEmit, ...]:
        """``NAME``, ``[NAME, ...]`` or items ``{signal: NAME, when: EXPR}``."""
        if node.value is None:
            return ()
        items = node.value if isinstance(node.value, list) else [node]
        result = []
        for item in items:
            if isinstance(item.value, dict):
                m = self.mapping(item, "signal", f"signal of {what}")
                if m is None or "signal" not in m:
                    continue
                sname = self.name(m["signal"], f"signal of {what}")
                when = self.expr(m["when"], f"when of signal of {what}") if "when" in m \
                    else None
            else:
                sname = self.name(item, f"signal of {what}")
                when = None
            if sname is not None:
                result.append(SignalEmit(sname, when, item.source))
        return tuple(result)

    def reaction(self, node: Node, index: int) -> Reaction | None:
        what = f"reaction #{index}"
        m = self.mapping(node, "reaction", what)
        if m is None or "signal" not in m:
            return None
        signal = self.name(m["signal"], f"signal of {what}")
        start = bool(self.boolean(m["start"], f"start of {what}")) if "start" in m else False
        fire = self.name(m["fire"], f"fire of {what}") if "fire" in m else None
        if start == ("fire" in m):
            self.problem(node.source, f"{what} must either 'start: true' or 'fire: EVENT' "
                                      "(exactly one)")
        when = self.exprs(m["when"], f"when of {what}") if "when" in m else ()
        sets: list[tuple[str, Expr]] = []
        if "set" in m:
            if isinstance(m["set"].value, dict):
                for fname, value in m["set"].value.items():
                    e = self.expr(value, f"set '{fname}' of {what}")
                    if e is not None:
                        sets.append((fname, e))
            elif m["set"].value is not None:
                self.problem(m["set"].source, f"set of {what} must be a mapping field: "
                                              "expression")
        description = self.text(m["description"], "description") if "description" in m else ""
        if signal is None:
            return None
        return Reaction(signal, start, fire, when, tuple(sets), description or "", node.source)

    def role(self, name: str, node: Node, source: Source) -> Role | None:
        if node.value is None:
            return Role(name, source=source)
        if isinstance(node.value, str):
            return Role(name, description=node.value, source=source)
        m = self.mapping(node, "role", f"role '{name}'")
        if m is None:
            return None
        description = self.text(m["description"], "description") if "description" in m else ""
        address = self.text(m["address"], f"address of role '{name}'") if "address" in m \
            else None
        directory = self.boolean(m["directory"], f"directory of role '{name}'") \
            if "directory" in m else False
        return Role(name, description or "", address, bool(directory), source,
                    label=self.label(m, f"role '{name}'"))

    def data_field(self, name: str, node: Node, source: Source) -> DataField | None:
        m = self.mapping(node, "data field", f"data field '{name}'")
        if m is None or "type" not in m:
            return None
        type_text = self.text(m["type"], f"type of data field '{name}'")
        if type_text is None:
            return None
        try:
            ftype = FieldType(type_text)
        except ValueError:
            known = ", ".join(t.value for t in FieldType)
            self.problem(m["type"].source, f"data field '{name}' has unknown type "
                                           f"'{type_text}' (known: {known})")
            return None
        required = self.boolean(m["required"], f"required of data field '{name}'") \
            if "required" in m else False
        values: tuple[str, ...] = ()
        if "values" in m:
            if ftype is not FieldType.ENUM:
                self.problem(m["values"].source, f"data field '{name}' has values but is not "
                                                 "of type enum")
            values = tuple(self.text(v, f"each value of data field '{name}'",
                                     allow_number=True) or ""
                           for v in self.items(m["values"], f"values of data field '{name}'"))
        elif ftype is FieldType.ENUM:
            self.problem(source, f"data field '{name}' is an enum and needs 'values'")
        description = self.text(m["description"], "description") if "description" in m else ""
        readonly = self.boolean(m["readonly"], f"readonly of data field '{name}'") \
            if "readonly" in m else False
        value_labels = self.value_labels(m, name, values)
        return DataField(name, ftype, bool(required), values, description or "", source,
                         readonly=bool(readonly), label=self.label(m, f"data field '{name}'"),
                         value_labels=value_labels)

    def value_labels(self, m: dict[str, Node], name: str,
                     values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        """``labels: {VALUE: label}`` of an enum field: each key one of its values."""
        if "labels" not in m:
            return ()
        node = m["labels"]
        if not isinstance(node.value, dict):
            self.problem(node.source, f"labels of data field '{name}' must be a mapping "
                                      f"VALUE: label, not {describe(node.value)}")
            return ()
        found = []
        for value, label_node in node.value.items():
            source = (node.key_sources or {}).get(value, label_node.source)
            if value not in values:
                self.problem(source, f"labels of data field '{name}' names '{value}', which is "
                                     f"not one of its values ({', '.join(values) or 'none'})")
                continue
            text = self.text(label_node, f"label of value '{value}' of data field '{name}'")
            if text:
                found.append((value, text))
        return tuple(found)

    def label(self, m: dict[str, Node], what: str) -> str:
        """The ``label:`` of an entry: what a person reads for it ("" for none)."""
        return (self.text(m["label"], f"label of {what}") or "") if "label" in m else ""

    def state(self, name: str, node: Node, source: Source) -> State | None:
        if node.value is None:
            return State(name, source=source)
        m = self.mapping(node, "state", f"state '{name}'")
        if m is None:
            return None
        description = self.text(m["description"], "description") if "description" in m else ""
        final = self.boolean(m["final"], f"final of state '{name}'") if "final" in m else False
        return State(name, description or "", bool(final), source,
                     label=self.label(m, f"state '{name}'"))

    def notify_list(self, node: Node, what: str) -> tuple[Notify, ...]:
        result = []
        for item in self.items(node, f"notify of {what}"):
            m = self.mapping(item, "notify", f"notify of {what}")
            if m is None or "to" not in m or "template" not in m:
                continue
            roles = self.names(m["to"], f"to of notify of {what}")
            template = self.text(m["template"], f"template of notify of {what}")
            when = self.expr(m["when"], f"when of notify of {what}") if "when" in m else None
            if template is not None:
                result.append(Notify(roles, template, when, item.source))
        return tuple(result)

    def transition(self, node: Node, index: int,
                   non_final: tuple[str, ...]) -> Transition | None:
        event_node = node.value.get("event") if isinstance(node.value, dict) else None
        event_name = event_node.value if event_node is not None else None
        what = f"transition '{event_name}'" if isinstance(event_name, str) \
            else f"transition #{index}"
        m = self.mapping(node, "transition", what)
        if m is None or "event" not in m or "from" not in m:
            return None
        event = self.name(m["event"], "event")
        from_any = m["from"].value == "*"
        sources = non_final if from_any else self.names(m["from"], f"from of {what}")
        to = self.text(m["to"], f"to of {what}") if "to" in m else None
        roles = self.names(m["roles"], f"roles of {what}") if "roles" in m else ()
        when = self.exprs(m["when"], f"when of {what}") if "when" in m else ()
        rules: list[FieldRule] = []
        if "set" in m:
            set_node = m["set"]
            if isinstance(set_node.value, list):
                for item in set_node.value:
                    fname = self.text(item, f"each field of set of {what}")
                    if fname is not None:
                        rules.append(FieldRule(fname, True, item.source))
            elif isinstance(set_node.value, dict):
                for fname, value in set_node.value.items():
                    src = (set_node.key_sources or {}).get(fname, value.source)
                    if value.value not in ("required", "optional"):
                        self.problem(value.source, f"field '{fname}' in set of {what} must be "
                                                   f"required or optional, not "
                                                   f"{describe(value.value)}")
                        continue
                    rules.append(FieldRule(fname, value.value == "required", src))
            elif set_node.value is not None:
                self.problem(set_node.source, f"set of {what} must be a list of fields or a "
                                              "mapping field: required|optional")
        record: list[tuple[str, Expr]] = []
        if "record" in m:
            rec = m["record"]
            if isinstance(rec.value, dict):
                for fname, value in rec.value.items():
                    e = self.expr(value, f"record '{fname}' of {what}")
                    if e is not None:
                        record.append((fname, e))
            elif rec.value is not None:
                self.problem(rec.source, f"record of {what} must be a mapping field: expression")
        notify = self.notify_list(m["notify"], what) if "notify" in m else ()
        description = self.text(m["description"], "description") if "description" in m else ""
        signals = self.signal_list(m["signal"], what) if "signal" in m else ()
        if event is None or to is None and "to" in m:
            return None
        return Transition(event, sources, to, roles, when, tuple(rules), tuple(record), notify,
                          description or "", from_any, node.source, signals,
                          label=self.label(m, what))

    def anchor(self, node: Node, what: str) -> Anchor | None:
        text = self.text(node, what)
        if text is None:
            return None
        parts = text.split()
        kinds = ", ".join(["entry", "start"] + [f"{k} NAME" for k in _ANCHOR_KINDS_WITH_REF])
        if len(parts) == 1 and parts[0] in ("entry", "start"):
            return Anchor(AnchorKind(parts[0]))
        if len(parts) == 2 and parts[0] in _ANCHOR_KINDS_WITH_REF:
            return Anchor(AnchorKind(parts[0]), parts[1])
        self.problem(node.source, f"{what} {text!r} is not an anchor (known: {kinds})")
        return None

    def rule(self, m: dict[str, Node], source: Source, what: str) -> DeadlineRule | None:
        anchor = self.anchor(m["anchor"], f"anchor of {what}") if "anchor" in m \
            else Anchor(AnchorKind.ENTRY)
        if ("after" in m) == ("before" in m):
            self.problem(source, f"{what} needs exactly one of 'after' or 'before'")
            return None
        sign = 1 if "after" in m else -1
        offset = self.duration(m["after"] if sign == 1 else m["before"],
                               f"{'after' if sign == 1 else 'before'} of {what}")
        when = self.expr(m["when"], f"when of {what}") if "when" in m else None
        if anchor is None or offset is None:
            return None
        return DeadlineRule(anchor, offset, sign, when, source)

    def deadline(self, name: str, node: Node, source: Source) -> Deadline | None:
        what = f"deadline '{name}'"
        m = self.mapping(node, "deadline", what)
        if m is None:
            return None
        live_in = self.names(m["live_in"], f"live_in of {what}") if "live_in" in m else ()
        rules: list[DeadlineRule | None] = []
        if "rules" in m:
            for key in ("anchor", "after", "before"):
                if key in m:
                    self.problem(m[key].source, f"{what} has 'rules', so '{key}' belongs "
                                                "inside each rule")
            items = self.items(m["rules"], f"rules of {what}")
            if not items and isinstance(m["rules"].value, list):
                self.problem(m["rules"].source, f"rules of {what} must list at least one rule")
            for i, item in enumerate(items, 1):
                rm = self.mapping(item, "deadline rule", f"rule #{i} of {what}")
                if rm is not None:
                    rules.append(self.rule(rm, item.source, f"rule #{i} of {what}"))
        else:
            rules.append(self.rule(m, source, what))
        roll = None
        if "roll" in m:
            roll_text = self.text(m["roll"], f"roll of {what}")
            if roll_text is not None:
                try:
                    roll = Roll(roll_text)
                except ValueError:
                    self.problem(m["roll"].source, f"roll of {what} must be forward or "
                                                   f"backward, not {roll_text!r}")
        cancelled_by = self.names(m["cancelled_by"], f"cancelled_by of {what}") \
            if "cancelled_by" in m else ()
        met_by = self.names(m["met_by"], f"met_by of {what}") if "met_by" in m else ()
        description = self.text(m["description"], "description") if "description" in m else ""
        marker = False
        if "kind" in m:
            kind = self.text(m["kind"], f"kind of {what}")
            if kind not in ("deadline", "marker"):
                self.problem(m["kind"].source, f"kind of {what} must be deadline or marker, "
                                               f"not {kind!r}")
            marker = kind == "marker"
        if any(r is None for r in rules):
            return None
        return Deadline(name, live_in, tuple(r for r in rules if r is not None), roll,
                        cancelled_by, description or "", source, met_by, marker=marker,
                        label=self.label(m, what))

    def timer(self, node: Node, index: int) -> Timer | None:
        name_node = node.value.get("name") if isinstance(node.value, dict) else None
        tname = name_node.value if name_node is not None else None
        what = f"timer '{tname}'" if isinstance(tname, str) else f"timer #{index}"
        m = self.mapping(node, "timer", what)
        if m is None or "name" not in m:
            return None
        name = self.name(m["name"], "timer name")
        deadline = self.text(m["deadline"], f"deadline of {what}") if "deadline" in m else None
        state = self.text(m["state"], f"state of {what}") if "state" in m else None
        if ("deadline" in m) == ("state" in m):
            self.problem(node.source, f"{what} needs exactly one of 'deadline' or 'state'")
        given = [k for k in ("before", "after", "at") if k in m]
        position: TimerPosition | None = None
        offset: Duration | None = None
        if len(given) != 1:
            self.problem(node.source, f"{what} needs exactly one of 'before', 'after' or 'at'")
        elif given[0] == "at":
            at = m["at"].value
            if at in ("due", "breach"):
                position = TimerPosition(at)
            else:
                self.problem(m["at"].source, f"at of {what} must be due or breach, not "
                                             f"{describe(at)}")
        else:
            position = TimerPosition(given[0])
            offset = self.duration(m[given[0]], f"{given[0]} of {what}")
        if state is not None and position in (TimerPosition.BEFORE, TimerPosition.DUE,
                                              TimerPosition.BREACH):
            self.problem(node.source, f"{what} hangs off state '{state}', so it takes 'after' "
                                      "(time after entering the state), not "
                                      f"'{given[0]}'")
        fire = self.text(m["fire"], f"fire of {what}") if "fire" in m else None
        notify = self.notify_list(m["notify"], what) if "notify" in m else ()
        if "fire" not in m and "notify" not in m:
            self.problem(node.source, f"{what} needs 'notify' or 'fire' (or both)")
        repeat_every = None
        repeat_max = None
        if "repeat" in m:
            rm = self.mapping(m["repeat"], "repeat", f"repeat of {what}")
            if rm is not None:
                if "every" in rm:
                    repeat_every = self.duration(rm["every"], f"repeat every of {what}")
                if "max" not in rm:
                    self.problem(m["repeat"].source, f"repeat of {what} needs 'max' (how many "
                                                     "firings in all), or it never stops")
                else:
                    mx = rm["max"].value
                    if isinstance(mx, int) and not isinstance(mx, bool) and mx >= 1:
                        repeat_max = mx
                    else:
                        self.problem(rm["max"].source, f"repeat max of {what} must be a whole "
                                                       f"number from 1, not {describe(mx)}")
        description = self.text(m["description"], "description") if "description" in m else ""
        if name is None or position is None or (position in (TimerPosition.BEFORE,
                                                             TimerPosition.AFTER)
                                                and offset is None):
            return None
        return Timer(name, position, deadline, state, offset, fire, notify, repeat_every,
                     repeat_max, description or "", node.source)

    def template(self, name: str, node: Node, source: Source) -> Template | None:
        what = f"template '{name}'"
        m = self.mapping(node, "template", what)
        if m is None or "subject" not in m or "body" not in m:
            return None
        subject = self.text(m["subject"], f"subject of {what}")
        body = self.text(m["body"], f"body of {what}")
        urgent = self.boolean(m["urgent"], f"urgent of {what}") if "urgent" in m else False
        if subject is None or body is None:
            return None
        return Template(name, subject, body, bool(urgent), source)


__all__ = ["ModelBuilder"]
