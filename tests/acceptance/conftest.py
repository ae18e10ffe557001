"""Acceptance fixtures: the SMTP server and workspace live in acceptance_support (importable by
the tests by that name); the demo's year, replayed once per run, is the suite's
(tests/conftest.py: the browser tests of the pages read it too)."""

from __future__ import annotations

from acceptance_support import smtp, workspace  # noqa: F401
