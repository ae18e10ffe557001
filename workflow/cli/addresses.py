"""Roles without an address, found when a case is started or moved, not after the email fails.

``start`` and ``fire`` print one warning line per gap on stderr (the case is still started or
moved: an address may come later): a role the process emails whose address field is empty on
the case and which no step of the process fills in, or a directory role with no directory
entry. Each line says how to close the gap. Machine output (``--json``) is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from icsflow.definitions.model import Definition


def notified_roles(defn: Definition) -> list[str]:
    """Every role some email of the process goes to, in the order the definition names them."""
    roles: list[str] = []
    notifies = [n for t in defn.transitions for n in t.notify]
    notifies += [n for t in defn.timers for n in t.notify]
    for n in notifies:
        roles += [r for r in n.roles if r not in roles]
    return roles


def _filled_later(defn: Definition, field: str) -> bool:
    """Whether an ordinary step of the process sets ``field`` (the IRO's address at allocation),
    so that an empty value now is not a gap yet."""
    return any(r.name == field for t in defn.transitions if t.event != "update_addresses"
               for r in t.set)


def address_warnings(defn: Definition, ref: str, state: str, data: Mapping[str, Any],
                     directory: Mapping[str, Sequence[str]]) -> list[str]:
    """One line per role the process emails that no email can reach, with the fix."""
    from icsflow.workflow.notices import address_event, in_sentence, missing_addresses, role_name

    missing = missing_addresses(defn, notified_roles(defn), data, directory)
    lines: list[str] = []
    unlisted: list[str] = []
    for m in missing:
        who = role_name(defn, m.role)
        if m.field is None:
            if defn.role_map[m.role].directory:
                unlisted.append(m.role)
            continue
        if not m.invalid and _filled_later(defn, m.field):
            continue
        problem = "is not a valid address" if m.invalid else "is empty"
        fix = address_event(defn, state, m.field)
        how = (f"icsflow fire {ref} {fix[0]} --actor ID --role {fix[1]} "
               f"--set {m.field}=ADDRESS" if fix else f"--set {m.field}=ADDRESS when starting")
        field = in_sentence(defn.label_for("field", m.field))
        lines.append(f"warning: case {ref}: emails to the {who} will fail: {field} {problem}; "
                     f"give it with {how}")
    if unlisted:
        names = ", ".join(defn.label_for("role", r) for r in unlisted)
        entries = ", ".join(f"{r}: [ADDRESS]" for r in unlisted)
        lines.append(f"warning: case {ref}: emails to {names} will fail: no directory entry; "
                     f"add directory: {{{entries}}} to the configuration file (--config)")
    return lines


__all__ = ["address_warnings", "notified_roles"]
