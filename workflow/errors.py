"""The one error hierarchy of icsflow.

Every refusal is a ``WorkflowError`` carrying the data a caller needs (instance id, event, state,
field, file and line) and a message that says how to fix it. Nothing is written when one is raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime


class WorkflowError(Exception):
    """Root of every error icsflow raises on purpose."""


class DefinitionError(WorkflowError):
    """A definition file is invalid; ``problems`` holds one ``FILE:LINE: message`` per error."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class ValidationError(WorkflowError):
    """Data given to start or fire is missing, of the wrong type, or not allowed."""

    def __init__(self, message: str, *, field: str | None = None,
                 instance_id: str | None = None) -> None:
        self.field = field
        self.instance_id = instance_id
        super().__init__(message)


class FieldNotSettable(ValidationError):
    """The event was given a data field its transition does not ``set:``: an event carries only
    its own fields, so a caller cannot rewrite another field (an address, a stage) on the way."""

    def __init__(self, *, instance_id: str | None, event: str, state: str,
                 fields: Sequence[str], allowed: Sequence[str]) -> None:
        self.event = event
        self.state = state
        self.fields = list(fields)
        self.allowed = list(allowed)
        given = ", ".join(repr(f) for f in self.fields)
        noun = "field" if len(self.fields) == 1 else "fields"
        may = ", ".join(self.allowed) if self.allowed else "none"
        where = f"case {instance_id}: " if instance_id else ""
        super().__init__(
            f"{where}event {event!r} in state {state!r} may not set {noun} {given}; the "
            f"fields it may set: {may}. Nothing was changed",
            field=self.fields[0] if self.fields else None, instance_id=instance_id)


class InvalidTransition(WorkflowError):
    """The event is not allowed in the instance's current state (or its condition is false).

    Given no ``message`` it words itself from its data: the case closed (``closed``), the
    event unknown to the process or not allowed in the state (listing ``allowed``), or a
    condition that is false (``conditions``)."""

    def __init__(self, message: str | None = None, *, instance_id: str | None = None,
                 event: str | None = None, state: str | None = None,
                 allowed: Sequence[str] = (), closed: bool = False,
                 definition: str | None = None, known: bool = True,
                 conditions: Sequence[str] = ()) -> None:
        self.instance_id = instance_id
        self.event = event
        self.state = state
        self.allowed = list(allowed)
        self.conditions = list(conditions)
        if message is None:
            if closed:
                message = (f"instance {instance_id} is closed (state {state!r} is final): no "
                           "event may be fired")
            elif self.conditions:
                message = (f"event {event!r} is not allowed now: condition "
                           f"{' and '.join(self.conditions)} is false")
            else:
                what = "event" if known else "unknown event"
                message = (f"{what} {event!r} is not allowed in state {state!r} of "
                           f"{definition}; allowed events: {', '.join(self.allowed) or 'none'}")
        super().__init__(message)


class PermissionDenied(WorkflowError):
    """The actor's role may not fire this event or start this process.

    Given no ``message`` it words itself: a role that may not start ``definition``, the
    reserved ``system`` role, or a role the event's transitions do not name (``state``)."""

    def __init__(self, message: str | None = None, *, instance_id: str | None = None,
                 event: str | None = None, role: str | None = None,
                 allowed_roles: Sequence[str] = (), definition: str | None = None,
                 state: str | None = None, reserved: bool = False) -> None:
        self.instance_id = instance_id
        self.event = event
        self.role = role
        self.allowed_roles = list(allowed_roles)
        if message is None:
            if reserved:
                message = f"role {role!r} is reserved for timers"
            elif event is None:
                message = (f"role {role!r} may not start {definition}; allowed roles: "
                           f"{', '.join(self.allowed_roles) or 'none'}")
            else:
                hint = (f"allowed roles: {', '.join(self.allowed_roles)}" if self.allowed_roles
                        else "only a timer fires it")
                message = f"role {role!r} may not fire {event!r} in state {state!r}; {hint}"
        super().__init__(message)


class ConcurrencyConflict(WorkflowError):
    """Someone else changed the instance between our read and our write; retry from a fresh
    read. Given no ``message`` it words itself from the case and the versions."""

    def __init__(self, message: str | None = None, *, instance_id: str | None = None,
                 read_version: int | None = None, now_version: int | None = None) -> None:
        self.instance_id = instance_id
        self.read_version = read_version
        self.now_version = now_version
        if message is None:
            if read_version is not None:
                message = (f"instance {instance_id} changed since version {read_version} was "
                           f"read (now {now_version}); read it again and retry")
            else:
                message = (f"instance {instance_id} was changed by someone else since it was "
                           "read; read it again and retry")
        super().__init__(message)


class InstanceNotFound(WorkflowError):
    """No instance has this id (``reference``: nor a case this reference)."""

    def __init__(self, instance_id: str, *, reference: bool = False) -> None:
        self.instance_id = instance_id
        if reference:
            super().__init__(f"no instance with id {instance_id!r}, nor a case with that "
                             "reference (icsflow list shows them)")
        else:
            super().__init__(f"no instance with id {instance_id!r} (icsflow list shows the ids)")


class AmbiguousReference(WorkflowError):
    """Several cases share the reference (a database from before references were unique):
    nothing is done until one is named by its id. ``matches``: (id, definition, version,
    state, started at, closed) of each."""

    def __init__(self, ref: str,
                 matches: Sequence[tuple[str, str, int, str, datetime | None, bool]]) -> None:
        self.ref = ref
        self.matches = list(matches)
        listed = "; ".join(f"{m[0]} ({m[1]} v{m[2]}, {m[3]}{', closed' if m[5] else ''})"
                           for m in self.matches)
        super().__init__(f"reference {ref!r} matches {len(self.matches)} cases; give the id "
                         f"of one: {listed}")


class ConfigurationError(WorkflowError):
    """A configuration value (file, environment variable or option) is invalid."""


class SchemaOutOfDate(WorkflowError):
    """The database schema is older than this code; run ``icsflow db upgrade``."""


class NoDatabase(WorkflowError):
    """A command that only reads (or acts on existing cases) found no database: it never
    creates one, so a mistyped ``--db`` cannot leave empty databases behind."""


__all__ = [
    "WorkflowError", "DefinitionError", "ValidationError", "FieldNotSettable",
    "InvalidTransition",
    "PermissionDenied", "ConcurrencyConflict", "InstanceNotFound", "AmbiguousReference",
    "ConfigurationError",
    "SchemaOutOfDate", "NoDatabase",
]
