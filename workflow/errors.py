"""The one error hierarchy of icsflow.

Every refusal is a ``WorkflowError`` carrying the data a caller needs (instance id, event, state,
field, file and line) and a message that says how to fix it. Nothing is written when one is raised.
"""

from __future__ import annotations

from collections.abc import Sequence


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
    """The event is not allowed in the instance's current state (or its condition is false)."""

    def __init__(self, message: str, *, instance_id: str | None = None, event: str | None = None,
                 state: str | None = None, allowed: Sequence[str] = ()) -> None:
        self.instance_id = instance_id
        self.event = event
        self.state = state
        self.allowed = list(allowed)
        super().__init__(message)


class PermissionDenied(WorkflowError):
    """The actor's role may not fire this event or start this process."""

    def __init__(self, message: str, *, instance_id: str | None = None, event: str | None = None,
                 role: str | None = None, allowed_roles: Sequence[str] = ()) -> None:
        self.instance_id = instance_id
        self.event = event
        self.role = role
        self.allowed_roles = list(allowed_roles)
        super().__init__(message)


class ConcurrencyConflict(WorkflowError):
    """Someone else changed the instance between our read and our write; retry from a fresh read."""

    def __init__(self, message: str, *, instance_id: str | None = None) -> None:
        self.instance_id = instance_id
        super().__init__(message)


class InstanceNotFound(WorkflowError):
    """No instance has this id."""

    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        super().__init__(f"no instance with id {instance_id!r} (icsflow list shows the ids)")


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
    "PermissionDenied", "ConcurrencyConflict", "InstanceNotFound", "ConfigurationError",
    "SchemaOutOfDate", "NoDatabase",
]
