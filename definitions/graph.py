"""Diagrams of a definition for managers: Mermaid ``stateDiagram-v2`` or Graphviz dot text.

Written by hand rather than through ``transitions.extensions.diagrams``: that needs a model per
machine and has no place for the deadlines and timers managers most want to see. Deadlines are
notes on the states they are live in; timer-fired edges say which deadline or state fires them.
"""

from __future__ import annotations

from icsflow.definitions.model import Deadline, Definition, Timer, TimerPosition

FORMATS = ("mermaid", "dot")


def _rule_text(d: Deadline) -> str:
    parts = []
    for r in d.rules:
        text = f"{r.offset} {'after' if r.sign == 1 else 'before'} {r.anchor}"
        parts.append(f"{text} if {r.when.text}" if r.when is not None else text)
    return f"{d.name}: " + "; else ".join(parts)


def _when_text(t: Timer) -> str:
    if t.position is TimerPosition.DUE:
        text = f"{t.deadline} due"
    elif t.position is TimerPosition.BREACH:
        text = f"{t.deadline} breached"
    else:
        base = f"deadline {t.deadline}" if t.deadline else f"entering {t.state}"
        rel = "before" if t.position is TimerPosition.BEFORE else "after"
        text = f"{t.offset} {rel} {base}"
    if t.repeat_every is not None:
        text += f", every {t.repeat_every} (max {t.repeat_max})"
    return text


def _notes(defn: Definition, state: str) -> list[str]:
    lines: list[str] = []
    if state == defn.initial:
        lines.extend(f"starts by itself on signal {r.signal}"
                     + (f" if {' and '.join(e.text for e in r.when)}" if r.when else "")
                     for r in defn.reactions if r.start)
        if defn.start_signals:
            lines.append("start sends " + ", ".join(s.name for s in defn.start_signals))
    lines += [_rule_text(d) for d in defn.deadlines_live_in(state)]
    for t in defn.timers:
        if state in defn.timer_live_states(t) and t.notify:
            roles = ", ".join(dict.fromkeys(r for n in t.notify for r in n.roles))
            lines.append(f"reminder {t.name}: {_when_text(t)} to {roles}")
    return lines


def _edges(defn: Definition) -> list[tuple[str, str, str]]:
    """(source, target, label) per transition and source state, timers named on their edges."""
    edges = []
    for tr in defn.transitions:
        for src in tr.sources:
            label = tr.event
            if tr.roles:
                label += f" ({', '.join(tr.roles)})"
            timers = [t for t in defn.timers if t.fire == tr.event
                      and src in defn.timer_live_states(t)]
            if timers:
                label += " [timer: " + "; ".join(_when_text(t) for t in timers) + "]"
            heard = [r.signal for r in defn.reactions if r.fire == tr.event]
            if heard:
                label += " [on signal " + ", ".join(dict.fromkeys(heard)) + "]"
            if tr.signals:
                label += " => sends " + ", ".join(
                    s.name + (f" if {s.when.text}" if s.when is not None else "")
                    for s in tr.signals)
            if tr.to is None:
                label += " (internal)"
            edges.append((src, tr.to or src, label))
    return edges


def _mermaid_label(text: str) -> str:
    return text.replace(":", " -").replace(";", ",").replace("#", "no.").replace("\n", " ")


def _mermaid(defn: Definition) -> str:
    def sid(name: str) -> str:
        return f"s_{name}"

    out = ["stateDiagram-v2", f"    %% {_mermaid_label(defn.title)} ({defn.name} v{defn.version})"]
    for st in defn.states:
        out.append(f'    state "{st.name}" as {sid(st.name)}')
    out.append(f"    [*] --> {sid(defn.initial)}")
    for src, dst, label in _edges(defn):
        out.append(f"    {sid(src)} --> {sid(dst)}: {_mermaid_label(label)}")
    for st in defn.states:
        if st.final:
            out.append(f"    {sid(st.name)} --> [*]")
    for st in defn.states:
        notes = _notes(defn, st.name)
        if notes:
            out.append(f"    note right of {sid(st.name)}")
            out.extend(f"        {_mermaid_label(n)}" for n in notes)
            out.append("    end note")
    return "\n".join(out) + "\n"


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dot(defn: Definition) -> str:
    out = [f"digraph {_dot_quote(defn.name)} {{", "    rankdir=LR;",
           f"    label={_dot_quote(defn.title)};",
           '    node [shape=box, style=rounded, fontname="Helvetica"];',
           '    edge [fontname="Helvetica", fontsize=10];',
           '    __start [shape=point, label=""];']
    for st in defn.states:
        label = "\n".join([st.name, *_notes(defn, st.name)])
        shape = ", shape=doubleoctagon" if st.final else ""
        out.append(f"    {_dot_quote(st.name)} [label={_dot_quote(label)}{shape}];")
    out.append(f"    __start -> {_dot_quote(defn.initial)};")
    for src, dst, label in _edges(defn):
        style = ", style=dashed" if "[timer:" in label else ""
        out.append(f"    {_dot_quote(src)} -> {_dot_quote(dst)} [label={_dot_quote(label)}"
                   f"{style}];")
    out.append("}")
    return "\n".join(out) + "\n"


def graph_text(defn: Definition, format: str = "mermaid") -> str:
    """The diagram of ``defn`` as text in ``format`` (mermaid or dot)."""
    if format == "mermaid":
        return _mermaid(defn)
    if format == "dot":
        return _dot(defn)
    raise ValueError(f"unknown graph format {format!r} (known: {', '.join(FORMATS)})")


__all__ = ["FORMATS", "graph_text"]
