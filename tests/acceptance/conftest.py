"""Acceptance fixtures live in acceptance_support (importable by the tests by that name)."""

from acceptance_support import smtp, workspace  # noqa: F401
