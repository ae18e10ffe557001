"""``icsflow outbox retry``: address a dead letter again from today's directory and case data.

Why: most dead letters are a missing or wrong address (no directory entry for a role, an empty
email field on the case). The operator fixes the directory or the case, then retries; the row
must go to the addresses as they are now, not to the ones that failed when it was queued.

A row's idempotency key says where it came from (``ID:vN:nI:TEMPLATE`` for a transition's
``notify``, ``ID:timerT:nI:TEMPLATE`` for a timer's, ``...:unreached`` for the roles a sent
copy missed, ``...:admin`` for the admin notice, ``digest:ROLE:DAY`` for a digest); the roles
are read from the definition version the case runs on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Protocol

from icsflow.definitions.model import Definition, Notify
from icsflow.workflow.config import Config
from icsflow.workflow.instance import Instance
from icsflow.workflow.outbox_queue import resolve_role
from icsflow.workflow.ports import OutboxMessage

_KEY = re.compile(r"^(?P<id>[^:]+):(?P<source>v\d+|timer\d+):n(?P<index>\d+):(?P<template>[^:]+)"
                  r"(?P<unreached>:unreached)?$")


class Unresolvable(Exception):
    """The row cannot be addressed now; the message says what to fix."""


class CaseReader(Protocol):
    """What readdressing reads of an engine: the case, and the definition version it runs on
    (``Engine`` has both)."""

    def get(self, instance_id: str) -> Instance: ...

    def definition(self, name: str, version: int | None = None) -> Definition: ...

    def timer_name(self, timer_id: int) -> str | None: ...


def current_recipients(message: OutboxMessage, config: Config, engine: CaseReader | None,
                       stored: Sequence[OutboxMessage] = ()) -> tuple[str, ...]:
    """The addresses ``message`` goes to today. ``stored`` is the rest of the outbox (to leave
    out who an ``:unreached`` row's sent sibling already reached); ``engine`` may be None for
    a message of no case (it is only read for a case's). Raises Unresolvable."""
    key = message.idempotency_key
    if key.endswith(":admin"):
        if not config.admin_address:
            raise Unresolvable("no admin_address is configured for the admin notice")
        return (config.admin_address,)
    if key.startswith("digest:") or key.startswith("allocation:"):
        role = key.split(":")[1] if key.startswith("digest:") else config.digest.allocation_role
        listed = tuple(config.directory.get(role, ()))
        if not listed:
            raise Unresolvable(f"role {role} has no address: no directory entry for {role}")
        return listed
    match = _KEY.match(key)
    if match is None or message.instance_id is None:
        return message.recipients  # not from a notify: nothing to look up again
    if engine is None:
        raise ValueError(f"current_recipients: message {message.id} belongs to case "
                         f"{message.instance_id}: pass the engine to read it")
    instance = engine.get(message.instance_id)
    defn: Definition = engine.definition(instance.definition, instance.version)
    try:
        roles = _roles(defn, match.group("source"), int(match.group("index")),
                       match.group("template"), instance, engine)
    except Unresolvable:
        if message.recipients:
            return message.recipients  # ambiguous: keep the addresses it was queued for
        raise
    recipients: list[str] = []
    problems: list[str] = []
    directory: Mapping[str, Sequence[str]] = config.directory
    for role in roles:
        found, problem = resolve_role(defn, role, instance.data, directory)
        recipients += [a for a in found if a not in recipients]
        if problem:
            problems.append(problem)
    if match.group("unreached"):
        sent_key = key.removesuffix(":unreached")
        already = {a for m in stored if m.idempotency_key == sent_key for a in m.recipients}
        recipients = [a for a in recipients if a not in already]
    if not recipients:
        raise Unresolvable("; ".join(problems) or "nobody left to send it to")
    return tuple(recipients)


def _roles(defn: Definition, source: str, index: int, template: str,
           instance: Instance, engine: CaseReader) -> tuple[str, ...]:
    """The roles of the ``notify`` entry the row was queued for."""
    notifies: list[Notify] = []
    if source.startswith("v"):
        # The history entry that made row version N names the event and the state it left
        # (one entry per change), which names the transition.
        version = int(source[1:])
        history = list(getattr(instance, "history", ()))
        entry = history[version - 1] if 0 < version <= len(history) else None
        for t in defn.transitions:
            if index < len(t.notify) and t.notify[index].template == template and (
                    entry is None or (t.event == entry.event
                                      and entry.from_state in t.sources)):
                notifies.append(t.notify[index])
    else:
        name = engine.timer_name(int(source.removeprefix("timer")))
        for timer in defn.timers:
            if index < len(timer.notify) and timer.notify[index].template == template and (
                    name is None or timer.name == name):
                notifies.append(timer.notify[index])
    role_sets = {n.roles for n in notifies}
    if len(role_sets) != 1:
        raise Unresolvable(f"cannot tell which notify of {defn.name} v{defn.version} queued "
                           f"template {template}")
    return role_sets.pop()


__all__ = ["current_recipients", "Unresolvable"]
