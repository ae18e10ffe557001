"""What a person reads on the pages: labels for the ids the engine keeps.

States, events, deadlines, data fields, roles and enum values are ids in the database, the
JSON API, CSV and form field names; a page shows their labels (``Definition.label_for``,
``Definition.value_label``; a name without a label reads as itself with spaces). Templates
reach these through the ``labels`` global, always naming the process (and, for a case, its
version) the id belongs to, so a label changed in a new version shows on that version's cases.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from icsflow.definitions.model import Definition, humanize
from icsflow.workflow.labels import Labels as CoreLabels
from icsflow.workflow.reports.sections import SECTION_TITLES

_SIGNAL = re.compile(r"^signal (\S+) from (\S+) ([0-9a-f-]{36})$")
_TIMER = re.compile(r"^timer (\S+)$")
# a word, not part of an address or a dotted name (``iro.01@council.example`` stays whole)
_WORD = re.compile(r"(?<![\w.@-])[a-z][a-z0-9]*(?:_[a-z0-9]+)*(?![\w.@-])")


class Labels(CoreLabels):
    """Labels by process name (its newest version unless a version is given), with what the
    pages need beyond the core's: notes, prose, previews and figures in words."""

    def process(self, name: str) -> str:
        """The process's title (``Initial looked-after review``), or its name with spaces."""
        return self.title(name)

    def state(self, process: str, name: str | None, version: int | None = None) -> str:
        return self.of(process, "state", name, version)

    def event(self, process: str, name: str, version: int | None = None) -> str:
        return self.of(process, "event", name, version)

    def deadline(self, process: str, name: str, version: int | None = None) -> str:
        return self.of(process, "deadline", name, version)

    def field(self, process: str, name: str, version: int | None = None) -> str:
        return self.of(process, "field", name, version)

    def timer(self, process: str, name: str, version: int | None = None) -> str:
        """A timer (timers carry no label): its name with spaces (``Response reminder``)."""
        return humanize(name)

    def role(self, name: str, process: str | None = None) -> str:
        """A role's label: from ``process`` when given, else the first process that labels
        it (roles are shared across processes), else its name with spaces."""
        if process is not None:
            return self.of(process, "role", name)
        for d in self._latest.values():
            if any(r.name == name and r.label for r in d.roles):
                return d.label_for("role", name)
        return humanize(name)

    def roles(self, names: Iterable[str], process: str | None = None) -> str:
        return ", ".join(self.role(n, process) for n in names)

    def any_state(self, name: str) -> str:
        """A state's label when the process is not known (Today's state filter spans every
        process): the first process that has the state."""
        for d in self._latest.values():
            if name in d.state_map:
                return d.label_for("state", name)
        return humanize(name)

    def choice(self, kind: str, value: str) -> str:
        """A Today filter's choice as shown (the option's value stays the id)."""
        if kind == "process":
            return self.process(value)
        if kind == "state":
            return self.any_state(value)
        return value

    def note(self, process: str, note: str | None, version: int | None = None) -> str:
        """A history note in words: the engine's own notes (``timer request_breached``,
        ``signal cp_plan_started from cp_conference <id>``) by their labels; a person's note
        as written."""
        if not note:
            return ""
        if m := _TIMER.match(note):
            return f"By timer: {self.of(process, 'deadline', m.group(1), version)}"
        if m := _SIGNAL.match(note):
            return (f"Signal from {self.process(m.group(2))}: "
                    f"{humanize(m.group(1))}")
        return note

    def prose(self, process: str, text: str | None, version: int | None = None) -> str:
        """Prose a definition or the engine wrote (a description, why a date is what it is)
        with its snake_case ids by their labels; its ordinary words left alone."""
        if not text:
            return ""
        return self.relabel(process, text, version, ids_only=True)

    def plain(self, text: str | None) -> str:
        """A message not tied to one process (an access refusal, an error) with its
        snake_case ids in words: a role or data field by the first process's label for it,
        anything else with spaces."""
        if not text:
            return ""

        def one(match: re.Match[str]) -> str:
            word = match.group(0)
            if "_" not in word:
                return word
            for d in self._latest.values():
                if any(r.name == word for r in d.roles):
                    return d.label_for("role", word)
                if word in d.field_map:
                    return d.label_for("field", word)
            return humanize(word)

        return _WORD.sub(one, text)

    def relabel(self, process: str, text: str, version: int | None = None,
                ids_only: bool = False) -> str:
        """A line the engine wrote with ids in it (a preview's ``escalate: alert ->
        stage1``): each id the process knows by its label, any other snake_case id with
        spaces, and ``->`` as "to"."""
        d = self.definition(process, version)

        def one(match: re.Match[str]) -> str:
            word = match.group(0)
            if ids_only and "_" not in word:
                return word
            if d is not None:
                for kind, names in (("state", d.state_map), ("event", d.events),
                                    ("deadline", d.deadline_map), ("field", d.field_map)):
                    if word in names:
                        return d.label_for(kind, word)  # type: ignore[arg-type]
                if any(r.name == word for r in d.roles):
                    return d.label_for("role", word)
            return humanize(word) if "_" in word else word

        return _WORD.sub(one, text.replace(" -> ", " to "))

    def happening(self, process: str, kind: str, what: str) -> str:
        """A what-if preview's line: ``EVENT: FROM -> TO``, ``started in STATE``, ``NAME due``
        and ``NAME breached`` by their labels."""
        if kind in ("event", "escalation") and ": " in what:
            event, _, move = what.partition(": ")
            return f"{self.event(process, event)}: {self.relabel(process, move)}"
        if kind == "start" and what.startswith("started in "):
            return "Started at " + self.state(process, what[len("started in "):])
        for suffix in (" due", " breached"):  # the Kind column says which
            if kind in ("deadline", "breach") and what.endswith(suffix):
                return self.deadline(process, what[:-len(suffix)])
        return self.relabel(process, what)

    def happening_detail(self, process: str, kind: str, detail: str) -> str:
        """A preview line's detail: ``by ROLE``, a deadline's status, a timer's action."""
        if detail.startswith("by "):
            return "by " + self.role(detail[3:], process)
        if kind == "pending":
            return self.relabel(process, detail.replace("fire:", "fires ").replace(
                "+notify:", "; emails ").replace("notify:", "emails "))
        return self.relabel(process, detail)

    def figure(self, path: str) -> str:
        """A report figure's path (``alerts.by_category.care_plan``) in words:
        ``IRO Alerts and dispute resolution: By category, Care plan``."""
        section, _, rest = path.partition(".")
        head = SECTION_TITLES.get(section, humanize(section))
        parts = [humanize(p) for p in rest.split(".") if p]
        return head + (": " + ", ".join(parts) if parts else "")


def labels_of(definitions: Iterable[Definition]) -> Labels:
    return Labels(definitions)


__all__ = ["Labels", "labels_of"]
