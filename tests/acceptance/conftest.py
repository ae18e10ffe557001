"""Acceptance fixtures: the SMTP server and workspace live in acceptance_support (importable by
the tests by that name); the demo's year, replayed once per run, is the suite's
(tests/conftest.py: the browser tests of the pages read it too)."""

from __future__ import annotations

from collections.abc import Iterator

import forked_cli
import pytest
from acceptance_support import smtp, workspace  # noqa: F401

# Tests that count on real time passing between two commands: the email retry backoff runs on
# the wall clock (workflow/daemon/dispatch.py, "the later of both clocks"), and this test's
# retry, a second after the failure, falls due only because each fresh interpreter takes most
# of a second to start. Forked commands start in a tenth of that, so it keeps fresh ones.
_WALL_CLOCK = {"test_smtp_down_then_up_delivers_after_retry"}


@pytest.fixture(autouse=True)
def _fresh_interpreters_where_start_up_time_counts(request: pytest.FixtureRequest,
                                                   ) -> Iterator[None]:
    forked_cli.options.fresh = request.node.originalname in _WALL_CLOCK
    yield
    forked_cli.options.fresh = False
