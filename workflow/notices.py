"""The emails icsflow writes to its administrator about an email it could not send, in plain
words: which case, which role has no address (by its label, not its id), and the commands that
fix it. Why its own module: ``outbox_queue`` (an email that cannot be queued) and the daemon's
dispatcher (an email that could not be delivered) both tell the administrator, and the person
reading either should meet the same sentences and the same commands."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from icsflow.definitions.model import Definition

SIGN_OFF = "Independent Chair Service (icsflow)"


@dataclass(frozen=True)
class MissingAddress:
    """A role a notification was meant for, and why it has no usable address."""

    role: str
    field: str | None  # the case's data field that should hold the address, if any
    invalid: bool = False  # an address is there but is not an email address


def missing_addresses(defn: Definition, roles: Sequence[str], data: Mapping[str, Any],
                      directory: Mapping[str, Sequence[str]]) -> list[MissingAddress]:
    """The roles of ``roles`` that no email can reach for this case today."""
    from icsflow.workflow.data import is_email

    found: list[MissingAddress] = []
    for name in roles:
        role = defn.role_map.get(name)
        if role is None:
            continue
        if role.address_field:
            value = data.get(role.address_field)
            if value in (None, "") or not is_email(str(value).strip()):
                found.append(MissingAddress(name, role.address_field,
                                            invalid=value not in (None, "")))
        elif role.directory:
            listed = [a for a in directory.get(name, ()) if a]
            if not listed or not all(is_email(a) for a in listed):
                found.append(MissingAddress(name, None, invalid=bool(listed)))
        else:
            found.append(MissingAddress(name, None))
    return found


def in_sentence(text: str) -> str:
    """A label as it reads inside a sentence: "service manager", but "Chair's email" and "IRO
    admin team" keep the capital a title or an acronym has."""
    first = text.split(" ", 1)[0]
    if first.startswith("Chair") or (len(first) > 1 and first.isupper()):
        return text
    return text[:1].lower() + text[1:]


def role_name(defn: Definition, role: str) -> str:
    """A role's label inside a sentence ("the service manager", "the Chair")."""
    return in_sentence(defn.label_for("role", role))


def address_event(defn: Definition, state: str, field: str) -> tuple[str, str] | None:
    """An event that sets ``field`` from ``state``, and a role that may fire it (the shipped
    processes' ``update_addresses`` first), or None when no event of the state sets it."""
    candidates = [t for t in defn.transitions
                  if state in t.sources and t.roles and any(r.name == field for r in t.set)]
    candidates.sort(key=lambda t: (t.event != "update_addresses", t.event))
    if not candidates:
        return None
    t = candidates[0]
    return t.event, ("admin" if "admin" in t.roles else t.roles[0])


def fix_lines(defn: Definition, ref: str, state: str,
              missing: Sequence[MissingAddress]) -> list[str]:
    """What to do, one step a line: the commands that give each role an address, then the one
    that sends the email again."""
    lines: list[str] = []
    for m in missing:
        who = role_name(defn, m.role)
        if m.field:
            event = address_event(defn, state, m.field)
            what = "correct" if m.invalid else "record"
            if event is None:
                lines.append(f"- {what} the {who}'s email address on the case (no event "
                             f"of its state sets {in_sentence(defn.label_for('field', m.field))}), "
                             "then send the email again;")
            else:
                name, role = event
                lines.append(f"- {what} the {who}'s email address on the case:\n"
                             f"    icsflow fire {ref} {name} --actor YOUR-ID --role {role} "
                             f"--set {m.field}=ADDRESS")
        else:
            lines.append(f"- give the {who} an address in the configuration file's "
                         f"directory (directory: {{{m.role}: [ADDRESS]}}), and restart the daemon;")
    lines.append(f"- then send the email again:\n    icsflow outbox retry --case {ref}")
    return lines


def role_words(defn: Definition, missing: Sequence[MissingAddress]) -> str:
    """``the service manager has no email address`` (one role), or a list of several."""
    parts = []
    for m in missing:
        who = role_name(defn, m.role)
        if m.invalid:
            parts.append(f"the {who}'s email address is not a valid address")
        elif m.field:
            parts.append(f"the {who} has no email address on the case")
        else:
            parts.append(f"the {who} has no address in the directory")
    return "; ".join(parts)


def unqueued_notice(defn: Definition, context: Mapping[str, Any], template: str,
                    reason: str, missing: Sequence[MissingAddress],
                    subject: str) -> tuple[str, str]:
    """Subject and body of the administrator's email about an email that could not be queued
    (nobody to send it to, or a template or condition that failed)."""
    ref = str(context.get("ref", ""))
    state = str(context.get("state", ""))
    where = (f'case {ref} ({defn.label}, now at "{defn.label_for("state", state)}")'
             if ref else defn.label)
    what = f'"{subject}"' if subject else f"the {template.replace('_', ' ')} email"
    url = str(context.get("case_url") or "")
    link = f"\n\nOpen the case: {url}" if url else ""
    if missing:
        words = role_words(defn, missing)
        title = f"Case {ref}: an email was not sent: {words}"
        body = (f"The email {what} for {where} was not sent to everyone: {words}.\n\n"
                "To fix it:\n" + "\n".join(fix_lines(defn, ref, state, missing))
                + f"\n\nThe case itself has moved on; nothing else waits for this.{link}\n\n"
                + SIGN_OFF + "\n")
        return title, body
    title = f"Case {ref}: an email could not be prepared"
    body = (f"The email {what} for {where} could not be prepared:\n\n  {reason}\n\n"
            "This is a fault in the process definition or the case data: correct it, then "
            "send the email again with:\n"
            f"    icsflow outbox retry --case {ref}\n\n"
            f"The case itself has moved on; nothing else waits for this.{link}\n\n"
            + SIGN_OFF + "\n")
    return title, body


def undelivered_notice(*, message_id: int, ref: str | None, subject: str, what: str,
                       reason: str) -> tuple[str, str]:
    """Subject and body of the administrator's email about a message the daemon gave up
    delivering (a dead letter)."""
    case = f"case {ref}" if ref else "no case"
    title = (f"Case {ref}: an email could not be delivered" if ref
             else f"icsflow could not deliver {what} {message_id}")
    body = (f"The {what} \"{subject or '(no subject)'}\" for {case} (outbox message "
            f"{message_id}) was not delivered and will not be tried again by itself.\n\n"
            f"Why: {reason}\n\n"
            "To fix it: correct the cause (the address on the case or in the directory, the "
            "mail server), then send it again with:\n"
            f"    icsflow outbox retry {message_id}\n\n" + SIGN_OFF + "\n")
    return title, body


__all__ = ["MissingAddress", "address_event", "fix_lines", "in_sentence", "missing_addresses",
           "role_name",
           "role_words",
           "undelivered_notice", "unqueued_notice"]
